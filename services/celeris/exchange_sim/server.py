"""The simulated venue on the wire: Binance USD-M REST, market streams, user data stream and admin.

Owns the protocol side of the simulator, written independently of the connector: parameter merging
(query wins over form body, for every method), HMAC-SHA256 over the raw query string + raw body, the
timestamp/recvWindow rule, API-key checks, request weights with X-MBX-USED-WEIGHT-1M and order-count
headers, 429 then 418 with Retry-After, the venue's {code,msg} errors, the REST endpoints, the
WebSocket paths (/ws, /stream, /public, /market, /private) with SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS,
diff depth with a U/u/pu chain per stream speed, partial depth, trades, mark price, book ticker, the
user data stream, and the admin endpoint that injects faults at run time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from celeris.domain.clock import Clock
from celeris.domain.values import format_units, money_str
from celeris.exchange_sim.engine import (
    Account,
    EngineConfig,
    MatchingEngine,
    VenueError,
    _price_str,
)
from celeris.exchange_sim.contract import Contract
from celeris.exchange_sim.market import ReplayMarket, SyntheticMarket

log = logging.getLogger(__name__)

SYMBOLS_FILE = Path(__file__).with_name("symbols.json")
LISTEN_KEY_TTL_MS = 60 * 60 * 1000
DEPTH_SPEEDS_MS = {"": 250, "@100ms": 100, "@0ms": 0, "@500ms": 500, "@250ms": 250}


def load_instrument_entries(symbols: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """exchangeInfo pieces for `symbols`: real entries where we have them, a derived one otherwise."""
    table = json.loads(SYMBOLS_FILE.read_text())
    known = {s["symbol"]: s for s in table["symbols"]}
    entries = []
    for symbol in symbols:
        if symbol in known:
            entries.append(known[symbol])
        else:
            if not symbol.endswith("USDT"):
                raise ValueError(f"simulator supports USDT-margined symbols only, not {symbol}")
            entry = json.loads(json.dumps(known["ETHUSDT"]))
            entry.update(symbol=symbol, pair=symbol, baseAsset=symbol[:-4])
            entries.append(entry)
    return table, entries


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


@dataclass
class Connection:
    ws: web.WebSocketResponse
    combined: bool
    streams: set[str] = field(default_factory=set)
    opened_ms: int = 0
    queue: asyncio.Queue[str] | None = None


class WeightWindow:
    """Per-IP request weight over a rolling minute, and the ban that follows ignoring 429s."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.hits: deque[tuple[int, int]] = deque()
        self.used = 0
        self.over_limit_hits = 0
        self.banned_until_ms = 0

    def add(self, now_ms: int, weight: int) -> int:
        while self.hits and self.hits[0][0] <= now_ms - 60_000:
            self.used -= self.hits.popleft()[1]
        self.hits.append((now_ms, weight))
        self.used += weight
        return self.used


class SimVenue:
    """The simulated exchange: engine, market, streams and the HTTP/WebSocket application."""

    def __init__(self, *, symbols: list[str], api_key: str, api_secret: str, clock: Clock, seed: int = 7,
                 tick_ms: int = 100, replay: Path | None = None, weight_limit: int = 2400,
                 ws_max_age_s: float = 86_400, ping_interval_s: float = 180, mark_interval_ms: int = 1000,
                 funding_interval_s: float = 8 * 3600, config: EngineConfig | None = None,
                 wallet_usdt: int | None = None) -> None:
        self.clock = clock
        self.table, entries = load_instrument_entries(symbols)
        self.entries = {e["symbol"]: e for e in entries}
        self.contracts = [Contract.from_entry(e) for e in entries]
        # The simulator's own reading of its symbols. Connector-side instruments are the client's business:
        # built from the exchangeInfo these entries are served as (tests/sim/conftest.py does so).
        self.instruments: list[Any] = list(self.contracts)
        self.engine = MatchingEngine(self.contracts, self, config)
        self.engine.add_account(api_key, api_secret, wallet_usdt)
        self.engine.on_account_event = self._account_event
        self.market: SyntheticMarket | ReplayMarket
        if replay is not None:
            self.market = ReplayMarket(self.engine, replay, symbols[0], tick_ms)
        else:
            self.market = SyntheticMarket(self.engine, seed=seed)
        self.tick_ms = tick_ms
        self.faults = Faults()
        self.weights = WeightWindow(weight_limit)
        self.order_times: deque[int] = deque()
        self.ws_max_age_ms = int(ws_max_age_s * 1000)
        self.ping_interval_s = ping_interval_s
        self.mark_interval_ms = mark_interval_ms
        self.funding_interval_ms = int(funding_interval_s * 1000)
        self.connections: list[Connection] = []
        self.listen_keys: dict[str, tuple[str, int]] = {}  # key -> (api_key, expires_ms)
        # Per symbol and depth speed: (previous u sent, pending first U, last flush ms).
        self._depth_chain: dict[tuple[str, int], list[int]] = {}
        self._pending_levels: dict[tuple[str, int], dict[tuple[bool, int], None]] = {}
        self._last_top: dict[str, tuple[int | None, int | None, int, int]] = {}
        self._skip_left: dict[tuple[str, int], int] = {}
        self._last_mark_ms = 0
        self._next_funding_ms = self.now_ms() + self.funding_interval_ms
        self._task: asyncio.Task[None] | None = None
        self._users_dirty = asyncio.Event()
        self.stats = {"rest_requests": 0, "ws_messages": 0, "orders": 0}

    # Clock for the engine: the venue's time includes the injected skew.
    def now_ns(self) -> int:
        return self.clock.now_ns() + self.faults.clock_skew_ms * 1_000_000

    def now_ms(self) -> int:
        return self.now_ns() // 1_000_000

    # -- lifecycle ----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1 << 20)
        r = app.router
        for path, handler in self._rest_routes().items():
            method, _, url = path.partition(" ")
            r.add_route(method, url, handler)
        for prefix in ("", "/public", "/market", "/private"):
            r.add_get(prefix + "/ws", self._ws_handler)
            r.add_get(prefix + "/ws/{tail:.*}", self._ws_handler)
            r.add_get(prefix + "/stream", self._ws_handler)
        r.add_post("/_sim/faults", self._admin_faults)
        r.add_get("/_sim/state", self._admin_state)
        r.add_post("/_sim/position", self._admin_position)
        r.add_post("/_sim/drop", self._admin_drop)
        r.add_post("/_sim/funding", self._admin_funding)
        app.on_startup.append(self._start_loop)
        app.on_shutdown.append(self._stop)
        return app

    async def _start_loop(self, _: web.Application) -> None:
        self._task = asyncio.create_task(self._run())

    async def _stop(self, _: web.Application) -> None:
        if self._task:
            self._task.cancel()
        for conn in list(self.connections):
            await conn.ws.close()

    async def _run(self) -> None:
        while True:
            try:
                self.tick()
                await self._flush_users()
            except Exception:  # a bug in one tick must not kill the venue
                log.exception("simulator tick failed")
            await asyncio.sleep(self.tick_ms / 1000)

    def tick(self) -> None:
        """One step of venue time: market moves, triggers, liquidations, funding, streams."""
        self.market.step()
        now = self.now_ms()
        for symbol in self.engine.books:
            self.engine.check_triggers(symbol)
            self.engine.check_liquidations(symbol)
        if self.funding_interval_ms and now >= self._next_funding_ms:
            self._next_funding_ms = now + self.funding_interval_ms
            for symbol in self.engine.books:
                self.engine.apply_funding(symbol)
        self._expire_listen_keys(now)
        self._publish_market(now)
        for conn in list(self.connections):
            if now - conn.opened_ms >= self.ws_max_age_ms:
                asyncio.ensure_future(conn.ws.close(message=b"24h connection limit"))

    # -- market streams -----------------------------------------------------------------------
    def _publish_market(self, now: int) -> None:
        wanted = self._wanted_streams()
        for symbol, book in self.engine.books.items():
            lower = symbol.lower()
            ins = book.instrument
            changed = dict(book.changed)
            book.changed.clear()
            first_id = book.first_changed_id
            for speed in {0, 100, 250, 500}:
                key = (symbol, speed)
                pending = self._pending_levels.setdefault(key, {})
                chain = self._depth_chain.setdefault(key, [first_id - 1 if changed else book.update_id, 0, now])
                if changed:
                    if not pending:
                        chain[1] = first_id
                    pending.update(changed)
                if pending and (now - chain[2] >= speed or speed <= self.tick_ms):
                    event = self._depth_event(book, ins, pending, chain, now)
                    chain[0] = event["u"]
                    chain[2] = now
                    pending.clear()
                    if self._swallow_depth(symbol, speed):
                        continue
                    self._send_depth(lower, speed, event, book, ins, wanted)
            for trade in book.trades_out:
                price, qty = ins.format_price(trade["p"]), ins.format_qty(trade["q"])
                self._send(f"{lower}@trade", {"e": "trade", "E": now, "T": trade["T"], "s": symbol,
                                              "t": trade["t"], "p": price, "q": qty, "X": "MARKET",
                                              "m": trade["m"]}, wanted)
                self._send(f"{lower}@aggTrade", {"e": "aggTrade", "E": now, "a": trade["t"], "s": symbol,
                                                 "p": price, "q": qty, "nq": qty, "f": trade["t"],
                                                 "l": trade["t"], "T": trade["T"], "m": trade["m"]}, wanted)
            book.trades_out.clear()
            bid, ask = book.best(True), book.best(False)
            top = (bid, ask, book.level_qty(True, bid) if bid else 0, book.level_qty(False, ask) if ask else 0)
            if top != self._last_top.get(symbol):
                self._last_top[symbol] = top
                self._send(f"{lower}@bookTicker", {
                    "e": "bookTicker", "u": book.update_id, "E": now, "T": now, "s": symbol,
                    "b": ins.format_price(bid or 0), "B": ins.format_qty(top[2]),
                    "a": ins.format_price(ask or 0), "A": ins.format_qty(top[3])}, wanted)
        if now - self._last_mark_ms >= self.mark_interval_ms:
            self._last_mark_ms = now
            for symbol, book in self.engine.books.items():
                ins = book.instrument
                payload = {"e": "markPriceUpdate", "E": now, "s": symbol,
                           "p": _mark_str(ins, book.mark_ticks), "i": _mark_str(ins, book.index_ticks),
                           "P": _mark_str(ins, book.index_ticks), "r": _rate_str(book.funding_rate),
                           "T": self._next_funding_ms}
                self._send(f"{symbol.lower()}@markPrice@1s", payload, wanted)
                if now // 1000 % 3 == 0:
                    self._send(f"{symbol.lower()}@markPrice", payload, wanted)

    def _depth_event(self, book: Any, ins: Contract, pending: dict[tuple[bool, int], None],
                     chain: list[int], now: int) -> dict[str, Any]:
        bids = [[ins.format_price(p), ins.format_qty(book.level_qty(True, p))] for (b, p) in pending if b]
        asks = [[ins.format_price(p), ins.format_qty(book.level_qty(False, p))] for (b, p) in pending if not b]
        return {"e": "depthUpdate", "E": now, "T": now, "s": book.instrument.symbol, "U": chain[1],
                "u": book.update_id, "pu": chain[0], "b": bids, "a": asks}

    def _swallow_depth(self, symbol: str, speed: int) -> bool:
        # Each stream speed has its own chain, so each loses its next N events.
        requested = self.faults.skip_depth_events.get(symbol, 0)
        if requested:
            for each in (0, 100, 250, 500):
                self._skip_left[(symbol, each)] = self._skip_left.get((symbol, each), 0) + requested
            self.faults.skip_depth_events[symbol] = 0
        left = self._skip_left.get((symbol, speed), 0)
        if left:
            self._skip_left[(symbol, speed)] = left - 1
            return True
        return False

    def _send_depth(self, lower: str, speed: int, event: dict[str, Any], book: Any, ins: Contract,
                    wanted: set[str]) -> None:
        names = [f"{lower}@depth{suffix}" for suffix, ms in DEPTH_SPEEDS_MS.items() if ms == speed]
        for name in names:
            self._send(name, event, wanted)
        for n in (5, 10, 20):
            partial_names = [f"{lower}@depth{n}{suffix}" for suffix, ms in DEPTH_SPEEDS_MS.items()
                             if ms == speed and suffix != "@0ms"]
            if not any(p in wanted for p in partial_names):
                continue
            bids, asks = book.depth(n)
            partial = dict(event, b=[[ins.format_price(p), ins.format_qty(q)] for p, q in bids],
                           a=[[ins.format_price(p), ins.format_qty(q)] for p, q in asks])
            for name in partial_names:
                self._send(name, partial, wanted)

    def _wanted_streams(self) -> set[str]:
        wanted: set[str] = set()
        for conn in self.connections:
            wanted |= conn.streams
        return wanted

    def _send(self, stream: str, payload: dict[str, Any], wanted: set[str]) -> None:
        if stream not in wanted:
            return
        if self.faults.stall_until_ms > self.now_ms():
            return
        raw = json.dumps(payload, separators=(",", ":"))
        if self.faults.malformed_messages > 0 and stream not in self.listen_keys:
            self.faults.malformed_messages -= 1
            raw = raw[: len(raw) // 2]
            for conn in self.connections:
                if stream in conn.streams and conn.queue is not None:
                    conn.queue.put_nowait(raw)
            return
        for conn in self.connections:
            if stream in conn.streams and conn.queue is not None:
                conn.queue.put_nowait(json.dumps({"stream": stream, "data": payload}, separators=(",", ":"))
                                      if conn.combined else raw)

    # -- user data ----------------------------------------------------------------------------
    def _account_event(self, _: Account) -> None:
        self._users_dirty.set()

    async def _flush_users(self) -> None:
        for key, (api_key, _) in list(self.listen_keys.items()):
            account = self.engine.accounts[api_key]
            if not account.events:
                continue
            events, account.events = account.events, []
            wanted = self._wanted_streams()
            for event in events:
                self._send(key, event, wanted)
        for account in self.engine.accounts.values():
            if not any(api == account.api_key for api, _ in self.listen_keys.values()):
                account.events.clear()  # nobody listens: the venue does not queue for later
        self._users_dirty.clear()

    def _expire_listen_keys(self, now: int) -> None:
        for key, (_, expires) in list(self.listen_keys.items()):
            if expires <= now:
                self._send(key, {"e": "listenKeyExpired", "E": now, "listenKey": key}, self._wanted_streams())
                del self.listen_keys[key]
                for conn in self.connections:
                    conn.streams.discard(key)

    # -- HTTP plumbing ------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            # Admin endpoints: a malformed or mistyped body is the caller's mistake, answered 400 with why.
            try:
                return await handler(request)
            except (ValueError, KeyError, TypeError, AttributeError, ArithmeticError, RecursionError) as exc:
                return web.json_response({"error": f"bad request: {type(exc).__name__}: {str(exc)[:200]}"},
                                         status=400)
        if not request.path.startswith("/fapi/"):
            return await handler(request)
        self.stats["rest_requests"] += 1
        now = self.now_ms()
        try:
            weight = _weight(request)
        except (ValueError, ArithmeticError):
            return _error(400, -1100, "Illegal characters found in a parameter.", {})
        used = self.weights.add(now, weight)
        headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
        try:
            if self.weights.banned_until_ms > now or self.faults.rest_418 > 0:
                self.faults.rest_418 = max(0, self.faults.rest_418 - 1)
                until = max(self.weights.banned_until_ms, now + 120_000)
                self.weights.banned_until_ms = until
                return _error(418, -1003, f"Way too many requests; IP banned until {until}. Please use "
                                          f"the websocket for live updates to avoid bans.",
                              {**headers, "Retry-After": str(max(1, (until - now) // 1000))})
            if used > self.weights.limit or self.faults.rest_429 > 0:
                self.faults.rest_429 = max(0, self.faults.rest_429 - 1)
                self.weights.over_limit_hits += 1
                if self.weights.over_limit_hits > 5:  # kept hammering after 429s: ban
                    self.weights.banned_until_ms = now + 120_000
                return _error(429, -1003, f"Too many requests; current limit is {self.weights.limit} "
                                          f"requests per minute. Please use the websocket for live updates "
                                          f"to avoid polling the API.", {**headers, "Retry-After": "60"})
            self.weights.over_limit_hits = 0
            if self.faults.rest_5xx > 0:
                self.faults.rest_5xx -= 1
                return _error(503, -1001, "Service Unavailable.", headers)
            response = await handler(request)
        except VenueError as exc:
            response = web.json_response(exc.body(), status=exc.status)
        except UnknownStatus:
            response = web.json_response({"code": -1000, "msg": "Unknown error, please check your request or "
                                                                  "try again later."}, status=503)
        except (ValueError, KeyError, TypeError, ArithmeticError, RecursionError) as exc:
            # A parameter the handlers could not read: the venue's "malformed" answer, never a 500.
            response = web.json_response({"code": -1102, "msg": f"A mandatory parameter was not sent, was empty"
                                                                f"/null, or malformed ({type(exc).__name__})."},
                                         status=400)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = web.json_response({"code": -1000 if exc.status >= 500 else -5000,
                                          "msg": f"{exc.reason}: {request.method} {request.path}"}, status=exc.status)
        response.headers.update(headers)
        if request.path in ("/fapi/v1/order", "/fapi/v1/batchOrders") and request.method == "POST":
            response.headers["X-MBX-ORDER-COUNT-10S"] = str(sum(1 for t in self.order_times if t > now - 10_000))
            response.headers["X-MBX-ORDER-COUNT-1M"] = str(len(self.order_times))
        return response

    async def _params(self, request: web.Request) -> dict[str, str]:
        body = await request.text()
        params: dict[str, str] = {}
        if body and not body.lstrip().startswith("{"):
            params.update(parse_qsl(body, keep_blank_values=True))
        params.update(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))  # the query wins
        return params

    async def _signed(self, request: web.Request) -> tuple[Account, dict[str, str]]:
        """Key, signature and timestamp checks of a TRADE/USER_DATA request."""
        account = self._keyed(request)
        body = await request.text()
        raw_query = request.rel_url.raw_query_string
        params = await self._params(request)
        signature = params.get("signature")
        if not signature:
            raise VenueError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        total = _strip_signature(raw_query) + _strip_signature(body if not body.lstrip().startswith("{") else "")
        expected = hmac.new(account.api_secret.encode(), total.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise VenueError(-1022, "Signature for this request is not valid.")
        try:
            timestamp = int(params["timestamp"])
            recv_window = int(params.get("recvWindow", "5000"))
        except (KeyError, ValueError):
            raise VenueError(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, "
                                    "or malformed.") from None
        if recv_window > 60_000 or recv_window <= 0:
            raise VenueError(-1131, "recvWindow must be less than 60000")
        now = self.now_ms()
        if timestamp >= now + 1000:
            raise VenueError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now - timestamp > recv_window:
            raise VenueError(-1021, "Timestamp for this request is outside of the recvWindow.")
        return account, params

    def _keyed(self, request: web.Request) -> Account:
        key = request.headers.get("X-MBX-APIKEY", "")
        if not key:
            raise VenueError(-2014, "API-key format invalid.", 401)
        account = self.engine.accounts.get(key)
        if account is None:
            raise VenueError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        return account

    # -- REST endpoints ------------------------------------------------------------------------
    def _rest_routes(self) -> dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]:
        return {
            "GET /fapi/v1/ping": self.ping, "GET /fapi/v1/time": self.time,
            "GET /fapi/v1/exchangeInfo": self.exchange_info, "GET /fapi/v1/depth": self.depth,
            "GET /fapi/v1/trades": self.recent_trades, "GET /fapi/v1/aggTrades": self.agg_trades,
            "GET /fapi/v1/premiumIndex": self.premium_index, "GET /fapi/v1/ticker/bookTicker": self.book_ticker,
            "GET /fapi/v1/ticker/price": self.ticker_price,
            "POST /fapi/v1/order": self.new_order, "GET /fapi/v1/order": self.query_order,
            "DELETE /fapi/v1/order": self.cancel_order, "GET /fapi/v1/openOrders": self.open_orders,
            "GET /fapi/v1/openOrder": self.open_order, "GET /fapi/v1/allOrders": self.all_orders,
            "DELETE /fapi/v1/allOpenOrders": self.cancel_all,
            "POST /fapi/v1/batchOrders": self.batch_orders, "DELETE /fapi/v1/batchOrders": self.batch_cancel,
            "GET /fapi/v1/userTrades": self.user_trades,
            "GET /fapi/v2/positionRisk": self.position_risk_v2, "GET /fapi/v3/positionRisk": self.position_risk_v3,
            "GET /fapi/v2/account": self.account_v2, "GET /fapi/v3/account": self.account_v3,
            "GET /fapi/v2/balance": self.balance, "GET /fapi/v3/balance": self.balance,
            "POST /fapi/v1/leverage": self.leverage, "POST /fapi/v1/marginType": self.margin_type,
            "GET /fapi/v1/positionSide/dual": self.position_side,
            "GET /fapi/v1/leverageBracket": self.leverage_bracket,
            "GET /fapi/v1/commissionRate": self.commission_rate,
            "POST /fapi/v1/listenKey": self.listen_key_new, "PUT /fapi/v1/listenKey": self.listen_key_keepalive,
            "DELETE /fapi/v1/listenKey": self.listen_key_close,
        }

    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": self.now_ms()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        return web.json_response({
            "timezone": "UTC", "serverTime": self.now_ms(), "futuresType": "U_MARGINED",
            "rateLimits": self.table["rateLimits"], "exchangeFilters": [], "assets": self.table["assets"],
            "symbols": list(self.entries.values())})

    def _book(self, params: dict[str, str]) -> Any:
        symbol = params.get("symbol", "")
        if not symbol:
            raise VenueError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        self.engine.instrument(symbol)
        return self.engine.books[symbol]

    async def depth(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        book = self._book(params)
        limit = int(params.get("limit", "500"))
        if limit not in (5, 10, 20, 50, 100, 500, 1000):
            raise VenueError(-1130, "Data sent for parameter 'limit' is not valid.")
        ins = book.instrument
        # The snapshot id is the last id the streams have reached or will reach.
        bids, asks = book.depth(limit)
        now = self.now_ms()
        return web.json_response({
            "lastUpdateId": book.update_id, "E": now, "T": now,
            "bids": [[ins.format_price(p), ins.format_qty(q)] for p, q in bids],
            "asks": [[ins.format_price(p), ins.format_qty(q)] for p, q in asks]})

    def _recent(self, params: dict[str, str]) -> tuple[Any, list[dict[str, Any]]]:
        book = self._book(params)
        try:
            limit = min(1000, max(1, int(params.get("limit", "500"))))
        except ValueError:
            raise VenueError(-1130, "Data sent for parameter 'limit' is not valid.") from None
        return book, list(book.recent_trades)[-limit:]

    async def recent_trades(self, request: web.Request) -> web.Response:
        book, trades = self._recent(await self._params(request))
        ins = book.instrument
        return web.json_response([{
            "id": t["t"], "price": ins.format_price(t["p"]), "qty": ins.format_qty(t["q"]),
            "quoteQty": format_units(ins.price_units(t["p"]) * ins.qty_units(t["q"]), ins.notional_scale),
            "time": t["T"], "isBuyerMaker": t["m"]} for t in trades])

    async def agg_trades(self, request: web.Request) -> web.Response:
        # Each simulated trade is one taker fill at one price, so it is its own aggregate.
        book, trades = self._recent(await self._params(request))
        ins = book.instrument
        return web.json_response([{"a": t["t"], "p": ins.format_price(t["p"]), "q": ins.format_qty(t["q"]),
                                   "f": t["t"], "l": t["t"], "T": t["T"], "m": t["m"]} for t in trades])

    def _premium(self, book: Any) -> dict[str, Any]:
        ins = book.instrument
        return {"symbol": ins.symbol, "markPrice": _mark_str(ins, book.mark_ticks),
                "indexPrice": _mark_str(ins, book.index_ticks), "estimatedSettlePrice": _mark_str(ins, book.index_ticks),
                "lastFundingRate": _rate_str(book.funding_rate), "interestRate": "0.00010000",
                "nextFundingTime": self._next_funding_ms, "time": self.now_ms()}

    async def premium_index(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        if params.get("symbol"):
            return web.json_response(self._premium(self._book(params)))
        return web.json_response([self._premium(b) for b in self.engine.books.values()])

    async def book_ticker(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        books = [self._book(params)] if params.get("symbol") else list(self.engine.books.values())
        out = []
        for book in books:
            ins = book.instrument
            bid, ask = book.best(True) or 0, book.best(False) or 0
            out.append({"symbol": ins.symbol, "bidPrice": ins.format_price(bid),
                        "bidQty": ins.format_qty(book.level_qty(True, bid)), "askPrice": ins.format_price(ask),
                        "askQty": ins.format_qty(book.level_qty(False, ask)), "time": self.now_ms()})
        return web.json_response(out[0] if params.get("symbol") else out)

    async def ticker_price(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        books = [self._book(params)] if params.get("symbol") else list(self.engine.books.values())
        out = [{"symbol": b.instrument.symbol, "price": b.instrument.format_price(b.last_price_ticks),
                "time": self.now_ms()} for b in books]
        return web.json_response(out[0] if params.get("symbol") else out)

    def _count_order(self) -> None:
        now = self.now_ms()
        self.order_times.append(now)
        while self.order_times and self.order_times[0] <= now - 60_000:
            self.order_times.popleft()
        if self.faults.order_429 > 0:
            self.faults.order_429 -= 1
            raise VenueError(-1015, "Too many new orders; current limit is 300 orders per 10 SECOND.", 429)
        if sum(1 for t in self.order_times if t > now - 10_000) > 300:
            raise VenueError(-1015, "Too many new orders; current limit is 300 orders per 10 SECOND.", 429)

    async def new_order(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        self._count_order()
        order = self.engine.place(account, params)
        self.stats["orders"] += 1
        await self._flush_users()
        if self.faults.rest_unknown_503 > 0:
            self.faults.rest_unknown_503 -= 1
            raise UnknownStatus()
        body = self.engine.order_json(order)
        body["cumQty"] = body["executedQty"]
        return web.json_response(body)

    def _find(self, account: Account, params: dict[str, str]) -> Any:
        order_id = params.get("orderId")
        try:
            oid = int(order_id) if order_id else None
        except ValueError:
            raise VenueError(-1102, "Mandatory parameter 'orderId' was not sent, was empty/null, or malformed.") from None
        return self.engine.find(account, params.get("symbol", ""), oid, params.get("origClientOrderId"))

    async def query_order(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        if not params.get("symbol"):
            raise VenueError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        order = self._find(account, params)
        if order is None:
            raise VenueError(-2013, "Order does not exist.")
        body = self.engine.order_json(order)
        body["time"] = order.time_ms
        return web.json_response(body)

    async def cancel_order(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        order_id = params.get("orderId")
        order = self.engine.cancel(account, params.get("symbol", ""), int(order_id) if order_id else None,
                                   params.get("origClientOrderId"))
        await self._flush_users()
        body = self.engine.order_json(order)
        body["cumQty"] = body["executedQty"]
        return web.json_response(body)

    async def open_orders(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        symbol = params.get("symbol")
        if symbol:
            self.engine.instrument(symbol)
        out = []
        for order in account.orders.values():
            if order.is_open and (not symbol or order.symbol == symbol):
                body = self.engine.order_json(order)
                body["time"] = order.time_ms
                out.append(body)
        return web.json_response(out)

    async def open_order(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        order = self._find(account, params)
        if order is None or not order.is_open:
            raise VenueError(-2013, "Order does not exist.")
        body = self.engine.order_json(order)
        body["time"] = order.time_ms
        return web.json_response(body)

    async def all_orders(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        symbol = params.get("symbol", "")
        self.engine.instrument(symbol)
        out = [dict(self.engine.order_json(o), time=o.time_ms) for o in account.orders.values() if o.symbol == symbol]
        return web.json_response(out[-int(params.get("limit", "500")):])

    async def cancel_all(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        self.engine.cancel_all(account, params.get("symbol", ""))
        await self._flush_users()
        return web.json_response({"code": 200, "msg": "The operation of cancel all open order is done."})

    async def batch_orders(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        try:
            orders = json.loads(params.get("batchOrders", ""))
            assert isinstance(orders, list) and all(isinstance(o, dict) for o in orders)
        except (ValueError, AssertionError):
            raise VenueError(-1102, "Mandatory parameter 'batchOrders' was not sent, was empty/null, "
                                    "or malformed.") from None
        if len(orders) > 5:
            raise VenueError(-4082, "Invalid number of batch place orders.")
        out: list[dict[str, Any]] = []
        for spec in orders:
            try:
                self._count_order()
                order = self.engine.place(account, {k: str(v).lower() if isinstance(v, bool) else str(v)
                                                    for k, v in spec.items()})
                body = self.engine.order_json(order)
                body["cumQty"] = body["executedQty"]
                out.append(body)
            except VenueError as exc:
                out.append(exc.body())
        await self._flush_users()
        return web.json_response(out)

    async def batch_cancel(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        lowered = {k.lower(): v for k, v in params.items()}
        ids = lowered.get("orderidlist")
        client_ids = lowered.get("origclientorderidlist")
        try:
            targets = [(int(i), None) for i in json.loads(ids)] if ids else \
                [(None, c) for c in json.loads(client_ids or "")]
        except ValueError:
            raise VenueError(-1102, "Mandatory parameter 'orderIdList' was not sent, was empty/null, "
                                    "or malformed.") from None
        if len(targets) > 10:
            raise VenueError(-4083, "Invalid number of batch cancel orders.")
        out: list[dict[str, Any]] = []
        for oid, cid in targets:
            try:
                order = self.engine.cancel(account, params.get("symbol", ""), oid, cid)
                out.append(self.engine.order_json(order))
            except VenueError as exc:
                out.append(exc.body())
        await self._flush_users()
        return web.json_response(out)

    async def user_trades(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        symbol = params.get("symbol", "")
        self.engine.instrument(symbol)
        trades = [t for t in account.trades if t["symbol"] == symbol]
        return web.json_response(trades[-int(params.get("limit", "500")):])

    def _position_entry(self, account: Account, symbol: str) -> dict[str, Any]:
        pos = account.positions[symbol]
        ins = pos.instrument
        mark = self.engine.mark(symbol)
        liq = self.engine.liquidation_price(account, symbol)
        notional = pos.instrument.notional(mark, pos.qty_steps) if pos.qty_steps else 0
        return {"symbol": symbol, "positionAmt": ins.format_qty(pos.qty_steps),
                "entryPrice": _price_str(pos.entry_price), "breakEvenPrice": _price_str(pos.entry_price),
                "markPrice": _mark_str(ins, mark), "unRealizedProfit": money_str(pos.unrealized_pnl(mark)),
                "liquidationPrice": _price_str(liq) if liq is not None else "0",
                "notional": money_str(notional), "isolatedMargin": "0.00000000", "isolatedWallet": "0",
                "positionSide": "BOTH", "updateTime": self.now_ms(),
                "initialMargin": money_str(self.engine.position_initial_margin(account, symbol)),
                "maintMargin": money_str(pos.maint_margin(mark))}

    async def position_risk_v2(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        symbols = [params["symbol"]] if params.get("symbol") else list(account.positions)
        out = []
        for symbol in symbols:
            self.engine.instrument(symbol)
            entry = self._position_entry(account, symbol)
            out.append({k: entry[k] for k in ("entryPrice", "breakEvenPrice", "isolatedMargin", "liquidationPrice",
                                              "markPrice", "positionAmt", "notional", "isolatedWallet", "symbol",
                                              "positionSide", "updateTime")} |
                       {"marginType": account.margin_type[symbol], "isAutoAddMargin": "false",
                        "leverage": str(account.leverage[symbol]), "maxNotionalValue": "1000000",
                        "unRealizedProfit": entry["unRealizedProfit"]})
        return web.json_response(out)

    async def position_risk_v3(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        symbols = [params["symbol"]] if params.get("symbol") else list(account.positions)
        out = []
        for symbol in symbols:
            self.engine.instrument(symbol)
            has_orders = any(o.is_open and o.symbol == symbol for o in account.orders.values())
            if account.positions[symbol].qty_steps or has_orders:
                entry = self._position_entry(account, symbol)
                entry.update(marginAsset="USDT", positionInitialMargin=entry["initialMargin"],
                             openOrderInitialMargin=money_str(self.engine.open_order_margin(account, symbol)),
                             adl=0, bidNotional="0", askNotional="0")
                out.append(entry)
        return web.json_response(out)

    def _totals(self, account: Account) -> dict[str, str]:
        upnl = self.engine.unrealized(account)
        position_im = sum(self.engine.position_initial_margin(account, s) for s in account.positions)
        order_im = self.engine.open_order_margin(account)
        available = self.engine.available_balance(account)
        return {"totalInitialMargin": money_str(position_im + order_im),
                "totalMaintMargin": money_str(self.engine.maint_margin(account)),
                "totalWalletBalance": money_str(account.wallet), "totalUnrealizedProfit": money_str(upnl),
                "totalMarginBalance": money_str(account.wallet + upnl),
                "totalPositionInitialMargin": money_str(position_im),
                "totalOpenOrderInitialMargin": money_str(order_im),
                "totalCrossWalletBalance": money_str(account.wallet), "totalCrossUnPnl": money_str(upnl),
                "availableBalance": money_str(available), "maxWithdrawAmount": money_str(max(available, 0))}

    def _asset(self, account: Account) -> dict[str, Any]:
        t = self._totals(account)
        return {"asset": "USDT", "walletBalance": t["totalWalletBalance"], "unrealizedProfit": t["totalUnrealizedProfit"],
                "marginBalance": t["totalMarginBalance"], "maintMargin": t["totalMaintMargin"],
                "initialMargin": t["totalInitialMargin"], "positionInitialMargin": t["totalPositionInitialMargin"],
                "openOrderInitialMargin": t["totalOpenOrderInitialMargin"],
                "crossWalletBalance": t["totalCrossWalletBalance"], "crossUnPnl": t["totalCrossUnPnl"],
                "availableBalance": t["availableBalance"], "maxWithdrawAmount": t["maxWithdrawAmount"],
                "updateTime": self.now_ms()}

    async def account_v2(self, request: web.Request) -> web.Response:
        account, _ = await self._signed(request)
        positions = []
        for symbol in account.positions:
            e = self._position_entry(account, symbol)
            positions.append({"symbol": symbol, "initialMargin": e["initialMargin"], "maintMargin": e["maintMargin"],
                              "unrealizedProfit": e["unRealizedProfit"], "positionInitialMargin": e["initialMargin"],
                              "openOrderInitialMargin": money_str(self.engine.open_order_margin(account, symbol)),
                              "leverage": str(account.leverage[symbol]), "isolated": False,
                              "entryPrice": e["entryPrice"], "maxNotional": "1000000", "bidNotional": "0",
                              "askNotional": "0", "positionSide": "BOTH", "positionAmt": e["positionAmt"],
                              "updateTime": e["updateTime"]})
        return web.json_response({"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True,
                                  "updateTime": 0, "multiAssetsMargin": False, "tradeGroupId": -1,
                                  **self._totals(account), "assets": [dict(self._asset(account), marginAvailable=True)],
                                  "positions": positions})

    async def account_v3(self, request: web.Request) -> web.Response:
        account, _ = await self._signed(request)
        positions = []
        for symbol, pos in account.positions.items():
            if pos.qty_steps:
                e = self._position_entry(account, symbol)
                positions.append({"symbol": symbol, "positionSide": "BOTH", "positionAmt": e["positionAmt"],
                                  "unrealizedProfit": e["unRealizedProfit"], "isolatedMargin": "0",
                                  "notional": e["notional"], "isolatedWallet": "0",
                                  "initialMargin": e["initialMargin"], "maintMargin": e["maintMargin"],
                                  "updateTime": e["updateTime"]})
        return web.json_response({**self._totals(account), "assets": [self._asset(account)], "positions": positions})

    async def balance(self, request: web.Request) -> web.Response:
        account, _ = await self._signed(request)
        t = self._totals(account)
        return web.json_response([{"accountAlias": "SgsR", "asset": "USDT", "balance": t["totalWalletBalance"],
                                   "crossWalletBalance": t["totalCrossWalletBalance"], "crossUnPnl": t["totalCrossUnPnl"],
                                   "availableBalance": t["availableBalance"], "maxWithdrawAmount": t["maxWithdrawAmount"],
                                   "marginAvailable": True, "updateTime": self.now_ms()}])

    async def leverage(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        try:
            lev = int(params.get("leverage", ""))
        except ValueError:
            raise VenueError(-1102, "Mandatory parameter 'leverage' was not sent, was empty/null, "
                                    "or malformed.") from None
        symbol = params.get("symbol", "")
        self.engine.set_leverage(account, symbol, lev)
        await self._flush_users()
        return web.json_response({"leverage": lev, "maxNotionalValue": "1000000", "symbol": symbol})

    async def margin_type(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        symbol = params.get("symbol", "")
        self.engine.instrument(symbol)
        kind = params.get("marginType", "").upper()
        if kind not in ("ISOLATED", "CROSSED"):
            raise VenueError(-1102, "Mandatory parameter 'marginType' was not sent, was empty/null, or malformed.")
        wanted = "isolated" if kind == "ISOLATED" else "cross"
        if account.margin_type[symbol] == wanted:
            raise VenueError(-4046, "No need to change margin type.")
        if account.positions[symbol].qty_steps:
            raise VenueError(-4048, "Margin type cannot be changed if there exists position.")
        account.margin_type[symbol] = wanted
        return web.json_response({"code": 200, "msg": "success"})

    async def position_side(self, request: web.Request) -> web.Response:
        await self._signed(request)
        return web.json_response({"dualSidePosition": False})

    async def leverage_bracket(self, request: web.Request) -> web.Response:
        await self._signed(request)
        params = await self._params(request)
        out = [{"symbol": i.symbol, "notionalCoef": 1.0, "brackets": [{
            "bracket": 1, "initialLeverage": self.engine.config.max_leverage, "notionalCap": 1_000_000,
            "notionalFloor": 0, "maintMarginRatio": float(i.maint_margin_rate), "cum": 0.0}]}
               for i in self.contracts if not params.get("symbol") or i.symbol == params["symbol"]]
        return web.json_response(out[0] if params.get("symbol") else out)

    async def commission_rate(self, request: web.Request) -> web.Response:
        _, params = await self._signed(request)
        self.engine.instrument(params.get("symbol", ""))
        return web.json_response({"symbol": params["symbol"],
                                  "makerCommissionRate": _rate_str(self.engine.config.maker_fee, 4),
                                  "takerCommissionRate": _rate_str(self.engine.config.taker_fee, 4)})

    async def listen_key_new(self, request: web.Request) -> web.Response:
        account = self._keyed(request)
        now = self.now_ms()
        for key, (api, _) in self.listen_keys.items():
            if api == account.api_key:  # an active key is returned again, and extended
                self.listen_keys[key] = (api, now + LISTEN_KEY_TTL_MS)
                return web.json_response({"listenKey": key})
        key = secrets.token_hex(32)
        self.listen_keys[key] = (account.api_key, now + LISTEN_KEY_TTL_MS)
        return web.json_response({"listenKey": key})

    async def listen_key_keepalive(self, request: web.Request) -> web.Response:
        account = self._keyed(request)
        for key, (api, _) in self.listen_keys.items():
            if api == account.api_key:
                self.listen_keys[key] = (api, self.now_ms() + LISTEN_KEY_TTL_MS)
                return web.json_response({"listenKey": key})
        raise VenueError(-1125, "This listenKey does not exist.")

    async def listen_key_close(self, request: web.Request) -> web.Response:
        account = self._keyed(request)
        for key, (api, _) in list(self.listen_keys.items()):
            if api == account.api_key:
                del self.listen_keys[key]
        return web.json_response({})

    # -- WebSocket ------------------------------------------------------------------------------
    async def _ws_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=self.ping_interval_s, autoping=True)
        await ws.prepare(request)
        path = request.path
        combined = "/stream" in path
        conn = Connection(ws, combined, opened_ms=self.now_ms(), queue=asyncio.Queue())
        streams: list[str] = []
        if request.query.get("streams"):
            streams += request.query["streams"].split("/")
        if request.query.get("listenKey"):
            streams.append(request.query["listenKey"])
        if "/ws/" in path:
            streams += [s for s in path.split("/ws/", 1)[1].split("/") if s]
        conn.streams.update(s for s in streams if self._valid_stream(s))
        self.connections.append(conn)
        sender = asyncio.create_task(self._ws_sender(conn))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    reply = self._ws_control(conn, msg.data)
                    if reply is not None:
                        await ws.send_str(json.dumps(reply))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            sender.cancel()
            if conn in self.connections:
                self.connections.remove(conn)
        return ws

    async def _ws_sender(self, conn: Connection) -> None:
        assert conn.queue is not None
        while True:
            raw = await conn.queue.get()
            if self.faults.ws_delay_ms:
                await asyncio.sleep(self.faults.ws_delay_ms / 1000)
            try:
                await conn.ws.send_str(raw)
                self.stats["ws_messages"] += 1
            except (ConnectionResetError, RuntimeError):
                return

    def _valid_stream(self, name: str) -> bool:
        if name in self.listen_keys:
            return True
        symbol, _, kind = name.partition("@")
        return symbol.upper() in self.engine.books and bool(kind)

    def _ws_control(self, conn: Connection, data: str) -> dict[str, Any] | None:
        try:
            msg = json.loads(data)
        except ValueError as exc:
            return {"code": 3, "msg": f"Invalid JSON: {exc}"}
        if not isinstance(msg, dict):
            return {"code": 2, "msg": "Invalid request: request must be an object"}
        method, req_id = msg.get("method"), msg.get("id")
        params = msg.get("params", [])
        if method == "SUBSCRIBE":
            bad = [p for p in params if not isinstance(p, str) or not self._valid_stream(p)]
            if bad:
                return {"code": 2, "msg": f"Invalid request: unknown stream {bad[0]!r}", "id": req_id}
            conn.streams.update(params)
            return {"result": None, "id": req_id}
        if method == "UNSUBSCRIBE":
            conn.streams.difference_update(params)
            return {"result": None, "id": req_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(conn.streams), "id": req_id}
        if method == "SET_PROPERTY":
            if params[:1] == ["combined"] and len(params) == 2:
                if not isinstance(params[1], bool):
                    return {"code": 1, "msg": "Invalid value type: expected Boolean", "id": req_id}
                conn.combined = params[1]
                return {"result": None, "id": req_id}
            return {"code": 0, "msg": "Unknown property", "id": req_id}
        if method == "GET_PROPERTY":
            if params[:1] == ["combined"]:
                return {"result": conn.combined, "id": req_id}
            return {"code": 0, "msg": "Unknown property", "id": req_id}
        return {"code": 2, "msg": f"Invalid request: unknown method {method!r}", "id": req_id}

    # -- admin (fault injection) ----------------------------------------------------------------
    async def _admin_faults(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict):
            return web.json_response({"error": "the body is a JSON object of faults"}, status=400)
        now = self.now_ms()
        for key, value in body.items():
            if key == "skip_depth_events":
                self.faults.skip_depth_events.update({k.upper(): int(v) for k, v in value.items()})
            elif key == "stall_ms":
                if not 0 <= int(value) <= 86_400_000:
                    return web.json_response({"error": "stall_ms out of range 0..86400000"}, status=400)
                self.faults.stall_until_ms = now + int(value)
            elif key in ("ws_delay_ms", "rest_5xx", "rest_unknown_503", "rest_429", "rest_418", "clock_skew_ms",
                         "malformed_messages", "order_429"):
                number = int(value)
                if not (-86_400_000 if key == "clock_skew_ms" else 0) <= number <= 86_400_000:
                    return web.json_response({"error": f"{key} out of range"}, status=400)
                setattr(self.faults, key, number)
            elif key == "reset":
                self.faults = Faults()
            else:
                return web.json_response({"error": f"unknown fault {key!r}"}, status=400)
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
        which = (await request.json()).get("which", "all") if request.can_read_body else "all"
        if which not in ("all", "market", "user"):
            return web.json_response({"error": f"which must be all, market or user, not {which!r}"}, status=400)
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
                "open_orders": sum(1 for o in account.orders.values() if o.is_open)}
        return web.json_response({"time_ms": self.now_ms(), "faults": self._faults_json(), "stats": self.stats,
                                  "connections": len(self.connections), "accounts": accounts})

    async def _admin_position(self, request: web.Request) -> web.Response:
        """Change a position behind the client's back (reconciliation tests)."""
        body = await request.json()
        account = next(iter(self.engine.accounts.values()))
        symbol = body["symbol"]
        pos = account.positions[symbol]
        ins = pos.instrument
        qty = ins.qty(body["qty"])
        price = ins.price(body["price"]) if body.get("price") else self.engine.mark(symbol)
        if price <= 0:
            return web.json_response({"error": "price must be positive"}, status=400)
        pos.qty_steps = qty
        pos.cost = Fraction(abs(qty) * price)
        return web.json_response({"symbol": symbol, "positionAmt": ins.format_qty(pos.qty_steps)})

    async def _admin_funding(self, request: web.Request) -> web.Response:
        for symbol in self.engine.books:
            self.engine.apply_funding(symbol)
        await self._flush_users()
        return web.json_response({"applied": True})


class UnknownStatus(Exception):
    """The order was executed, but the answer is the venue's "unknown status" 503."""


def _strip_signature(raw: str) -> str:
    if "signature=" not in raw:
        return raw
    return "&".join(part for part in raw.split("&") if not part.startswith("signature="))


def _error(status: int, code: int, msg: str, headers: dict[str, str]) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status, headers=headers)


_WEIGHTS = {"/fapi/v1/exchangeInfo": 1, "/fapi/v2/account": 5, "/fapi/v3/account": 5, "/fapi/v2/balance": 5,
            "/fapi/v3/balance": 5, "/fapi/v2/positionRisk": 5, "/fapi/v3/positionRisk": 5,
            "/fapi/v1/positionSide/dual": 30, "/fapi/v1/batchOrders": 5, "/fapi/v1/userTrades": 5,
            "/fapi/v1/allOrders": 5, "/fapi/v1/order": 1}


def _weight(request: web.Request) -> int:
    path = request.path
    if path == "/fapi/v1/depth":
        limit = int(request.query.get("limit", "500") or 500) if request.query.get("limit", "500").isdigit() else 500
        return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20
    if path == "/fapi/v1/openOrders":
        return 1 if request.query.get("symbol") else 40
    if path == "/fapi/v1/order" and request.method == "POST":
        return 0
    return _WEIGHTS.get(path, 1)


def _mark_str(ins: Contract, ticks: int) -> str:
    return ins.format_price(ticks) + "000000"[: max(0, 8 - ins.price_scale)]


def _rate_str(rate: Any, decimals: int = 8) -> str:
    from celeris.domain.values import format_units, fraction_to_units

    return format_units(fraction_to_units(rate, decimals), decimals)


async def start(venue: SimVenue, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, int]:
    """Start the venue's HTTP/WebSocket server; returns the runner and the bound port."""
    runner = web.AppRunner(venue.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = site._server.sockets if site._server else []  # aiohttp exposes no public getter
    return runner, sockets[0].getsockname()[1]

