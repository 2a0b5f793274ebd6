"""Builds the strategy engine from StrategySettings: its strategies (built-in and plugins), the pre-trade
filter with the system's limits, its metrics and its gRPC service. Ports: `gateway` (execution: submit,
cancel, amend, leases), `feed` (market data's books, trades and marks) and `order_events` (execution's fills
and order updates, delivered to the two handlers it is given).

Plugins load here and only here, for `celeris up` (both topologies), a `celeris strategy run` process and
a pod alike: `plugin_registry` reads the built-ins, the installed entry points and `strategy_dir`, and
refuses, before anything is started, a directory that is not one or a strategy type no source provides
(`StrategyRefused`, one line naming the known types)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

from celeris.assembly.ports import Built
from celeris.assembly.settings import StrategySettings
from celeris.assembly.wiring import Wiring
from celeris.domain.modes import Mode
from celeris.domain.values import MONEY_SCALE
from celeris.runtime.settings import SettingsError

MONEY = 10**MONEY_SCALE
log = logging.getLogger(__name__)


class StrategyRefused(SettingsError):
    """Strategies that cannot run as configured: a type no source provides, a strategy_dir that is not a
    directory. A settings error: the process reports it in one line and exits 2."""


def plugin_registry(strategy_dir: str, types: list[str], report_failures: bool = True) -> Any:
    """The PluginRegistry of `strategy_dir` (built-ins and entry points always), checked to provide every
    one of `types`; raises StrategyRefused. Files that failed to load but provide none of `types` are
    logged (unless `report_failures` is false: an early check whose builder will report them)."""
    from celeris.strategy.plugins import PluginRegistry, UnknownStrategyType

    directory = Path(strategy_dir) if strategy_dir else None
    if directory is not None and not directory.is_dir():
        raise StrategyRefused(f"strategy_dir {strategy_dir} is not a directory")
    registry = PluginRegistry(directory, report_failures=False)
    try:
        registry.refuse_unknown(types)
    except UnknownStrategyType as exc:  # it names the files that failed: the one line says it all
        raise StrategyRefused(str(exc)) from None
    for where, error in sorted(registry.load_errors.items()) if report_failures else ():
        log.error("strategy plugin %s failed to load: %s", where, error)  # not needed now; a person must know
    return registry


def refuse_unknown_strategies(settings: StrategySettings, desired: dict[str, Any]) -> None:
    """Raise StrategyRefused if a strategy of `settings` or of the desired state's configuration (`desired`,
    its `settings` section) has a type no plugin source provides. Malformed entries are left to the checks
    that own them."""
    from celeris.strategy.component import parse_strategies

    types = [c.type for c in parse_strategies(settings.strategies)]
    wanted = desired.get("strategies")
    if isinstance(wanted, list):
        types += [s["type"] for s in wanted if isinstance(s, dict) and isinstance(s.get("type"), str)]
    plugin_registry(settings.strategy_dir, types, report_failures=False)  # the builder reports them


def build_strategy(settings: StrategySettings, w: Wiring, gateway: Any, feed: Any,
                   order_events: Callable[[Callable[[Any], None], Callable[[Any], None]], None]) -> Built:
    from celeris.strategy import servicer
    from celeris.strategy.aggregation import Method
    from celeris.strategy.component import StrategyComponent, parse_strategies
    from celeris.strategy.engine import StrategyEngine
    from celeris.strategy.filters import FilterLimits, filter_limits
    from celeris.strategy.metrics import StrategyCollector

    limits = FilterLimits(settings.max_position_usdt * MONEY, settings.max_total_exposure_usdt * MONEY,
                          settings.max_orders_per_minute, settings.max_daily_loss_usdt * MONEY)
    spec = settings.risk_spec()
    if spec is not None:  # the same numbers as execution's gate
        limits = filter_limits(spec.exposure_limits(), spec.maxOrdersPerSecond, limits)
    configs = parse_strategies(settings.strategies)
    engine = StrategyEngine(
        configs, w.instruments, w.clock, gateway, w.bus.publish, mode=Mode(settings.mode), limits=limits,
        registry=plugin_registry(settings.strategy_dir, [c.type for c in configs]),
        aggregation={s: Method(m) for s, m in json.loads(settings.aggregation).items()})
    w.registry.register(StrategyCollector(engine))
    feed.on_book(engine.on_book)
    feed.on_trade(engine.on_trade)
    feed.on_mark(engine.on_mark)  # mark price and funding, for SDK strategies' on_mark
    order_events(engine.on_fill, engine.on_order_update)
    component = StrategyComponent(engine)
    closers: list[Any] = [feed.stop]
    if settings.hot_reload and settings.strategy_dir:
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
