"""Fault injection and inspection of the simulated venue: the /_sim/ admin endpoints.

Owns what is being done wrong on purpose (`Faults`: swallowed depth events, WebSocket delay and stalls,
REST 5xx / unknown-status 503 / 429 / 418, order-count 429, clock skew, truncated frames), the endpoint
that sets them at run time, dropping WebSocket connections, changing a position behind the client's back,
applying funding now, and a state summary. Bodies are read strictly (admin_bodies.py): a bad one is a
400 with the reason and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from aiohttp import web

from celeris.domain.values import money_str
from celeris.exchange_sim import admin_bodies as bodies
from celeris.exchange_sim.engine import MatchingEngine


@dataclass
class Faults:
    """What is currently being done wrong on purpose (set over /_sim/faults or from tests)."""

    skip_depth_events: dict[str, int] = field(default_factory=dict)
    """symbol -> number of depth events to swallow (clients see a pu gap)."""
    ws_delay_ms: int = 0
    stall_until_ms: int = 0
    rest_5xx: int = 0
    """Next N REST requests answer 503 "Service Unavailable." (not executed)."""
    rest_unknown_503: int = 0
    """Next N order requests are executed but answer 503 with the unknown-status message."""
    rest_429: int = 0
    rest_418: int = 0
    order_429: int = 0
    """The next N new orders answer the order-count 429 (-1015), as a burst over 300 per 10 s would."""
    clock_skew_ms: int = 0
    malformed_messages: int = 0
    """Next N market stream frames are sent truncated (clients must count and skip them)."""


class Admin:
    """Part of SimVenue: the /_sim/ endpoints."""

    engine: MatchingEngine
    faults: Faults
    connections: list[Any]
    listen_keys: dict[str, tuple[str, int]]
    stats: dict[str, int]
    load: Any  # DepthLoad | None (exchange_sim/load.py)

    if TYPE_CHECKING:  # members of SimVenue and its other parts this one uses
        def now_ms(self) -> int: ...
        async def _flush_users(self) -> None: ...

    async def _admin_faults(self, request: web.Request) -> web.Response:
        body = await bodies.read_object(request, _FAULT_LIMITS.keys() | {"skip_depth_events", "stall_ms", "reset"})
        # Read all of it first: a refused body changes nothing.
        reset = body.get("reset", False)
        if not isinstance(reset, bool):
            raise bodies.BadBody("reset must be true or false")
        skips = body.get("skip_depth_events", {})
        if not isinstance(skips, dict):
            raise bodies.BadBody("skip_depth_events must be an object of symbol -> count")
        skips = {bodies.symbol(k, self.engine.books, "skip_depth_events symbol"):
                 bodies.integer(v, f"skip_depth_events[{k[:20]!r}]", 0, 1_000_000) for k, v in skips.items()}
        stall = bodies.integer(body["stall_ms"], "stall_ms", 0, DAY_MS) if "stall_ms" in body else None
        numbers = {key: bodies.integer(body[key], key, *limits) for key, limits in _FAULT_LIMITS.items()
                   if key in body}
        if reset:
            self.faults = Faults()
        self.faults.skip_depth_events.update(skips)
        if stall is not None:
            self.faults.stall_until_ms = self.now_ms() + stall
        for key, number in numbers.items():
            setattr(self.faults, key, number)
        return web.json_response(self._faults_json())

    def _faults_json(self) -> dict[str, Any]:
        f = self.faults
        return {"skip_depth_events": f.skip_depth_events, "ws_delay_ms": f.ws_delay_ms,
                "stall_until_ms": f.stall_until_ms, "rest_5xx": f.rest_5xx, "rest_unknown_503": f.rest_unknown_503,
                "rest_429": f.rest_429, "rest_418": f.rest_418, "order_429": f.order_429,
                "clock_skew_ms": f.clock_skew_ms,
                "malformed_messages": f.malformed_messages}

    async def _admin_drop(self, request: web.Request) -> web.Response:
        """Close WebSocket connections: all, or only market ("market") or user ("user") ones."""
        which = (await bodies.read_object(request, {"which"})).get("which", "all")
        if which not in ("all", "market", "user"):
            raise bodies.BadBody(f"which must be all, market or user, not {str(which)[:40]!r}")
        dropped = 0
        for conn in list(self.connections):
            is_user = any(s in self.listen_keys for s in conn.streams)
            if which == "all" or (which == "user") == is_user:
                await conn.ws.close(message=b"dropped by fault injection")
                dropped += 1
        return web.json_response({"dropped": dropped})

    async def _admin_state(self, request: web.Request) -> web.Response:
        accounts = {}
        for key, account in self.engine.accounts.items():
            accounts[key[:4] + "****"] = {
                "wallet": money_str(account.wallet),
                "positions": {s: p.instrument.format_qty(p.qty_steps) for s, p in account.positions.items()},
                "open_orders": sum(1 for o in account.orders.values() if o.is_open),
                "open_algo_orders": sum(1 for a in account.algo_orders.values() if a.status.is_open),
                "countdowns": dict(account.countdowns)}
        queued = sum(c.queue.qsize() for c in self.connections if c.queue is not None)
        return web.json_response({"time_ms": self.now_ms(), "faults": self._faults_json(), "stats": self.stats,
                                  "connections": len(self.connections), "queued_frames": queued,
                                  "load": self.load.stats() if self.load is not None else None,
                                  "accounts": accounts})

    async def _admin_position(self, request: web.Request) -> web.Response:
        """Change a position behind the client's back (reconciliation tests): {"symbol", "qty"[, "price"]}."""
        body = await bodies.read_object(request, {"symbol", "qty", "price"})
        if "symbol" not in body or "qty" not in body:
            raise bodies.BadBody("symbol and qty are required")
        account = next(iter(self.engine.accounts.values()))
        symbol = bodies.symbol(body["symbol"], self.engine.books)
        pos = account.positions[symbol]
        ins = pos.instrument
        qty = bodies.quantity(body["qty"], ins)
        price = bodies.price(body["price"], ins) if body.get("price") is not None else self.engine.mark(symbol)
        if price <= 0:
            raise bodies.BadBody("no mark price yet: send a price")
        pos.qty_steps = qty
        pos.cost = Fraction(abs(qty) * price)
        return web.json_response({"symbol": symbol, "positionAmt": ins.format_qty(pos.qty_steps)})

    async def _admin_funding(self, request: web.Request) -> web.Response:
        """Apply funding now: to every symbol, or to {"symbol"} only."""
        body = await bodies.read_object(request, {"symbol"})
        symbols = [bodies.symbol(body["symbol"], self.engine.books)] if "symbol" in body else list(self.engine.books)
        for symbol in symbols:
            self.engine.apply_funding(symbol)
        await self._flush_users()
        return web.json_response({"applied": True, "symbols": symbols})


DAY_MS = 86_400_000
_FAULT_LIMITS = {"ws_delay_ms": (0, DAY_MS), "rest_5xx": (0, DAY_MS), "rest_unknown_503": (0, DAY_MS),
                 "rest_429": (0, DAY_MS), "rest_418": (0, DAY_MS), "clock_skew_ms": (-DAY_MS, DAY_MS),
                 "malformed_messages": (0, DAY_MS), "order_429": (0, DAY_MS)}
"""The numeric faults and their ranges (counts, or milliseconds)."""
