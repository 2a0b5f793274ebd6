"""The paper venue's latency on the event clock: requests reach the venue after the entry latency, its
answers and user-stream events reach the client after the response latency.

A mixin of PaperVenue (paper.py). One timeline (a heap ordered by time, then creation) holds what is in
flight: requests on their way to the venue and answers/events on their way back. It moves only when the
venue's clock is read at an entry point (every book, trade and mark update, every request), so a backtest
on the capture's clock processes an order at its arrival time, against the book as it is then, after the
market events stamped before the arrival and before those stamped after it; an event stamped exactly at
the arrival time is applied first (the conservative tie: the order does not see it). Nothing here reads
the wall clock. In simulation mode (live books, a wall clock) the assembly passes `sleep`, and a request
also wakes itself when its latency has passed on the wall, so a quiet market does not hold an order back.
At the end of a backtest, `drain()` lets everything in flight happen at its own time and makes later
requests (a strategy cancelling its quotes at stop) complete at once: no data will move the clock again.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from celeris.domain.messages import VenueOrderEvent
from celeris.execution.latency_models import LatencyModel

_ARRIVE, _RESPOND, _DELIVER = 0, 1, 2


@dataclass(eq=False, slots=True)
class _Request:
    action: Callable[[], Any]
    future: asyncio.Future[Any]
    response_at: int | None = None


class PaperTiming:
    """Mixin of PaperVenue: in-flight requests and answers on the event clock."""

    clock: Any
    latency: LatencyModel

    def _init_timing(self, latency: LatencyModel, sleep: Callable[[float], Awaitable[None]] | None) -> None:
        self.latency = latency
        self._sleep = sleep
        self._timeline: list[tuple[int, int, int, Any]] = []
        self._seq = itertools.count()
        self._venue_ns: int | None = None
        """While an in-flight item is processed: its time (the venue's clock then)."""
        self._advancing = False
        self._draining = False
        self._wakers: set[asyncio.Task[None]] = set()

    def now_ns(self) -> int:
        """The venue's clock: the time of what it is processing, else the injected clock."""
        return self._venue_ns if self._venue_ns is not None else self.clock.now_ns()

    @property
    def in_flight(self) -> int:
        return len(self._timeline)

    async def _request(self, action: Callable[[], Any]) -> Any:
        """`action` runs at the venue after the entry latency; its answer comes back after the response one."""
        now = self.clock.now_ns()
        self.advance(now)
        request = _Request(action, asyncio.get_running_loop().create_future())
        arrival = now + self.latency.entry_ns(now)
        self._push(arrival, _ARRIVE, request)
        if self._draining:
            self._finish(request)
        elif arrival <= now:
            self.advance(now)
        elif self._sleep is not None:  # simulation mode: the latency also passes on the wall
            await self._sleep((arrival - now) / 1e9)
            self.advance(max(self.clock.now_ns(), arrival))
        if not request.future.done() and self._sleep is not None and request.response_at is not None:
            now = max(self.clock.now_ns(), arrival)  # the venue answered at arrival, whatever the clock says
            if request.response_at > now:
                await self._sleep((request.response_at - now) / 1e9)
            self.advance(max(self.clock.now_ns(), request.response_at))
        return await request.future

    def _push(self, at_ns: int, kind: int, item: Any) -> None:
        heapq.heappush(self._timeline, (at_ns, next(self._seq), kind, item))

    def advance_before_event(self) -> None:
        """A market event stamped now is about to be applied: what was in flight before now happens first."""
        if self._timeline:
            self.advance(self.clock.now_ns() - 1)

    def advance(self, until_ns: int) -> None:
        """Let everything in flight up to `until_ns` happen, in time order (then creation order)."""
        if self._advancing:
            return
        self._advancing = True
        try:
            timeline = self._timeline
            while timeline and timeline[0][0] <= until_ns:
                at_ns, _, kind, item = heapq.heappop(timeline)
                self._venue_ns = at_ns
                try:
                    self._process(at_ns, kind, item)
                finally:
                    self._venue_ns = None
        finally:
            self._advancing = False

    def _process(self, at_ns: int, kind: int, item: Any) -> None:
        if kind == _ARRIVE:
            try:
                result: tuple[bool, Any] = (True, item.action())
            except Exception as exc:  # the venue's refusal travels back like an answer
                result = (False, exc)
            item.response_at = at_ns + self.latency.response_ns(at_ns)
            self._push(item.response_at, _RESPOND, (item, result))
        elif kind == _RESPOND:
            request, (ok, value) = item
            if not request.future.done():  # the caller may have given up (cancelled): the venue did not
                request.future.set_result(value) if ok else request.future.set_exception(value)
        else:
            self._send(item)

    def _finish(self, request: _Request) -> None:
        """Draining: let the timeline run, at its own times, until this request is answered."""
        while not request.future.done() and self._timeline:
            self.advance(self._timeline[0][0])

    def drain(self) -> None:
        """The data has ended: everything in flight happens at its own time; later requests complete at once."""
        self._draining = True
        while self._timeline:
            self.advance(self._timeline[0][0])

    def _deliver(self, event: VenueOrderEvent) -> None:
        """A user-stream event leaves the venue now; the client hears of it after the response latency."""
        now = self.now_ns()
        delay = self.latency.response_ns(now)
        if delay <= 0:
            self._send(event)
            return
        self._push(now + delay, _DELIVER, event)
        if self._sleep is not None and not self._draining:
            self._wake(now + delay)

    def _wake(self, at_ns: int) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous caller): the next market event delivers it

        async def wake() -> None:
            assert self._sleep is not None
            await self._sleep(max(0, at_ns - self.clock.now_ns()) / 1e9)
            self.advance(max(self.clock.now_ns(), at_ns))

        task = loop.create_task(wake())
        self._wakers.add(task)
        task.add_done_callback(self._wakers.discard)

    def _send(self, event: VenueOrderEvent) -> None:
        raise NotImplementedError  # PaperVenue: to the engine and the observers
