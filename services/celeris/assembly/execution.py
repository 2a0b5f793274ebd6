"""Builds execution: the order manager with the live venue and the paper venue, its stores, its metrics
and its gRPC service, from ExecutionSettings. Both topologies and the pods call `build_execution`; they
differ only in the ports they pass (the risk check, the market feed)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from celeris.assembly.ports import Built
from celeris.assembly.settings import ExecutionSettings
from celeris.assembly.wiring import Wiring
from celeris.domain.exposure import ExposureLimits
from celeris.domain.messages import Fill
from celeris.domain.modes import Mode
from celeris.domain.values import MONEY_SCALE, parse_decimal

MONEY = 10**MONEY_SCALE


def mark_ticks(ins: Any, text: str) -> int:
    """A mark price (decimal string) in the instrument's ticks, rounded down, exactly."""
    mantissa, scale = parse_decimal(text)
    grid = ins.price_grid
    return mantissa * 10**grid.scale // (10**scale * grid.step_units)


def build_execution(settings: ExecutionSettings, w: Wiring, risk: Any, feed: Any) -> Built:
    """`risk`: the pre-trade check port (None = none); `feed`: market data's books, trades and marks, which
    feed the paper venue and execution's price band."""
    from prometheus_client import Counter

    from celeris.execution import servicer
    from celeris.execution.component import ExecutionComponent
    from celeris.execution.engine import ExecutionEngine
    from celeris.execution.model import ExecutionConfig, PositionLimits
    from celeris.execution.paper import PaperVenue
    from celeris.execution.store import FileHaltState, MemoryHotState, MemoryJournal, PostgresJournal, RedisHotState
    from celeris.venues.binance.orders import BinanceOrderVenue

    instruments, clock = w.instruments, w.clock
    hot: Any = RedisHotState(w.redis) if w.redis is not None else MemoryHotState()
    if w.redis is None and w.state_dir is not None:  # a halt survives a restart: in Redis, else in a file
        hot = FileHaltState(hot, w.state_dir / "execution-halt.json")
    journal: Any = PostgresJournal(w.pool) if w.pool is not None else MemoryJournal()
    live = BinanceOrderVenue(w.rest, settings.venue_ws_url, instruments, clock,
                             cancel_all_after_ms=settings.venue_cancel_all_after_ms,
                             ws_api_url=settings.venue_ws_api_url)
    # simulation mode runs on the wall clock: latency passes there too, so a quiet market holds no order back
    paper = PaperVenue(instruments, clock, latency_ms=settings.paper_latency_ms,
                       wallet_usdt=settings.paper_wallet_usdt, leverage=settings.leverage, sleep=asyncio.sleep)
    submitted = Counter("orders_submitted_total", "Order requests received", registry=w.registry)
    rejected = Counter("orders_rejected_total", "Order requests refused", ["code"], registry=w.registry)
    fills = Counter("fills_total", "Fills applied", ["symbol"], registry=w.registry)

    def publish(topic: str, message: Any) -> None:
        if topic.startswith("fills."):
            fills.labels(topic.split(".", 1)[1]).inc()
        w.bus.publish(topic, message)
        if w.redis is not None:
            asyncio.ensure_future(_to_redis(w.redis, topic, message, instruments))

    risk_spec = settings.risk_spec()
    engine = ExecutionEngine(
        ExecutionConfig(settings.symbols, PositionLimits(settings.max_position_usdt * MONEY,
                                                         settings.max_orders_per_second, settings.leverage),
                        exposure=risk_spec.exposure_limits() if risk_spec else ExposureLimits(),
                        unknown_orders_policy=settings.unknown_orders_policy,
                        venue_orders_per_10s=settings.venue_orders_per_10s,
                        venue_orders_per_minute=settings.venue_orders_per_minute),
        instruments, clock, {Mode.LIVE: live, Mode.SIMULATION: paper}, publish, hot, journal, risk=risk,
        mode=Mode(settings.mode))
    if risk_spec is not None:
        engine.set_limits(risk_spec.exposure_limits(), risk_spec.maxOrdersPerSecond, risk_spec.maxLeverage)

    def count(outcome: Any) -> None:
        submitted.inc()
        if outcome.rejection is not None:
            rejected.labels(outcome.rejection.code.value).inc()

    engine.on_outcome.append(count)
    # The paper venue matches against market data's books and trades; the price band uses the venue's mark.
    feed.on_book(paper.on_book)
    feed.on_trade(paper.on_trade)
    feed.on_mark(paper.on_mark)  # funding at the stream's funding times
    feed.on_mark(lambda m: engine.on_mark(m.symbol, mark_ticks(instruments[m.symbol], m.mark_price))
                 if m.symbol in instruments and m.mark_price else None)
    component = ExecutionComponent(engine)
    return Built(component, [servicer.registrar(engine, w.bus)], component.health, [feed.stop],
                 {"engine": engine, "paper": paper, "live": live})


async def _to_redis(client: Any, topic: str, message: Any, instruments: dict[str, Any]) -> None:
    """Topics `orders.{symbol}` and `fills.{symbol}` for consumers outside the process."""
    from celeris.execution.model import order_to_json

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
