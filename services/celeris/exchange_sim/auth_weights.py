"""Who may call the simulated venue and how much: API keys, HMAC signatures, timestamps, request weights.

Owns the REST plumbing every /fapi/ request goes through: parameter merging (query wins over the form
body, for every method), HMAC-SHA256 over the raw query string + raw body, the timestamp/recvWindow rule,
API-key checks (-2014 / -2015), request weights per endpoint over a rolling minute with
X-MBX-USED-WEIGHT-1M, 429 then the 418 ban with Retry-After, the order-count limit (-1015) and its
X-MBX-ORDER-COUNT headers, the injected REST faults (5xx, unknown-status 503), and turning refusals and
unreadable parameters into the venue's {code, msg} answers.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import web

from celeris.exchange_sim import admin_bodies as bodies, params as strict
from celeris.exchange_sim.engine import Account, MatchingEngine, VenueError

log = logging.getLogger(__name__)


class UnknownStatus(Exception):
    """The order was executed, but the answer is the venue's "unknown status" 503."""


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


class AuthWeights:
    """Part of SimVenue: the middleware and the key/signature checks of the REST endpoints."""

    engine: MatchingEngine
    faults: Any
    weights: WeightWindow
    order_times: deque[int]
    orders_per_10s: int
    stats: dict[str, int]

    if TYPE_CHECKING:  # members of SimVenue and its other parts this one uses
        def now_ms(self) -> int: ...

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        # Every refusal, whatever raised it (the router's 404/405, aiohttp's 413 for an oversized body, a bug
        # in a handler), leaves as the venue's {"code", "msg"} JSON, never aiohttp's plain text.
        try:
            if request.path.startswith("/_sim/"):
                return await self._admin_call(request, handler)
            if not request.path.startswith("/fapi/"):
                return await handler(request)
            return await self._fapi_call(request, handler)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error(exc.status, -1000 if exc.status >= 500 else -5000,
                          f"{exc.reason}: {request.method} {request.path}", {})
        except Exception:  # a bug: the venue answers 500 as Binance does, and keeps serving
            log.exception("simulator handler failed: %s %s", request.method, request.path)
            return _error(500, -1000, "An unknown error occured while processing the request.", {})

    async def _admin_call(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        # Admin endpoints: a malformed or mistyped body is the caller's mistake, answered 400 with why.
        try:
            return await handler(request)
        except bodies.BadBody as exc:
            return bodies.refusal(exc.reason)

    def _admit(self, now: int, weight: int) -> tuple[int, VenueError | None]:
        """Count a request's weight (REST and WebSocket API share the IP's minute); the refusal if over."""
        used = self.weights.add(now, weight)
        if self.weights.banned_until_ms > now or self.faults.rest_418 > 0:
            self.faults.rest_418 = max(0, self.faults.rest_418 - 1)
            until = max(self.weights.banned_until_ms, now + 120_000)
            self.weights.banned_until_ms = until
            return used, VenueError(-1003, f"Way too many requests; IP banned until {until}. Please use "
                                           f"the websocket for live updates to avoid bans.", 418)
        if used > self.weights.limit or self.faults.rest_429 > 0:
            self.faults.rest_429 = max(0, self.faults.rest_429 - 1)
            self.weights.over_limit_hits += 1
            if self.weights.over_limit_hits > 5:  # kept hammering after 429s: ban
                self.weights.banned_until_ms = now + 120_000
            return used, VenueError(-1003, f"Too many requests; current limit is {self.weights.limit} "
                                           f"requests per minute. Please use the websocket for live updates "
                                           f"to avoid polling the API.", 429)
        self.weights.over_limit_hits = 0
        return used, None

    async def _fapi_call(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        self.stats["rest_requests"] += 1
        now = self.now_ms()
        try:
            weight = _weight(request)
        except (ValueError, ArithmeticError):
            return _error(400, -1100, "Illegal characters found in a parameter.", {})
        used, refusal = self._admit(now, weight)
        headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
        if refusal is not None:
            if refusal.status == 418:
                headers["Retry-After"] = str(max(1, (self.weights.banned_until_ms - now) // 1000))
            elif refusal.status == 429:
                headers["Retry-After"] = "60"
            return _error(refusal.status, refusal.code, refusal.msg, headers)
        try:
            if self.faults.rest_5xx > 0:
                self.faults.rest_5xx -= 1
                return _error(503, -1001, "Service Unavailable.", headers)
            response = await handler(request)
        except VenueError as exc:
            response = web.json_response(exc.body(), status=exc.status)
        except UnknownStatus:
            response = web.json_response({"code": -1000, "msg": "Unknown error, please check your request or "
                                                                  "try again later."}, status=503)
        except (ValueError, KeyError, TypeError, ArithmeticError, RecursionError):
            # A parameter some handler read loosely (params.py reads them strictly): the venue's generic
            # "malformed" answer, never a 500 and never our exception's name; logged, as it is our gap.
            log.warning("simulator handler could not read a parameter: %s %s", request.method, request.path,
                        exc_info=True)
            response = web.json_response({"code": -1102, "msg": "A mandatory parameter was not sent, was empty"
                                                                "/null, or malformed."}, status=400)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = web.json_response({"code": -1000 if exc.status >= 500 else -5000,
                                          "msg": f"{exc.reason}: {request.method} {request.path}"}, status=exc.status)
        except Exception:  # a bug: a 500 with the venue's -1000 (and the weight headers), the venue keeps serving
            log.exception("simulator handler failed: %s %s", request.method, request.path)
            response = _error(500, -1000, "An unknown error occured while processing the request.", {})
        response.headers.update(headers)
        if request.path in ("/fapi/v1/order", "/fapi/v1/batchOrders", "/fapi/v1/algoOrder") and \
                request.method in ("POST", "PUT"):
            response.headers["X-MBX-ORDER-COUNT-10S"] = str(self._orders_since(now - 10_000))
            response.headers["X-MBX-ORDER-COUNT-1M"] = str(len(self.order_times))
        return response

    async def _params(self, request: web.Request) -> dict[str, str]:
        body = await request.text()
        params: dict[str, str] = {}
        if body and not body.lstrip().startswith("{"):
            params.update(_unique(parse_qsl(body, keep_blank_values=True)))
        params.update(_unique(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True)))  # query wins
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
        self._check_time(params)
        return account, params

    def _check_time(self, params: dict[str, str]) -> None:
        """The timestamp / recvWindow rule of every signed request (REST and WebSocket API)."""
        timestamp = strict.required_integer(params, "timestamp")
        recv_window = strict.optional_integer(params, "recvWindow")
        recv_window = 5000 if recv_window is None else recv_window
        if recv_window > 60_000 or recv_window <= 0:
            raise VenueError(-1131, "recvWindow must be less than 60000")
        now = self.now_ms()
        if timestamp >= now + 1000:
            raise VenueError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now - timestamp > recv_window:
            raise VenueError(-1021, "Timestamp for this request is outside of the recvWindow.")

    def _keyed(self, request: web.Request) -> Account:
        return self._account_of(request.headers.get("X-MBX-APIKEY", ""))

    def _account_of(self, key: str) -> Account:
        if not key:
            raise VenueError(-2014, "API-key format invalid.", 401)
        account = self.engine.accounts.get(key)
        if account is None:
            raise VenueError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        return account

    def _orders_since(self, ms: int) -> int:
        """New orders after `ms` (the times are appended in order: a bisection, not a scan)."""
        return len(self.order_times) - bisect.bisect_right(self.order_times, ms)

    def _count_order(self) -> None:
        now = self.now_ms()
        self.order_times.append(now)
        while self.order_times and self.order_times[0] <= now - 60_000:
            self.order_times.popleft()
        if self.faults.order_429 > 0:
            self.faults.order_429 -= 1
            raise VenueError(-1015, "Too many new orders; current limit is 300 orders per 10 SECOND.", 429)
        if self._orders_since(now - 10_000) > self.orders_per_10s:
            raise VenueError(-1015, "Too many new orders; current limit is 300 orders per 10 SECOND.", 429)


def _unique(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """One value per name: the venue refuses a name sent twice in the query (or twice in the body) with
    -1101 instead of reading one of them; the same name in both is allowed, the query's value wins."""
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise VenueError(-1101, "Duplicate values for a parameter detected.")
        out[name] = value
    return out


def _strip_signature(raw: str) -> str:
    if "signature=" not in raw:
        return raw
    return "&".join(part for part in raw.split("&") if not part.startswith("signature="))


def _error(status: int, code: int, msg: str, headers: dict[str, str]) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status, headers=headers)


_WEIGHTS = {"/fapi/v1/exchangeInfo": 1, "/fapi/v2/account": 5, "/fapi/v3/account": 5, "/fapi/v2/balance": 5,
            "/fapi/v3/balance": 5, "/fapi/v2/positionRisk": 5, "/fapi/v3/positionRisk": 5,
            "/fapi/v1/positionSide/dual": 30, "/fapi/v1/batchOrders": 5, "/fapi/v1/userTrades": 5,
            "/fapi/v1/allOrders": 5, "/fapi/v1/order": 1, "/fapi/v1/countdownCancelAll": 10,
            "/fapi/v1/algoOrder": 1, "/fapi/v1/allAlgoOrders": 5, "/fapi/v1/algoOpenOrders": 1,
            "/fapi/v1/historicalTrades": 20}


def _weight(request: web.Request) -> int:
    path = request.path
    if path == "/fapi/v1/depth":
        limit = int(request.query.get("limit", "500") or 500) if request.query.get("limit", "500").isdigit() else 500
        return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20
    if path in ("/fapi/v1/klines", "/fapi/v1/continuousKlines", "/fapi/v1/markPriceKlines",
                "/fapi/v1/indexPriceKlines"):
        text = request.query.get("limit", "500")
        limit = int(text) if text.isdigit() else 500
        return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10
    if path == "/fapi/v1/ticker/24hr":
        return 1 if request.query.get("symbol") else 40
    if path in ("/fapi/v1/openOrders", "/fapi/v1/openAlgoOrders"):
        return 1 if request.query.get("symbol") else 40
    if path in ("/fapi/v1/order", "/fapi/v1/algoOrder") and request.method == "POST":
        return 0  # new orders count against the order-rate limits, not the IP weight
    if path == "/fapi/v1/order" and request.method == "PUT":
        return 0  # an amendment too: 1 on the 10 s and 1-minute order counts, 0 on the IP weight
    if path == "/fapi/v1/multiAssetsMargin":
        return 30 if request.method == "GET" else 1
    return _WEIGHTS.get(path, 1)
