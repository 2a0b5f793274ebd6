"""Signed REST client for Binance USD-M futures (also its testnet and our simulator).

Owns one aiohttp session with a connection pool, HMAC-SHA256 signing of the query string, timestamps on
the venue's clock (ServerClock, re-synced once on -1021), request-weight accounting (WeightBudget fed by
X-MBX-USED-WEIGHT-1M; 429/418 block every request for Retry-After) and typed errors (errors.py).
It never retries an order on its own: that decision belongs to execution, which knows about
idempotency. Secrets never leave this object: it is repr-safe and logs no parameters.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Any, Callable
from urllib.parse import urlencode

import aiohttp
import msgspec
import yarl

from celeris.domain.clock import Clock
from celeris.venues.binance import errors
from celeris.venues.binance.clock import ServerClock
from celeris.venues.binance.ratelimit import LocalWeightBudget, WeightBudget

log = logging.getLogger(__name__)

_json = msgspec.json.Decoder()


class BinanceRestClient:
    def __init__(self, base_url: str, clock: Clock, *, api_key: str = "", api_secret: str = "",
                 budget: WeightBudget | None = None, recv_window_ms: int = 5000, pool_size: int = 20,
                 timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._secret = api_secret.encode()
        self.server_clock = ServerClock(clock)
        self.budget: WeightBudget = budget or LocalWeightBudget()
        self.recv_window_ms = recv_window_ms
        self._pool_size = pool_size
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self.last_used_weight = 0
        self.requests = 0

    def __repr__(self) -> str:
        return f"BinanceRestClient({self.base_url!r}, key={self._api_key[:4]}****)"

    async def __aenter__(self) -> BinanceRestClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def sync_clock(self) -> int:
        return await self.server_clock.sync(self._server_time)

    async def _server_time(self) -> int:
        body = await self.request("GET", "/fapi/v1/time", weight=1)
        return int(body["serverTime"])

    def sign(self, params: dict[str, Any]) -> str:
        """The query string with timestamp, recvWindow and signature (HMAC over exactly these bytes)."""
        params = {k: _wire(v) for k, v in params.items() if v is not None}
        params["timestamp"] = self.server_clock.now_ms()
        params.setdefault("recvWindow", self.recv_window_ms)
        query = urlencode(params)
        signature = hmac.new(self._secret, query.encode(), hashlib.sha256).hexdigest()
        return f"{query}&signature={signature}"

    def sign_ws_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """The params of one WebSocket API request (ws_api.py), signed as Binance documents it there: apiKey,
        timestamp (the same venue clock) and recvWindow among them, HMAC-SHA256 over every param sorted by
        name and joined `name=value&...`, the hex digest as `signature`. Booleans travel as "true"/"false"
        (as in a REST query), numbers as JSON numbers (signed as their decimal text)."""
        out = {k: _wire(v) for k, v in params.items() if v is not None}
        out["apiKey"] = self._api_key
        out["timestamp"] = self.server_clock.now_ms()
        out.setdefault("recvWindow", self.recv_window_ms)
        payload = "&".join([f"{k}={out[k]}" for k in sorted(out)])
        out["signature"] = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        return out

    async def request(self, method: str, path: str, params: dict[str, Any] | None = None, *,
                      signed: bool = False, keyed: bool = False, weight: int = 1, raw: bool = False,
                      on_write: Callable[[int], None] | None = None) -> Any:
        """One call; `raw=True` returns the body bytes undecoded; `on_write(ns)` is called when the signed
        request is handed to the connection (latency accounting)."""
        try:
            return await self._request(method, path, params, signed, keyed, weight, raw, on_write)
        except errors.InvalidTimestamp:
            if not signed:
                raise
            log.warning("venue refused our timestamp; re-syncing the clock offset")
            await self.sync_clock()
            return await self._request(method, path, params, signed, keyed, weight, raw, on_write)

    async def _request(self, method: str, path: str, params: dict[str, Any] | None, signed: bool, keyed: bool,
                       weight: int, raw_body: bool, on_write: Callable[[int], None] | None = None) -> Any:
        if self._session is None:
            await self.start()
        assert self._session is not None
        await self.budget.acquire(weight)
        if signed:
            query = self.sign(params or {})
        else:
            query = urlencode({k: _wire(v) for k, v in (params or {}).items() if v is not None})
        headers = {"X-MBX-APIKEY": self._api_key} if (signed or keyed) else {}
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        self.requests += 1
        if on_write is not None:
            on_write(time.time_ns())
        try:
            # Sent exactly as signed: yarl would otherwise re-quote the query (a batch's JSON list holds
            # characters it normalizes), and the venue checks the signature over the bytes it receives.
            async with self._session.request(method, yarl.URL(url, encoded=True), headers=headers) as resp:
                raw = await resp.read()
                used = resp.headers.get("X-MBX-USED-WEIGHT-1M")
                if used is not None and used.isdigit():
                    self.last_used_weight = int(used)
                    await self.budget.observe(self.last_used_weight)
                if resp.status >= 400:
                    try:
                        body = _json.decode(raw)
                    except msgspec.DecodeError:
                        body = raw.decode(errors="replace")
                    error = errors.from_response(resp.status, body, resp.headers.get("Retry-After"))
                    if isinstance(error, errors.RateLimited) and (resp.status == 418 or error.code != -1015):
                        # The IP's request weight: nothing may be sent until Retry-After. An order-count 429
                        # (-1015) limits new orders only; cancels and reads must still go out (a halt needs them).
                        await self.budget.block_for(error.retry_after_s)
                    raise error
                return raw if raw_body else _json.decode(raw)
        except aiohttp.ClientError as exc:
            raise errors.ServiceUnavailable(-1001, f"transport error: {type(exc).__name__}", 599) from exc
        except TimeoutError as exc:
            # A timeout leaves the outcome unknown, exactly like the venue's 503 unknown.
            raise errors.UnknownExecutionStatus(-1007, "timeout waiting for the venue", 504) from exc

    # -- endpoints used by the engines --------------------------------------------------------------
    async def exchange_info(self) -> Any:
        return await self.request("GET", "/fapi/v1/exchangeInfo", weight=1)

    async def depth(self, symbol: str, limit: int = 1000) -> bytes:
        """The raw depth body (decoded by the codec on the hot path's terms)."""
        return await self.request("GET", "/fapi/v1/depth", {"symbol": symbol, "limit": limit},
                                  weight=_depth_weight(limit), raw=True)

    async def premium_index(self, symbol: str) -> Any:
        return await self.request("GET", "/fapi/v1/premiumIndex", {"symbol": symbol}, weight=1)

    async def new_listen_key(self) -> str:
        return (await self.request("POST", "/fapi/v1/listenKey", keyed=True, weight=1))["listenKey"]

    async def keepalive_listen_key(self) -> None:
        await self.request("PUT", "/fapi/v1/listenKey", keyed=True, weight=1)

    async def close_listen_key(self) -> None:
        await self.request("DELETE", "/fapi/v1/listenKey", keyed=True, weight=1)


def _wire(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _depth_weight(limit: int) -> int:
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20
