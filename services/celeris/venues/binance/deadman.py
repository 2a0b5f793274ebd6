"""Binance's dead-man's switch, kept alive by execution: countdownCancelAll renewed while execution lives.

Owns the heartbeat. Once armed (before the first live order is sent, so no order of ours rests without it)
it posts `POST /fapi/v1/countdownCancelAll` with the countdown for every traded symbol and renews it every
third of the countdown; if execution dies, hangs or loses the venue for longer than the countdown, the venue
itself cancels the symbols' open orders. A failed renewal is counted, logged and retried at the next beat;
it never stops trading by itself (the user stream and reconciliation deal with a venue that is gone).
Stopping the heartbeat leaves the last countdown running on purpose: a stop that does not come back in
time ends with the venue cancelling, which is what a dead-man's switch is for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Awaitable, Callable

from celeris.domain.clock import Clock
from celeris.transport.tasks import supervised
from celeris.venues.binance import errors
from celeris.venues.binance.rest import BinanceRestClient

log = logging.getLogger(__name__)

COUNTDOWN_WEIGHT = 10


class DeadMansSwitch:
    def __init__(self, rest: BinanceRestClient, symbols: list[str], countdown_ms: int, clock: Clock,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if countdown_ms < 0:
            raise ValueError("the countdown is a non-negative number of milliseconds (0 = off)")
        self.rest, self.symbols, self.countdown_ms, self.clock = rest, list(symbols), countdown_ms, clock
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self._arming = asyncio.Lock()
        self.beats = 0
        self.failures = 0
        self.last_ok_ns = 0

    @property
    def enabled(self) -> bool:
        return self.countdown_ms > 0

    @property
    def armed(self) -> bool:
        return self._task is not None and not self._task.done()

    async def arm(self) -> None:
        """Start the heartbeat (once): the first beat is sent before this returns, and a venue that refuses
        it raises, so the caller does not send an order the switch would not cover."""
        if not self.enabled or self.armed:
            return
        async with self._arming:
            if self.armed:
                return
            await self.beat()
            self._task = supervised("deadman-heartbeat", self._loop)

    async def beat(self) -> None:
        for symbol in self.symbols:
            await self.rest.request("POST", "/fapi/v1/countdownCancelAll",
                                    {"symbol": symbol, "countdownTime": self.countdown_ms},
                                    signed=True, weight=COUNTDOWN_WEIGHT)
        self.beats += 1
        self.last_ok_ns = self.clock.now_ns()

    async def _loop(self) -> None:
        while True:
            await self._sleep(self.countdown_ms / 3_000)
            try:
                await self.beat()
            except (errors.VenueError, OSError, asyncio.TimeoutError) as exc:
                self.failures += 1
                log.warning("dead-man's switch renewal failed (%s); again in %.1f s", exc, self.countdown_ms / 3000)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
