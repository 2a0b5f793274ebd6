"""WebSocket client for the venue's combined streams: stays connected, or says clearly that it is not.

Owns one connection to `/stream?streams=a/b/c` and everything that keeps it honest: reconnect with
exponential back-off and jitter (1 s doubling to 60 s, 0-10 % jitter), resubscription of every stream
(changes while connected go as SUBSCRIBE/UNSUBSCRIBE), answering the venue's pings (and pinging it),
a proactive reconnect before the venue's 24 h cut, and stall detection (no message for `stall_s`
means the connection is dead even if TCP says otherwise). Messages are handed over raw, unparsed;
connection changes are reported so the book owner can mark its books stale and resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
from dataclasses import dataclass
from typing import Awaitable, Callable

import aiohttp

log = logging.getLogger(__name__)

OnMessage = Callable[[bytes | str], None]
OnState = Callable[[bool], Awaitable[None] | None]


@dataclass(frozen=True)
class StreamConfig:
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    jitter: float = 0.10
    max_connection_age_s: float = 23.5 * 3600
    """Reconnect before the venue's 24 h cut, at a moment of our choosing."""
    stall_s: float = 10.0
    heartbeat_s: float = 30.0
    connect_timeout_s: float = 10.0


def backoff_delays(config: StreamConfig, rng: random.Random | None = None):
    """1, 2, 4, ... capped at 60 s, each with up to +10 % jitter."""
    rng = rng or random.Random()
    delay = config.backoff_initial_s
    while True:
        yield delay * (1 + rng.uniform(0, config.jitter))
        delay = min(delay * 2, config.backoff_max_s)


class StreamClient:
    def __init__(self, ws_base_url: str, streams: list[str], on_message: OnMessage,
                 on_state: OnState | None = None, config: StreamConfig | None = None,
                 session: aiohttp.ClientSession | None = None, path: str = "/stream") -> None:
        self.base = ws_base_url.rstrip("/")
        self.path = path
        self.streams: list[str] = list(dict.fromkeys(streams))
        self.on_message = on_message
        self.on_state = on_state
        self.config = config or StreamConfig()
        self._session = session
        self._own_session = session is None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self.connected = False
        self.connects = 0
        self.reconnects = 0
        self.stalls = 0
        self.messages = 0
        self._stopping = False

    @property
    def url(self) -> str:
        if not self.streams:  # a raw path such as /ws/<listenKey>
            return f"{self.base}{self.path}"
        return f"{self.base}{self.path}?streams={'/'.join(self.streams)}"

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="binance-stream")

    async def stop(self) -> None:
        self._stopping = True
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._own_session and self._session is not None:
            await self._session.close()

    async def subscribe(self, streams: list[str]) -> None:
        new = [s for s in streams if s not in self.streams]
        self.streams += new
        if new and self._ws is not None and not self._ws.closed:
            await self._ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": new, "id": next(self._ids)}))

    async def unsubscribe(self, streams: list[str]) -> None:
        gone = [s for s in streams if s in self.streams]
        self.streams = [s for s in self.streams if s not in gone]
        if gone and self._ws is not None and not self._ws.closed:
            await self._ws.send_str(json.dumps({"method": "UNSUBSCRIBE", "params": gone, "id": next(self._ids)}))

    async def reconnect_now(self) -> None:
        """Drop the connection (the run loop reconnects at once)."""
        if self._ws is not None:
            await self._ws.close()

    async def _set_state(self, connected: bool) -> None:
        if connected == self.connected:
            return
        self.connected = connected
        if self.on_state is not None:
            result = self.on_state(connected)
            if asyncio.iscoroutine(result):
                await result

    async def _run(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        delays = backoff_delays(self.config)
        while not self._stopping:
            try:
                async with self._session.ws_connect(
                        self.url, heartbeat=self.config.heartbeat_s, autoping=True,
                        timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                        max_msg_size=16 * 1024 * 1024) as ws:
                    self._ws = ws
                    self.connects += 1
                    delays = backoff_delays(self.config)  # a good connection resets the back-off
                    await self._set_state(True)
                    await self._read(ws)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                log.warning("stream connection failed: %s", type(exc).__name__)
            finally:
                self._ws = None
                await self._set_state(False)
            if self._stopping:
                break
            self.reconnects += 1
            await asyncio.sleep(0.0 if self._last_was_planned else next(delays))

    _last_was_planned = False
    """True when the last connection was closed by us on purpose (age limit): reconnect at once."""

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        loop = asyncio.get_running_loop()
        opened = loop.time()
        self._last_was_planned = False
        while True:
            age = loop.time() - opened
            if age >= self.config.max_connection_age_s:
                log.info("reconnecting before the venue's connection age limit")
                self._last_was_planned = True
                return
            timeout = min(self.config.stall_s, self.config.max_connection_age_s - age)
            try:
                msg = await ws.receive(timeout=timeout)
            except asyncio.TimeoutError:
                if loop.time() - opened >= self.config.max_connection_age_s:
                    self._last_was_planned = True
                    return
                self.stalls += 1
                log.warning("stream stalled for %.1f s; reconnecting", self.config.stall_s)
                return
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                self.messages += 1
                self.on_message(msg.data)
                # receive() does not yield while frames are buffered: yield here, so that an order
                # decided on this frame leaves before the rest of the burst is processed.
                await asyncio.sleep(0)
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING,
                              aiohttp.WSMsgType.ERROR):
                return
