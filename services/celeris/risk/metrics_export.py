"""Prometheus view of the risk manager, with the metric names of the spec (§c.1).

An exporting edge: the integer metrics become Prometheus floats here and nowhere else.
"""

from __future__ import annotations

from typing import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from celeris.domain.clock import NS_PER_S
from celeris.domain.stats import percentile
from celeris.risk.engine import RiskEngine


class RiskCollector(Collector):
    def __init__(self, engine: RiskEngine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        e = self.engine
        yield CounterMetricFamily("risk_pre_trade_check_total", "Pre-trade checks answered", value=e.checks)
        latency = GaugeMetricFamily("risk_pre_trade_check_duration_seconds", "Check latency", labels=["quantile"])
        samples = list(e.check_latency_ns)
        if samples:
            for q in (0.5, 0.99):
                latency.add_metric([str(q)], (percentile(samples, q) or 0) / NS_PER_S)
        yield latency
        yield CounterMetricFamily("risk_emergency_stops_total", "Emergency stops triggered",
                                  value=sum(1 for a in e.alerts if a.message.startswith("EMERGENCY STOP")))
        yield GaugeMetricFamily("risk_emergency_stop_active", "1 while trading is disabled", value=int(e.stop.active))
        m = e.metrics
        if m is None:
            return
        yield GaugeMetricFamily("risk_current_leverage", "Gross notional / equity", value=float(m.leverage))
        yield GaugeMetricFamily("risk_current_margin_ratio", "Maintenance margin / margin balance",
                                value=float(m.margin_ratio))
        dd = GaugeMetricFamily("risk_current_drawdown", "Drawdown percent", labels=["type"])
        dd.add_metric(["daily"], float(m.daily_drawdown_pct))
        dd.add_metric(["peak"], float(m.peak_drawdown_pct))
        yield dd
        conc = GaugeMetricFamily("risk_position_concentration", "Notional / equity percent", labels=["symbol"])
        for symbol, value in m.concentration_pct.items():
            conc.add_metric([symbol], float(value))
        yield conc
        yield GaugeMetricFamily("risk_equity_usdt", "Wallet balance + unrealized PnL", value=float(m.equity))
