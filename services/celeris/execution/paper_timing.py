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
At the end of a backtest, `drain(end_ns)` lets what was in flight up to the last line's time happen at
its time; nothing happens at the venue after it. A request that had not reached the venue by then never
does (`end_in_flight()` answers it: a new order is CANCELED without ever resting, anything else is refused,
a cancel is done at the end's time), answers and events that left the venue before the end reach the
client at once, and later requests (a strategy cancelling its quotes at stop) are answered at once at
the end's time, a new order CANCELED: no data will move the clock again, so no order can meet the book.
`drain()` without a time (tests of the timeline) lets everything in flight happen at its own time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from celeris.domain.messages import VenueOrderEvent
from celeris.execution.latency_models import LatencyModel
from celeris.venues.binance import errors

_ARRIVE, _RESPOND, _DELIVER = 0, 1, 2


@dataclass(eq=False, slots=True)
class _Request:
    action: Callable[[], Any]
    future: asyncio.Future[Any]
    response_at: int | None = None
    at_end: Callable[[], Any] | None = None
    """The answer if the data ends before the request reaches the venue (None: the action, done at the
    end's time — only for requests that cannot trade, cancels)."""


def never_arrived() -> Any:
    """The answer to a request the data ended before it reached the venue (an amendment, a batch of them)."""
    raise errors.OrderRejected(0, "paper venue: the data ended before the request reached the venue")


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
        self._end_ns: int | None = None
        """The last line's time once the data has ended (drain(end_ns)): nothing happens at the venue after it."""
        self._in_flight_at_end: list[_Request] = []
        self._wakers: set[asyncio.Task[None]] = set()

    def now_ns(self) -> int:
        """The venue's clock: the time of what it is processing, else the injected clock."""
        return self._venue_ns if self._venue_ns is not None else self.clock.now_ns()

    @property
    def in_flight(self) -> int:
        return len(self._timeline)

    async def _request(self, action: Callable[[], Any], at_end: Callable[[], Any] | None = never_arrived) -> Any:
        """`action` runs at the venue after the entry latency; its answer comes back after the response one.
        `at_end`: the answer if the data ends before it arrives (None: the action at the end's time)."""
        request = _Request(action, asyncio.get_running_loop().create_future(), at_end=at_end)
        if self._end_ns is not None:  # the data has ended: it cannot reach the venue before the end
            self._answer_at_end(request)
            return await request.future
        now = self.clock.now_ns()
        self.advance(now)
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

    def drain(self, end_ns: int | None = None) -> None:
        """The data has ended at `end_ns`: what was in flight up to then happens at its time; requests still on
        their way wait for end_in_flight(); answers and events already sent reach the client now; later
        requests are answered at once. Without `end_ns`, everything in flight happens at its own time."""
        self._draining = True
        if end_ns is None:
            while self._timeline:
                self.advance(self._timeline[0][0])
            return
        self.advance(end_ns)
        self._end_ns = end_ns
        timeline, self._timeline = sorted(self._timeline), []
        for at_ns, _, kind, item in timeline:
            if kind == _ARRIVE:
                self._in_flight_at_end.append(item)
            else:
                self._process(at_ns, kind, item)

    def end_in_flight(self) -> int:
        """Answer the requests the data ended before they reached the venue (after drain(end_ns)), in the
        order they were sent: they never reach it. Returns how many."""
        stranded, self._in_flight_at_end = self._in_flight_at_end, []
        for request in stranded:
            self._answer_at_end(request)
        return len(stranded)

    def _answer_at_end(self, request: _Request) -> None:
        self._venue_ns = self._end_ns
        try:
            value = (request.action if request.at_end is None else request.at_end)()
        except Exception as exc:  # a refusal travels back like an answer
            if not request.future.done():
                request.future.set_exception(exc)
        else:
            if not request.future.done():
                request.future.set_result(value)
        finally:
            self._venue_ns = None

    def _deliver(self, event: VenueOrderEvent) -> None:
        """A user-stream event leaves the venue now; the client hears of it after the response latency."""
        now = self.now_ns()
        delay = self.latency.response_ns(now)
        if delay <= 0 or self._end_ns is not None:  # after the end the client hears at once: nothing moves time
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
