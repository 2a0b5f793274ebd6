"""The venue's user data stream: listenKey lifecycle and a WebSocket that delivers decoded events.

Owns creating the listenKey, keeping it alive (every 30 min), recreating it when the venue says it
expired (or a keepalive fails), and reporting reconnections so that owners reconcile what they may have
missed. Events reach the owner decoded (codec.UserEvent); unknown event kinds are ignored, malformed
ones counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Awaitable, Callable

from celeris.venues.binance import codec, errors
from celeris.venues.binance.rest import BinanceRestClient
from celeris.venues.binance.streams import StreamClient, StreamConfig
from celeris.transport.tasks import supervised

log = logging.getLogger(__name__)

_OTHER_EVENTS = (b'"ACCOUNT_CONFIG_UPDATE"', b'"MARGIN_CALL"', b'"STRATEGY_UPDATE"',
                 b'"GRID_UPDATE"', b'"CONDITIONAL_ORDER_TRIGGER_REJECT"')


class UserDataStream:
    def __init__(self, rest: BinanceRestClient, ws_url: str, on_event: Callable[[codec.UserEvent], None],
                 on_reconnect: Callable[[], Awaitable[None]] | None = None, keepalive_s: float = 30 * 60,
                 config: StreamConfig | None = None) -> None:
        self.rest = rest
        self.ws_url = ws_url
        self.on_event = on_event
        self.on_reconnect = on_reconnect
        self.keepalive_s = keepalive_s
        # A user stream can be silent for hours: silence is not a stall.
        self.config = config or StreamConfig(stall_s=24 * 3600)
        self.listen_key = ""
        self.renewals = 0
        self.malformed = 0
        self._stream: StreamClient | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        return bool(self._stream and self._stream.connected)

    async def start(self) -> None:
        await self._open()
        self._keepalive = supervised("listenkey-keepalive", self._keepalive_loop)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
        if self._stream is not None:
            await self._stream.stop()

    async def _open(self) -> None:
        self.listen_key = await self.rest.new_listen_key()
        self._stream = StreamClient(self.ws_url, [], self._on_raw, self._on_state, self.config,
                                    path=f"/ws/{self.listen_key}")
        self._stream.start()

    async def renew(self) -> None:
        """A new listenKey and stream; a venue that refuses now (429/418, down) is asked again later."""
        self.renewals += 1
        if self._stream is not None:
            await self._stream.stop()
        delay = 1.0
        while True:
            try:
                await self._open()
                break
            except (errors.VenueError, OSError, asyncio.TimeoutError) as exc:
                wait = max(delay, getattr(exc, "retry_after_s", 0.0))
                log.warning("listenKey not created (%s); trying again in %.0f s", exc, wait)
                await asyncio.sleep(min(wait, 300.0))
                delay = min(delay * 2, 60.0)
        await self._reconciled()

    async def _keepalive_loop(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive_s)
            try:
                await self.rest.keepalive_listen_key()
            except errors.VenueError as exc:
                log.warning("listenKey keepalive failed (%s); creating a new one", exc)
                await self.renew()

    async def _reconciled(self) -> None:
        """The owner reconciles what it may have missed; if the venue refuses now (a 418 ban lasts
        minutes) it is asked again later, and the stream keeps delivering meanwhile."""
        delay = 1.0
        while self.on_reconnect is not None:
            try:
                await self.on_reconnect()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed reconcile must never end the stream
                wait = max(delay, getattr(exc, "retry_after_s", 0.0))
                log.warning("reconciliation after a reconnect failed (%r); again in %.0f s", exc, wait)
                await asyncio.sleep(min(wait, 300.0))
                delay = min(delay * 2, 60.0)

    async def _on_state(self, connected: bool) -> None:
        if connected and self._stream is not None and self._stream.connects > 1 and self.on_reconnect:
            task = asyncio.ensure_future(self._reconciled())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _on_raw(self, raw: bytes | str) -> None:
        data = raw if isinstance(raw, bytes) else raw.encode()
        try:
            event = codec.decode_user_event(data)
        except codec.MalformedMessage:
            if not any(kind in data for kind in _OTHER_EVENTS):
                self.malformed += 1
            return
        if isinstance(event, codec.ListenKeyExpired):
            log.warning("listenKey expired; creating a new one")
            asyncio.ensure_future(self.renew())
            return
        self.on_event(event)
