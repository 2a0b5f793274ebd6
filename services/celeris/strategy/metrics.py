"""Prometheus view of the strategy engine (names from the spec), read from the engine when scraped."""

from __future__ import annotations

from typing import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from celeris.strategy.engine import StrategyEngine, decision_percentiles


class StrategyCollector(Collector):
    def __init__(self, engine: StrategyEngine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        e = self.engine
        signals = CounterMetricFamily("strategy_signals_total", "Signals produced", labels=["strategy"])
        errors = CounterMetricFamily("strategy_errors_total", "Strategy exceptions", labels=["strategy"])
        enabled = GaugeMetricFamily("strategy_enabled", "1 if the strategy runs", labels=["strategy"])
        for name, runner in e.runners.items():
            signals.add_metric([name], runner.signals)
            errors.add_metric([name], runner.errors)
            enabled.add_metric([name], 1 if runner.enabled else 0)
        yield signals
        yield errors
        yield enabled
        latency = GaugeMetricFamily("strategy_decision_latency_us", "Market data to decision, microseconds",
                                    labels=["quantile"])
        pct = decision_percentiles(e.decision_latency_ns)
        latency.add_metric(["0.5"], pct["p50_us"])
        latency.add_metric(["0.99"], pct["p99_us"])
        yield latency
        yield CounterMetricFamily("strategy_orders_total", "Orders requested from execution", value=e.stats["orders"])
        yield CounterMetricFamily("strategy_signals_filtered_total", "Signals refused by the risk filter",
                                  value=e.stats["filtered"])
