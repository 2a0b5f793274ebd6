"""`celeris execution run`: the execution service (gRPC Execution + Control, /metrics, /health)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pydantic import Field

from celeris.runtime.service_cli import (add_service_command, connect_venue, open_stores, serve_then_close,
                                         store_closers)
from celeris.runtime.settings import ServiceSettings


class ExecutionSettings(ServiceSettings):
    """Execution settings (CELERIS_* environment variables or --set key=value)."""

    component: str = "execution"
    max_position_usdt: int = Field(0, ge=0)
    """Per-symbol position limit in USDT notional (0 = none)."""
    max_orders_per_second: int = Field(10, ge=1)
    leverage: int = Field(20, ge=1, le=125)
    marketdata_target: str = ""
    """host:port of market data's gRPC server: books for the paper venue and marks for validation."""
    unknown_orders_policy: str = Field("adopt", pattern="^(adopt|cancel)$")
    paper_latency_ms: float = Field(5.0, ge=0)
    paper_wallet_usdt: int = Field(100_000, ge=0)
    risk_target: str = ""
    """host:port of the risk manager for the pre-trade check (empty = none)."""


def register(sub: Any) -> None:
    add_service_command(sub, "execution", "execution service: validated, idempotent order entry",
                        ExecutionSettings, serve)


async def serve(settings: ExecutionSettings) -> None:
    from prometheus_client import Counter

    from celeris.domain.modes import Mode
    from celeris.execution import servicer
    from celeris.execution.engine import ExecutionEngine
    from celeris.config.spec import RiskSpec
    from celeris.domain.exposure import ExposureLimits
    from celeris.execution.model import ExecutionConfig, PositionLimits
    from celeris.execution.paper import PaperVenue
    from celeris.execution.store import MemoryHotState, MemoryJournal, PostgresJournal, RedisHotState
    from celeris.execution.venue import BinanceOrderVenue
    from celeris.marketdata.client import MarketDataClient
    from celeris.runtime import control, grpc_server, metrics
    from celeris.runtime.clock import SystemClock
    from celeris.transport.bus import InProcessBus

    clock = SystemClock()
    registry = metrics.new_registry()
    bus = InProcessBus()
    rest, instruments = await connect_venue(settings, clock)
    redis_client, pool = await open_stores(settings)
    hot: Any = RedisHotState(redis_client) if redis_client is not None else MemoryHotState()
    if redis_client is None and settings.state_dir:
        from pathlib import Path

        from celeris.execution.store import FileHaltState
        hot = FileHaltState(hot, Path(settings.state_dir) / "execution-halt.json")
    journal: Any = PostgresJournal(pool) if pool is not None else MemoryJournal()
    live = BinanceOrderVenue(rest, settings.venue_ws_url, instruments, clock)
    paper = PaperVenue(instruments, clock, latency_ms=settings.paper_latency_ms,
                       wallet_usdt=settings.paper_wallet_usdt, leverage=settings.leverage)
    submitted = Counter("orders_submitted_total", "Order requests received", registry=registry)
    rejected = Counter("orders_rejected_total", "Order requests refused", ["code"], registry=registry)
    fills = Counter("fills_total", "Fills applied", ["symbol"], registry=registry)

    def publish(topic: str, message: Any) -> None:
        if topic.startswith("fills."):
            fills.labels(topic.split(".", 1)[1]).inc()
        bus.publish(topic, message)
        if redis_client is not None:
            asyncio.ensure_future(_to_redis(redis_client, topic, message, instruments))

    risk = None
    if settings.risk_target:
        from celeris.execution.risk_client import GrpcRiskCheck

        risk = GrpcRiskCheck(settings.risk_target, instruments)
    risk_spec = settings.risk_spec()
    engine = ExecutionEngine(
        ExecutionConfig(settings.symbols, PositionLimits(settings.max_position_usdt * 10**8,
                                                         settings.max_orders_per_second, settings.leverage),
                        exposure=risk_spec.exposure_limits() if risk_spec else ExposureLimits(),
                        unknown_orders_policy=settings.unknown_orders_policy),
        instruments, clock, {Mode.LIVE: live, Mode.SIMULATION: paper}, publish, hot, journal, risk=risk,
        mode=Mode(settings.mode))

    def count(outcome: Any) -> None:
        submitted.inc()
        if outcome.rejection is not None:
            rejected.labels(outcome.rejection.code.value).inc()

    if risk_spec is not None:
        engine.set_limits(risk_spec.exposure_limits(), risk_spec.maxOrdersPerSecond, risk_spec.maxLeverage)
    engine.on_outcome.append(count)
    md_client = None
    if settings.marketdata_target:
        def on_book(update: Any) -> None:
            paper.on_book(update)
            book = paper.books[update.symbol]
            mid = book.mid()
            if mid is not None and paper.live[update.symbol]:
                engine.on_mark(update.symbol, int(mid))

        md_client = MarketDataClient(settings.marketdata_target, instruments, on_book, paper.on_trade)
        md_client.start()
    await engine.start()
    ctl = control.ComponentControl("execution", clock, mode=engine.mode, halted=engine.halted,
                                   halt_reason=engine.halt_reason,
                                   details=lambda: {"open_orders": str(len(engine.open_orders())),
                                                    "halt_canceled": str(engine.last_halt_canceled),
                                                    "halt_flat": str(engine.last_halt_flat).lower(),
                                                    "stats": json.dumps(engine.stats.__dict__),
                                                    "tick_to_order": json.dumps(_percentiles(engine.tick_to_order_ns))})

    async def on_mode(mode: Mode) -> None:
        await engine.set_mode(mode)

    async def on_halt(reason: str, flatten: bool) -> None:
        # A caller whose deadline passes cancels this handler, not the halt: it runs to the end.
        await asyncio.shield(asyncio.ensure_future(engine.halt(reason, "control", flatten)))

    async def on_resume(requested_by: str) -> None:
        await engine.resume(requested_by)

    async def on_drain() -> None:
        engine.draining = True

    async def on_configure(config: dict[str, Any]) -> None:
        if config.get("risk"):  # validated whole before anything changes (a bad limit changes nothing)
            spec = RiskSpec.model_validate(config["risk"])
            engine.set_limits(spec.exposure_limits(), spec.maxOrdersPerSecond, spec.maxLeverage)

    ctl.on_configure.append(on_configure)
    ctl.on_mode.append(on_mode)
    ctl.on_halt.append(on_halt)
    ctl.on_resume.append(on_resume)
    ctl.on_drain.append(on_drain)

    def health() -> dict[str, Any]:
        return {"status": "ok" if not engine.breaker.is_open else "degraded", "service": "execution",
                "mode": engine.mode.value, "halted": engine.halted, "open_orders": len(engine.open_orders()),
                "breaker": engine.breaker.state.value, "stats": engine.stats.__dict__}

    bound = grpc_server.create_server([servicer.registrar(engine, bus), control.registrar(ctl)],
                                      settings.grpc_host, settings.grpc_port)
    runner, _ = await metrics.start_metrics_server(registry, settings.grpc_host, settings.metrics_port, health)

    async def drain() -> None:
        engine.draining = True
        await engine.stop()
        if md_client is not None:
            await md_client.stop()

    await serve_then_close(bound, drain, settings, [
        runner.cleanup, rest.close, *store_closers(redis_client, pool)])


def _percentiles(samples: Any) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {"count": 0}
    return {"count": len(ordered), "p50_us": ordered[len(ordered) // 2] / 1000,
            "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000}


async def _to_redis(client: Any, topic: str, message: Any, instruments: dict[str, Any]) -> None:
    """Topics `orders.{symbol}` and `fills.{symbol}` for consumers outside the process."""
    from celeris.execution.model import order_to_json
    from celeris.domain.messages import Fill

    if isinstance(message, Fill):
        ins = instruments[message.symbol]
        doc = {"symbol": message.symbol, "client_order_id": message.client_order_id, "trade_id": message.trade_id,
               "side": message.side.value, "price": ins.format_price(message.price_ticks),
               "qty": ins.format_qty(message.qty_steps), "is_maker": message.is_maker, "mode": message.mode}
    else:
        doc = order_to_json(message)
    try:
        await client.publish(topic, json.dumps(doc))
    except Exception:  # a Redis hiccup must never stop order handling
        pass
