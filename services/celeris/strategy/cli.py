"""`celeris strategy run`: the strategy engine as its own service (market data and execution over gRPC)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from celeris.runtime.service_cli import add_service_command, venue_instruments
from celeris.runtime.settings import ServiceSettings


class StrategySettings(ServiceSettings):
    """Strategy engine settings (CELERIS_* environment variables or --set key=value)."""

    component: str = "strategy"
    strategies: str = Field("[]", description="JSON list of {name, type, symbol, order_size, params}")
    aggregation: str = "{}"
    """JSON map symbol -> majority | weighted | first_above (default: none, each strategy acts alone)."""
    plugin_dir: str = ""
    hot_reload: bool = False
    marketdata_target: str = "127.0.0.1:50051"
    execution_target: str = "127.0.0.1:50052"
    max_position_usdt: int = Field(10_000, ge=0)
    max_total_exposure_usdt: int = Field(50_000, ge=0)
    max_orders_per_minute: int = Field(60, ge=1)
    max_daily_loss_usdt: int = Field(1_000, ge=0)

    @field_validator("strategies", "aggregation")
    @classmethod
    def _json(cls, value: str) -> str:
        json.loads(value)
        return value


def register(sub: Any) -> None:
    add_service_command(sub, "strategy", "strategy engine: strategies -> signals -> orders", StrategySettings, serve)


def parse_strategies(text: str) -> list[Any]:
    from celeris.strategy.engine import StrategyConfig

    out = []
    for item in json.loads(text):
        out.append(StrategyConfig(name=item["name"], type=item["type"], symbol=item["symbol"],
                                  order_size=str(item["order_size"]), params=item.get("params", {}),
                                  enabled=item.get("enabled", True)))
    return out


async def serve(settings: StrategySettings) -> None:
    from celeris.domain.modes import Mode
    from celeris.execution.client import ExecutionClient
    from celeris.marketdata.client import MarketDataClient
    from celeris.runtime import control, grpc_server, metrics
    from celeris.runtime.clock import SystemClock
    from celeris.strategy import servicer
    from celeris.strategy.aggregation import Method
    from celeris.strategy.engine import StrategyEngine
    from celeris.strategy.filters import FilterLimits, filter_limits
    from celeris.strategy.plugins import PluginRegistry
    from celeris.transport.bus import InProcessBus
    from celeris.venues.binance.rest import BinanceRestClient

    clock = SystemClock()
    registry = metrics.new_registry()
    bus = InProcessBus()
    async with BinanceRestClient(settings.venue_rest_url, clock) as rest:
        instruments = await venue_instruments(rest, settings.symbols)
    gateway = ExecutionClient(settings.execution_target, instruments)
    money = 10**8
    limits = FilterLimits(settings.max_position_usdt * money, settings.max_total_exposure_usdt * money,
                          settings.max_orders_per_minute, settings.max_daily_loss_usdt * money)
    if settings.risk_spec() is not None:
        spec = settings.risk_spec()
        limits = filter_limits(spec.exposure_limits(), spec.maxOrdersPerSecond, limits)
    engine = StrategyEngine(
        parse_strategies(settings.strategies), instruments, clock, gateway, bus.publish, mode=Mode(settings.mode),
        limits=limits,
        registry=PluginRegistry(Path(settings.plugin_dir) if settings.plugin_dir else None),
        aggregation={s: Method(m) for s, m in json.loads(settings.aggregation).items()})
    from celeris.strategy.metrics import StrategyCollector

    registry.register(StrategyCollector(engine))
    gateway.stream_fills(engine.on_fill)
    gateway.stream_orders(engine.on_order_update)
    engine.start()
    md = MarketDataClient(settings.marketdata_target, instruments, engine.on_book, engine.on_trade)
    md.start()
    tasks = []
    if settings.hot_reload and settings.plugin_dir:
        tasks.append(asyncio.create_task(engine.watch_plugins()))
    ctl = control.ComponentControl("strategy", clock, mode=engine.mode,
                                   details=lambda: {"strategies": str(len(engine.runners)),
                                                    "stats": json.dumps(engine.stats)})

    async def on_mode(mode: Mode) -> None:
        engine.mode = mode

    async def on_halt(reason: str, flatten: bool) -> None:
        engine.halted = True
        await engine.cancel_quotes()

    async def on_resume(requested_by: str) -> None:
        engine.halted = False

    async def on_configure(config: dict[str, Any]) -> None:
        if "strategies" in config:
            engine.reconfigure(parse_strategies(json.dumps([
                {"name": s["name"], "type": s["type"], "symbol": s["symbol"],
                 "order_size": s.get("orderSize", s.get("order_size")), "params": s.get("params", {}),
                 "enabled": s.get("enabled", True)} for s in config["strategies"]])))
        if config.get("risk"):  # decimal strings, parsed exactly (never through a float), all or nothing
            from celeris.config.spec import RiskSpec

            spec = RiskSpec.model_validate(config["risk"])
            engine.limits = filter_limits(spec.exposure_limits(), spec.maxOrdersPerSecond, engine.limits)

    ctl.on_mode.append(on_mode)
    ctl.on_halt.append(on_halt)
    ctl.on_resume.append(on_resume)
    ctl.on_configure.append(on_configure)
    bound = grpc_server.create_server([servicer.registrar(engine, bus), control.registrar(ctl)],
                                      settings.grpc_host, settings.grpc_port)
    runner, _ = await metrics.start_metrics_server(
        registry, settings.grpc_host, settings.metrics_port,
        lambda: {"status": "ok", "service": "strategy", "mode": engine.mode.value, "stats": engine.stats})

    async def drain() -> None:
        await engine.stop()
        await md.stop()
        for task in tasks:
            task.cancel()

    try:
        await grpc_server.serve_until_signal(bound, drain, settings.drain_timeout_ms / 1000)
    finally:
        await runner.cleanup()
        await gateway.close()
