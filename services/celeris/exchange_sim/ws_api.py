"""The simulated venue's WebSocket API (Binance USD-M's wss://ws-fapi.binance.com/ws-fapi/v1), on /ws-fapi/v1.

Owns the request/response framing of that API: requests `{"id", "method", "params"}` one per text frame,
answers `{"id", "status": 200, "result", "rateLimits"}` or `{"id", "status": 4xx/5xx, "error": {"code",
"msg"}, "rateLimits"}`; signing (HMAC-SHA256 over the params other than `signature`, sorted by name and
joined as `name=value&...`, with `apiKey` among them), the session methods (session.logon / status /
logout: after a logon, requests may leave out apiKey and signature), the listen-key methods
(userDataStream.start / ping / stop, the API key alone, as REST's listenKey endpoints in userstream.py)
and the dispatch of the order methods (order.place / modify / cancel / status). Those run the very
operations the REST handlers run (routes_orders.py), count against the same request weight and order
limits (auth_weights.py), and so push the same ORDER_TRADE_UPDATE events: a WS-API order and a REST
order are one order.
A frame that is not a request (not JSON, no id or method, an unknown method, too large, a parameter of
the wrong JSON type) is answered with an error and the connection keeps serving.

Where Binance does not document the code, these are the simulator's choices: -1135 for a frame that is
not a JSON request object, -1020 for an unknown method, -1102 for a parameter of the wrong JSON type (null,
a list, an object; numbers are read as written, as Binance's own example sends DECIMALs as numbers), and
status 400 for the key errors (REST answers them 401; the WebSocket API's statuses have no 401). The real
session.logon takes Ed25519 keys only; the simulator's keys are HMAC, so it accepts an HMAC signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from celeris.exchange_sim.engine import Account, VenueError
from celeris.exchange_sim.websocket import Connection

log = logging.getLogger(__name__)

MAX_REQUEST_CHARS = 64 * 1024
"""A request frame above this is answered -1135 (real requests are well under a kilobyte)."""
MAX_WIRE_BYTES = 4 * 1024 * 1024
"""A frame above this is refused by the WebSocket layer itself (close 1009), as any server must bound reads."""


@dataclass
class ApiSession:
    """One WebSocket API connection: when it opened and the account it is logged on as, if any."""

    connected_ms: int
    account: Account | None = None
    authorized_ms: int | None = None


Method = Callable[[Any, ApiSession, dict[str, str], int], Awaitable[dict[str, Any]]]


class WsApi:
    """Part of SimVenue: the WebSocket API connections and their requests."""

    connections: list[Connection]
    ping_interval_s: float
    stats: dict[str, int]
    weights: Any
    order_times: Any
    orders_per_10s: int

    if TYPE_CHECKING:  # members of SimVenue and its other parts this one uses
        def now_ms(self) -> int: ...
        def _admit(self, now: int, weight: int) -> tuple[int, VenueError | None]: ...
        def _account_of(self, key: str) -> Account: ...
        def _check_time(self, params: dict[str, str]) -> None: ...
        def _orders_since(self, ms: int) -> int: ...
        async def _place_order(self, account: Account, params: dict[str, str], received_ns: int) -> dict[str, Any]: ...
        async def _amend_order(self, account: Account, params: dict[str, str]) -> dict[str, Any]: ...
        async def _cancel_order(self, account: Account, params: dict[str, str]) -> dict[str, Any]: ...
        def _query_order(self, account: Account, params: dict[str, str]) -> dict[str, Any]: ...
        def _listen_key_open(self, account: Account) -> str: ...
        def _listen_key_extend(self, account: Account) -> str: ...
        def _listen_key_close(self, account: Account) -> None: ...

    async def _ws_api_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=self.ping_interval_s, autoping=True, max_msg_size=MAX_WIRE_BYTES)
        await ws.prepare(request)
        # Listed with the stream connections (no streams): the 24-hour cap, /_sim/drop and shutdown close it too.
        conn = Connection(ws, combined=False, opened_ms=self.now_ms())
        self.connections.append(conn)
        session = ApiSession(connected_ms=self.now_ms())
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    answer = await self._ws_api_answer(session, msg.data)
                    await ws.send_str(json.dumps(answer, separators=(",", ":")))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            if conn in self.connections:
                self.connections.remove(conn)
        return ws

    async def _ws_api_answer(self, session: ApiSession, data: str | bytes) -> dict[str, Any]:
        """The answer to one frame; never raises (a bug is a -1000 answer, and the connection goes on)."""
        received_ns = time.perf_counter_ns()
        self.stats["ws_api_requests"] = self.stats.get("ws_api_requests", 0) + 1
        try:
            req_id, method_name, params = _request(data)
        except _BadFrame as bad:
            return _failure(bad.req_id, bad.error, None)
        method = _METHODS.get(method_name)
        if method is None:
            return _failure(req_id, VenueError(-1020, f"This operation is not supported: unknown method "
                                                      f"{method_name[:64]!r}."), None)
        weight, run = method
        used, refusal = self._admit(self.now_ms(), weight)
        if refusal is not None:
            return _failure(req_id, refusal, self._rate_limits(used, method_name))
        values: dict[str, str] = {}
        try:
            values = {name: _text(name, value) for name, value in params.items()}
            result = await run(self, session, values, received_ns)
        except VenueError as exc:
            return _failure(req_id, exc, self._rate_limits(used, method_name))
        except (ValueError, KeyError, TypeError, ArithmeticError, RecursionError):
            # Read loosely somewhere (params.py reads strictly): the generic answer, never our exception's name.
            log.warning("simulator WebSocket API %s could not read a parameter", method_name, exc_info=True)
            return _failure(req_id, VenueError(-1102, "A mandatory parameter was not sent, was empty/null, or "
                                                      "malformed."), self._rate_limits(used, method_name))
        except Exception:  # a bug: answered as the venue's unknown error, the connection keeps serving
            log.exception("simulator WebSocket API %s failed", method_name)
            return _failure(req_id, VenueError(-1000, "An unknown error occured while processing the request.",
                                               500), self._rate_limits(used, method_name))
        answer: dict[str, Any] = {"id": req_id, "status": 200, "result": result}
        if values.get("returnRateLimits", "true") != "false":
            answer["rateLimits"] = self._rate_limits(used, method_name)
        return answer

    def _rate_limits(self, used: int, method_name: str) -> list[dict[str, Any]]:
        """The answer's rateLimits: the IP's request weight, and for order.place / order.modify the order counts
        after it."""
        limits = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                   "limit": self.weights.limit, "count": used}]
        if method_name in ("order.place", "order.modify"):  # both count as orders
            now = self.now_ms()
            limits += [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                        "limit": self.orders_per_10s, "count": self._orders_since(now - 10_000)},
                       {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1,
                        "limit": 1200, "count": len(self.order_times)}]
        return limits

    # -- signing -----------------------------------------------------------------------------------
    def _ws_signed(self, session: ApiSession, params: dict[str, str]) -> Account:
        """The account a signed request acts for: its own signature, or the session's logon."""
        signature = params.get("signature")
        if signature is None and session.account is not None:
            if params.get("apiKey", session.account.api_key) != session.account.api_key:
                raise VenueError(-2015, "Invalid API-key, IP, or permissions for action.")
            self._check_time(params)
            return session.account
        account = self._ws_account(params.get("apiKey", ""))
        if not signature:
            raise VenueError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        payload = "&".join(f"{name}={value}" for name, value in sorted(params.items()) if name != "signature")
        expected = hmac.new(account.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not signature.isascii() or not hmac.compare_digest(expected, signature.lower()):
            raise VenueError(-1022, "Signature for this request is not valid.")
        self._check_time(params)
        return account

    def _ws_account(self, key: str) -> Account:
        try:
            return self._account_of(key)
        except VenueError as exc:  # same code and message as REST; the WebSocket API answers 400, not 401
            raise VenueError(exc.code, exc.msg, 400) from None

    def _session_body(self, session: ApiSession) -> dict[str, Any]:
        return {"apiKey": session.account.api_key if session.account else None,
                "authorizedSince": session.authorized_ms, "connectedSince": session.connected_ms,
                "returnRateLimits": True, "serverTime": self.now_ms()}

    # -- methods -----------------------------------------------------------------------------------
    async def _ws_order_place(self, session: ApiSession, params: dict[str, str], received_ns: int) -> dict[str, Any]:
        return await self._place_order(self._ws_signed(session, params), params, received_ns)

    async def _ws_order_modify(self, session: ApiSession, params: dict[str, str], _: int) -> dict[str, Any]:
        return await self._amend_order(self._ws_signed(session, params), params)

    async def _ws_order_cancel(self, session: ApiSession, params: dict[str, str], _: int) -> dict[str, Any]:
        return await self._cancel_order(self._ws_signed(session, params), params)

    async def _ws_order_status(self, session: ApiSession, params: dict[str, str], _: int) -> dict[str, Any]:
        return self._query_order(self._ws_signed(session, params), params)

    async def _ws_session_logon(self, session: ApiSession, params: dict[str, str], _: int) -> dict[str, Any]:
        if "signature" not in params:  # a logon is always signed, even on a logged-on session
            self._ws_account(params.get("apiKey", ""))
            raise VenueError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        session.account = self._ws_signed(session, params)
        session.authorized_ms = self.now_ms()
        return self._session_body(session)

    # userDataStream.*: USER_STREAM methods, the API key alone (or the session's logon), no signature.
    def _ws_keyed(self, session: ApiSession, params: dict[str, str]) -> Account:
        if "apiKey" not in params and session.account is not None:
            return session.account
        return self._ws_account(params.get("apiKey", ""))

    async def _ws_stream_start(self, session: ApiSession, params: dict[str, str], _: int) -> dict[str, Any]:
        return {"listenKey": self._listen_key_open(self._ws_keyed(session, params))}

    async def _ws_stream_ping(self, session: ApiSession, params: dict[str, str], _: int) -> dict[str, Any]:
        return {"listenKey": self._listen_key_extend(self._ws_keyed(session, params))}

    async def _ws_stream_stop(self, session: ApiSession, params: dict[str, str], _: int) -> dict[str, Any]:
        self._listen_key_close(self._ws_keyed(session, params))
        return {}

    async def _ws_session_status(self, session: ApiSession, _: dict[str, str], __: int) -> dict[str, Any]:
        return self._session_body(session)

    async def _ws_session_logout(self, session: ApiSession, _: dict[str, str], __: int) -> dict[str, Any]:
        session.account, session.authorized_ms = None, None
        return self._session_body(session)


_METHODS: dict[str, tuple[int, Method]] = {
    # method -> (request weight, handler); order.place and order.modify weigh 0 and count against the order
    # limits instead, as their REST twins do.
    "order.place": (0, WsApi._ws_order_place), "order.modify": (0, WsApi._ws_order_modify),
    "order.cancel": (1, WsApi._ws_order_cancel), "order.status": (1, WsApi._ws_order_status),
    "session.logon": (2, WsApi._ws_session_logon), "session.status": (2, WsApi._ws_session_status),
    "session.logout": (2, WsApi._ws_session_logout),
    "userDataStream.start": (1, WsApi._ws_stream_start), "userDataStream.ping": (1, WsApi._ws_stream_ping),
    "userDataStream.stop": (1, WsApi._ws_stream_stop),
}


class _BadFrame(Exception):
    """A frame that is not a request; answered with its id when it had a valid one."""

    def __init__(self, error: VenueError, req_id: Any = None) -> None:
        super().__init__(error.msg)
        self.error, self.req_id = error, req_id


def _request(data: str | bytes) -> tuple[Any, str, dict[str, Any]]:
    """A frame as (id, method, params); raises _BadFrame with why it is not a request."""
    if isinstance(data, bytes):
        raise _BadFrame(VenueError(-1135, "Invalid JSON request: requests are JSON in text frames."))
    if len(data) > MAX_REQUEST_CHARS:
        raise _BadFrame(VenueError(-1135, f"Invalid JSON request: a request is at most {MAX_REQUEST_CHARS} "
                                          f"characters."))
    try:
        # A JSON number with a fraction (or NaN / Infinity) is kept as written: Binance's own order.place example
        # sends "price": 43187.00, and the value is read, and signed, as that text.
        msg = json.loads(data, parse_float=_Number, parse_constant=_Number)
    except (ValueError, RecursionError):
        raise _BadFrame(VenueError(-1135, "Invalid JSON request: the frame is not JSON.")) from None
    if not isinstance(msg, dict):
        raise _BadFrame(VenueError(-1135, "Invalid JSON request: expected an object."))
    req_id = msg.get("id")
    if "id" not in msg or isinstance(req_id, _Number) or not (req_id is None or isinstance(req_id, str) or
                               (isinstance(req_id, int) and not isinstance(req_id, bool))):
        raise _BadFrame(VenueError(-1135, "Invalid JSON request: 'id' is mandatory and an integer, a string or "
                                          "null."))
    method = msg.get("method")
    if not isinstance(method, str) or not method:
        raise _BadFrame(VenueError(-1135, "Invalid JSON request: 'method' is mandatory and a string."), req_id)
    params = msg.get("params", {})
    if not isinstance(params, dict):
        raise _BadFrame(VenueError(-1135, "Invalid 'params' in JSON request; expected an object."), req_id)
    return req_id, method, params


class _Number(str):
    """A JSON number with a fraction, exponent or NaN / Infinity, as the text it was written with."""


def _text(name: str, value: Any) -> str:
    """A parameter as the signature payload and the order logic read it: strings as sent, numbers as written
    (43187.00 reads "43187.00", then strictly, as any value: 1e-05 is -1100 where a DECIMAL belongs),
    booleans as true/false; anything else (null, lists, objects) is malformed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    raise VenueError(-1102, f"Mandatory parameter '{name[:64]}' was not sent, was empty/null, or malformed.")


def _failure(req_id: Any, exc: VenueError, limits: list[dict[str, Any]] | None) -> dict[str, Any]:
    status = 400 if exc.status == 401 else exc.status
    answer: dict[str, Any] = {"id": req_id, "status": status, "error": exc.body()}
    if limits is not None:
        answer["rateLimits"] = limits
    return answer
