"""Builds the strategy engine from StrategySettings: its strategies (built-in and plugins), the pre-trade
filter with the system's limits, its metrics and its gRPC service. Ports: `gateway` (execution: submit,
cancel, amend, leases), `feed` (market data's books, trades and marks) and `order_events` (execution's fills and order
updates, delivered to the two handlers it is given)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from celeris.assembly.ports import Built
from celeris.assembly.settings import StrategySettings
from celeris.assembly.wiring import Wiring
from celeris.domain.modes import Mode
from celeris.domain.values import MONEY_SCALE

MONEY = 10**MONEY_SCALE


def build_strategy(settings: StrategySettings, w: Wiring, gateway: Any, feed: Any,
                   order_events: Callable[[Callable[[Any], None], Callable[[Any], None]], None]) -> Built:
    from celeris.strategy import servicer
    from celeris.strategy.aggregation import Method
    from celeris.strategy.component import StrategyComponent, parse_strategies
    from celeris.strategy.engine import StrategyEngine
    from celeris.strategy.filters import FilterLimits, filter_limits
    from celeris.strategy.metrics import StrategyCollector
    from celeris.strategy.plugins import PluginRegistry

    limits = FilterLimits(settings.max_position_usdt * MONEY, settings.max_total_exposure_usdt * MONEY,
                          settings.max_orders_per_minute, settings.max_daily_loss_usdt * MONEY)
    spec = settings.risk_spec()
    if spec is not None:  # the same numbers as execution's gate
        limits = filter_limits(spec.exposure_limits(), spec.maxOrdersPerSecond, limits)
    engine = StrategyEngine(
        parse_strategies(settings.strategies), w.instruments, w.clock, gateway, w.bus.publish,
        mode=Mode(settings.mode), limits=limits,
        registry=PluginRegistry(Path(settings.plugin_dir) if settings.plugin_dir else None),
        aggregation={s: Method(m) for s, m in json.loads(settings.aggregation).items()})
    w.registry.register(StrategyCollector(engine))
    feed.on_book(engine.on_book)
    feed.on_trade(engine.on_trade)
    feed.on_mark(engine.on_mark)  # mark price and funding, for SDK strategies' on_mark
    order_events(engine.on_fill, engine.on_order_update)
    component = StrategyComponent(engine)
    closers: list[Any] = [feed.stop]
    if settings.hot_reload and settings.plugin_dir:
        import asyncio

        start = component.start

        async def start_with_reload() -> None:
            await start()
            task = asyncio.create_task(engine.watch_plugins())
            closers.append(lambda: _cancel(task))

        component.start = start_with_reload  # type: ignore[method-assign]
    return Built(component, [servicer.registrar(engine, w.bus)], component.health, closers, {"engine": engine})


async def _cancel(task: Any) -> None:
    task.cancel()
