"""Binance USD-M's WebSocket API (wss://ws-fapi.binance.com/ws-fapi/v1) as an order transport.

Owns one persistent connection to the venue's WebSocket API and the requests sent over it: a request is
one text frame `{"id", "method", "params"}`, its params signed one by one as Binance documents
(HMAC-SHA256 over every param but `signature`, sorted by name and joined `name=value&...`, `apiKey` and
`timestamp` among them: BinanceRestClient.sign_ws_params, so the secret, the venue clock offset and
recvWindow are the REST client's), and the answer `{"id", "status", "result" | "error", "rateLimits"}`
matched to its request by id. An error answer becomes the very exception REST raises for the same
`{code, msg}` (errors.from_response, with the answer's status), so execution's retry and ambiguity logic
does not know which transport carried an order; -1021 re-syncs the clock and is sent once more, as REST.
A request without an answer within `timeout_s`, or in flight when the connection drops, fails with
`UnknownExecutionStatus` (REST's timeout): execution then queries the order by its client id. A
timeout also closes the connection (an answer takes milliseconds; a silent socket is not trusted with
the next order). The connection is re-opened with a doubling back-off; while it is down `connected` is
False and the caller sends over REST. Frames that are not an answer to a request in flight (not JSON,
an unknown id, an answer after its timeout) are counted and skipped; they never stop the reader.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any, Callable

import aiohttp
import msgspec

from celeris.venues.binance import errors
from celeris.venues.binance.rest import BinanceRestClient

log = logging.getLogger(__name__)

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode

DEFAULT_RETRY_AFTER_S = 60.0
"""A 429/418 answer without `error.data.retryAfter`: wait as long as REST does without Retry-After."""


class WsApiClient:
    """One connection to the venue's WebSocket API; `request` sends one signed method call over it."""

    def __init__(self, url: str, rest: BinanceRestClient, *, timeout_s: float = 5.0, backoff_initial_s: float = 0.2,
                 backoff_max_s: float = 30.0, heartbeat_s: float = 20.0, connect_wait_s: float = 5.0,
                 stable_s: float = 10.0) -> None:
        self.url = url
        self.rest = rest
        """Whose key, secret, venue clock, recvWindow and request-weight budget the requests use."""
        self.timeout_s = timeout_s
        """How long an answer may take before the request's outcome is unknown (REST's total timeout)."""
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.heartbeat_s = heartbeat_s
        """Ping period when the venue sends nothing (aiohttp closes the socket when no pong comes back)."""
        self.connect_wait_s = connect_wait_s
        """How long `start` waits for the first connection (orders go over REST until it is up)."""
        self.stable_s = stable_s
        """A connection that lived this long resets the back-off (one that closes at once does not)."""
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        self._stopping = False
        self.connects = 0
        self.disconnects = 0
        self.requests = 0
        self.timeouts = 0
        self.unmatched_frames = 0
        """Frames that answered nothing in flight (garbage, an unknown id, an answer after its timeout)."""

    def __repr__(self) -> str:
        return f"WsApiClient({self.url!r}, connected={self.connected})"

    @property
    def connected(self) -> bool:
        ws = self._ws
        return ws is not None and not ws.closed

    async def start(self) -> None:
        """Open the connection (kept open, re-opened when it drops); waits up to `connect_wait_s` for it."""
        if self._task is not None:
            return
        self._stopping = False
        self._session = aiohttp.ClientSession()
        self._task = asyncio.create_task(self._run(), name="binance-ws-api")
        try:
            await asyncio.wait_for(self._up.wait(), self.connect_wait_s)
        except TimeoutError:
            log.warning("the venue's WebSocket API (%s) is not connected yet: orders go over REST until it is",
                        self.url)

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            await ws.close()
        self._fail_pending("the WebSocket API connection was closed with the request in flight")
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def wait_connected(self, timeout_s: float) -> bool:
        """Until a connection is open (False after `timeout_s`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.connected:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if self._up.is_set():  # closing: the reader has not seen the close yet
                await asyncio.sleep(0.01)
                continue
            try:
                await asyncio.wait_for(self._up.wait(), remaining)
            except TimeoutError:
                return False
        return True

    # -- requests ----------------------------------------------------------------------------------
    async def request(self, method: str, params: dict[str, Any], *, weight: int = 1,
                      on_write: Callable[[int], None] | None = None) -> Any:
        """One signed call; the answer's `result`, or the typed error REST would raise for the same answer.
        `on_write(ns)` is called once the frame has been handed to the socket."""
        try:
            return await self._request(method, params, weight, on_write)
        except errors.InvalidTimestamp:
            log.warning("venue refused our timestamp; re-syncing the clock offset")
            await self.rest.sync_clock()
            return await self._request(method, params, weight, on_write)

    async def _request(self, method: str, params: dict[str, Any], weight: int,
                       on_write: Callable[[int], None] | None) -> Any:
        await self.rest.budget.acquire(weight)  # a 429/418 block holds these requests too (one IP)
        ws = self._ws
        if ws is None or ws.closed:
            # Nothing was sent: the request did not happen (the caller checks `connected` first).
            raise errors.ServiceUnavailable(-1001, "the WebSocket API is not connected", 599)
        req_id = next(self._ids)
        frame = _encode({"id": req_id, "method": method, "params": self.rest.sign_ws_params(params)})
        answer_future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = answer_future
        self.requests += 1
        try:
            try:
                await ws.send_frame(frame, aiohttp.WSMsgType.TEXT)
            except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
                # Part of the frame may be on the wire: its outcome is unknown, as a REST transport error's.
                raise errors.UnknownExecutionStatus(
                    -1007, f"the WebSocket API connection failed while sending: {type(exc).__name__}", 599) from exc
            if on_write is not None:
                on_write(time.time_ns())
            try:
                async with asyncio.timeout(self.timeout_s):
                    answer = await answer_future
            except TimeoutError as exc:
                self.timeouts += 1
                if self._ws is ws:  # a socket that answers nothing is not trusted with the next order
                    self._ws = None  # at once: the next order goes over REST until a new one is open
                    asyncio.get_running_loop().create_task(ws.close())
                raise errors.UnknownExecutionStatus(-1007, "timeout waiting for the venue", 504) from exc
        finally:
            self._pending.pop(req_id, None)
        return await self._result(answer)

    async def _result(self, answer: dict[str, Any]) -> Any:
        status = answer.get("status")
        used = _used_weight(answer.get("rateLimits"))
        if used is not None:
            self.rest.last_used_weight = used
            await self.rest.budget.observe(used)
        if status == 200:
            return answer.get("result")
        body = answer.get("error")
        status_code = status if isinstance(status, int) and not isinstance(status, bool) else 500
        error = errors.from_response(status_code, body if isinstance(body, dict) else str(body),
                                     self._retry_after(body))
        if isinstance(error, errors.RateLimited) and (status_code == 418 or error.code != -1015):
            await self.rest.budget.block_for(error.retry_after_s)  # as REST: the IP's weight, not one order
        raise error

    def _retry_after(self, body: Any) -> str | None:
        """`error.data.retryAfter` (the venue's epoch ms when the ban ends) as REST's Retry-After seconds."""
        data = body.get("data") if isinstance(body, dict) else None
        until_ms = data.get("retryAfter") if isinstance(data, dict) else None
        if not isinstance(until_ms, int) or isinstance(until_ms, bool):
            return None
        return str(max(0.0, (until_ms - self.rest.server_clock.now_ms()) / 1000))

    # -- the connection ----------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = self.backoff_initial_s
        while not self._stopping:
            assert self._session is not None
            try:
                # No compression (a frame is a few hundred bytes; deflate costs more than it saves), and a
                # close handshake bounded at 1 s: a silent venue must not hold the reconnection back.
                ws = await self._session.ws_connect(self.url, heartbeat=self.heartbeat_s, autoping=True,
                                                    compress=0, max_msg_size=4 * 1024 * 1024,
                                                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=1.0))
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning("the venue's WebSocket API (%s) cannot be reached (%s); retrying in %.1f s", self.url,
                            type(exc).__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            opened = time.monotonic()
            self._ws = ws
            self.connects += 1
            self._up.set()
            try:
                await self._read(ws)
            except Exception:  # never lose the loop: a bug in one frame's handling closes this connection
                log.exception("the WebSocket API reader failed; reconnecting")
            finally:
                self._up.clear()
                if self._ws is ws:
                    self._ws = None
                self.disconnects += 1
                self._fail_pending("the WebSocket API connection closed with the request in flight")
                if not ws.closed:
                    await ws.close()
            if self._stopping:
                return
            if time.monotonic() - opened >= self.stable_s:
                backoff = self.backoff_initial_s
            log.warning("the venue's WebSocket API connection closed (%s); reconnecting in %.1f s",
                        ws.close_code, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_max_s)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                self._on_frame(msg.data)
            elif msg.type is aiohttp.WSMsgType.BINARY:  # the API answers in text frames only
                self._on_frame("")
            elif msg.type is aiohttp.WSMsgType.ERROR:
                return

    def _on_frame(self, data: str) -> None:
        try:
            answer = _decode(data)
            req_id = answer["id"]
            # Our ids are ints; `true` would hash as 1 and 1.0 equals 1: neither answers request 1.
            waiting = self._pending.get(req_id) if type(req_id) is int else None
        except (msgspec.DecodeError, KeyError, TypeError):  # not JSON, not an object, no id
            waiting = None
        if waiting is None or waiting.done():
            self.unmatched_frames += 1
            if self.unmatched_frames <= 10 or self.unmatched_frames % 1000 == 0:
                log.warning("WebSocket API frame answers no request in flight (%d so far): %.120s",
                            self.unmatched_frames, data)
            return
        waiting.set_result(answer)

    def _fail_pending(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for answer_future in pending.values():
            if not answer_future.done():
                answer_future.set_exception(errors.UnknownExecutionStatus(-1007, why, 599))


def _used_weight(limits: Any) -> int | None:
    """The IP's request weight this minute from an answer's rateLimits (REST's X-MBX-USED-WEIGHT-1M)."""
    if not isinstance(limits, list):
        return None
    for limit in limits:
        if isinstance(limit, dict) and limit.get("rateLimitType") == "REQUEST_WEIGHT" and \
                limit.get("interval") == "MINUTE" and limit.get("intervalNum") == 1:
            count = limit.get("count")
            return count if isinstance(count, int) and not isinstance(count, bool) else None
    return None
