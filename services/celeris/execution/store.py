"""Execution's persistence: hot state (memory or Redis) and the append-only journal (memory or PostgreSQL).

Hot state is what a restarted engine needs at once: every order record by client order id, the
idempotency answers by request id (24 h), the trade ids already applied (no fill counted twice), and
the trading-disabled flag that keeps a halt across restarts. The journal keeps every order event and fill
for audit and reconciliation.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from celeris.domain.instruments import Instrument
from celeris.domain.values import money_str
from celeris.domain.messages import Fill


class HotState(Protocol):
    async def save_order(self, doc: dict[str, Any]) -> None: ...
    async def load_orders(self) -> list[dict[str, Any]]: ...
    async def forget_orders(self, client_ids: list[str]) -> None: ...
    async def get_answer(self, request_id: str) -> dict[str, Any] | None: ...
    async def put_answer(self, request_id: str, answer: dict[str, Any], ttl_s: int) -> None: ...
    async def add_trade(self, symbol: str, trade_id: int) -> bool: ...
    async def set_halt(self, halted: bool, reason: str) -> None: ...
    async def get_halt(self) -> tuple[bool, str]: ...


class Journal(Protocol):
    async def order_event(self, ts_ns: int, doc: dict[str, Any], event: str, mode: str, ins: Instrument,
                          detail: str = "") -> None: ...
    async def fill(self, fill: Fill, ins: Instrument) -> None: ...


ANSWERS_KEPT = 2_000
"""Idempotency answers kept without Redis (oldest forgotten first; Redis keeps each for its TTL instead).
A retried request older than that is still never placed twice: the engine refuses its client order id
while it is inside the id window (execution/retention.py)."""
TRADES_KEPT = 20_000
"""Trade ids remembered without Redis: a duplicate fill event arrives within seconds, not 20,000 fills later."""


class MemoryHotState:
    """Hot state in the process (no Redis): orders until forgotten, the last ANSWERS_KEPT answers and
    TRADES_KEPT trade ids (bounded: a long session does not grow without end)."""

    def __init__(self, answers_kept: int = ANSWERS_KEPT, trades_kept: int = TRADES_KEPT) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.answers: dict[str, dict[str, Any]] = {}
        self.trades: set[tuple[str, int]] = set()
        self._trade_order: deque[tuple[str, int]] = deque()
        self.answers_kept, self.trades_kept = answers_kept, trades_kept
        self.halt = (False, "")

    async def save_order(self, doc: dict[str, Any]) -> None:
        self.orders[doc["client_order_id"]] = dict(doc)

    async def load_orders(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self.orders.values()]

    async def forget_orders(self, client_ids: list[str]) -> None:
        for cid in client_ids:
            self.orders.pop(cid, None)

    async def get_answer(self, request_id: str) -> dict[str, Any] | None:
        return self.answers.get(request_id)

    async def put_answer(self, request_id: str, answer: dict[str, Any], ttl_s: int) -> None:
        answers = self.answers
        answers.pop(request_id, None)  # re-put: it is the newest again
        answers[request_id] = answer
        while len(answers) > self.answers_kept:
            del answers[next(iter(answers))]  # dicts keep insertion order: the oldest first

    async def add_trade(self, symbol: str, trade_id: int) -> bool:
        key = (symbol, trade_id)
        if key in self.trades:
            return False
        self.trades.add(key)
        self._trade_order.append(key)
        while len(self._trade_order) > self.trades_kept:
            self.trades.discard(self._trade_order.popleft())
        return True

    async def set_halt(self, halted: bool, reason: str) -> None:
        self.halt = (halted, reason)

    async def get_halt(self) -> tuple[bool, str]:
        return self.halt


class RedisHotState:
    """Keys under `{prefix}:`: orders (hash), answer:{request_id} (TTL), trades:{symbol} (set),
    trading_disabled (the halt flag with its reason)."""

    def __init__(self, redis: Any, prefix: str = "celeris:execution") -> None:
        self.redis = redis
        self.prefix = prefix

    async def save_order(self, doc: dict[str, Any]) -> None:
        await self.redis.hset(f"{self.prefix}:orders", doc["client_order_id"], json.dumps(doc))

    async def load_orders(self) -> list[dict[str, Any]]:
        raw = await self.redis.hgetall(f"{self.prefix}:orders")
        return [json.loads(v) for v in raw.values()]

    async def forget_orders(self, client_ids: list[str]) -> None:
        if client_ids:
            await self.redis.hdel(f"{self.prefix}:orders", *client_ids)

    async def get_answer(self, request_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(f"{self.prefix}:answer:{request_id}")
        return json.loads(raw) if raw else None

    async def put_answer(self, request_id: str, answer: dict[str, Any], ttl_s: int) -> None:
        await self.redis.set(f"{self.prefix}:answer:{request_id}", json.dumps(answer), ex=ttl_s)

    async def add_trade(self, symbol: str, trade_id: int) -> bool:
        return bool(await self.redis.sadd(f"{self.prefix}:trades:{symbol}", trade_id))

    async def set_halt(self, halted: bool, reason: str) -> None:
        if halted:
            await self.redis.set(f"{self.prefix}:trading_disabled", reason or "halted")
        else:
            await self.redis.delete(f"{self.prefix}:trading_disabled")

    async def get_halt(self) -> tuple[bool, str]:
        raw = await self.redis.get(f"{self.prefix}:trading_disabled")
        return (raw is not None, raw.decode() if isinstance(raw, bytes) else (raw or ""))


class FileHaltState:
    """Hot state whose halt flag lives in a local file (when there is no Redis), so a halt survives a
    restart of the process. Everything else is the wrapped store's. The file is replaced atomically."""

    def __init__(self, inner: Any, path: str | os.PathLike[str]) -> None:
        self.inner = inner
        self.path = Path(path)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def set_halt(self, halted: bool, reason: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"halted": halted, "reason": reason}))
        os.replace(tmp, self.path)
        await self.inner.set_halt(halted, reason)

    async def get_halt(self) -> tuple[bool, str]:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return await self.inner.get_halt()
        except (OSError, ValueError):
            return True, f"halt state file {self.path} is unreadable: halted until a person resumes"
        return bool(doc.get("halted")), str(doc.get("reason", ""))


class MemoryJournal:
    """The journal without a database: the most recent `capacity` order events and fills (bounded, so a
    long `celeris up` session does not grow without end; PostgreSQL keeps the full history)."""

    def __init__(self, capacity: int = 2_000) -> None:
        self.events: deque[tuple[int, str, str, str]] = deque(maxlen=capacity)
        self.fills: deque[Fill] = deque(maxlen=capacity)

    async def order_event(self, ts_ns: int, doc: dict[str, Any], event: str, mode: str, ins: Instrument,
                          detail: str = "") -> None:
        self.events.append((ts_ns, doc["client_order_id"], event, doc["status"]))

    async def fill(self, fill: Fill, ins: Instrument) -> None:
        self.fills.append(fill)


class PostgresJournal:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def order_event(self, ts_ns: int, doc: dict[str, Any], event: str, mode: str, ins: Instrument,
                          detail: str = "") -> None:
        price = Decimal(ins.format_price(doc["price_ticks"])) if doc.get("price_ticks") else None
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO order_events (ts, client_order_id, venue_order_id, symbol, side, type, price, "
                "quantity, status, event_type, mode, detail) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
                _ts(ts_ns), doc["client_order_id"], doc.get("venue_order_id"), doc["symbol"], doc["side"],
                doc["type"], price, Decimal(ins.format_qty(doc["qty_steps"])), doc["status"], event, mode, detail)

    async def fill(self, fill: Fill, ins: Instrument) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO fills (ts, client_order_id, venue_order_id, trade_id, symbol, side, price, quantity, "
                "commission, is_maker, realized_pnl, mode) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) "
                "ON CONFLICT DO NOTHING",
                _ts(fill.ts_event_ns), fill.client_order_id, fill.venue_order_id, fill.trade_id, fill.symbol,
                fill.side.value, Decimal(ins.format_price(fill.price_ticks)), Decimal(ins.format_qty(fill.qty_steps)),
                Decimal(money_str(fill.commission)), fill.is_maker, Decimal(money_str(fill.realized_pnl)), fill.mode)


def _ts(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.timezone.utc)
