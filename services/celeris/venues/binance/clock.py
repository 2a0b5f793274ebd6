"""The venue's clock as seen from here: an offset estimated from /fapi/v1/time.

Signed requests carry our idea of the venue's time; a host clock a few seconds off would get -1021 on
every request. The offset is taken from the sample with the shortest round trip (its midpoint is the
best estimate of when the venue read its clock).
"""

from __future__ import annotations

from typing import Awaitable, Callable

from celeris.domain.clock import Clock


class ServerClock:
    def __init__(self, local: Clock) -> None:
        self.local = local
        self.offset_ms = 0
        self.rtt_ms: float | None = None

    def now_ms(self) -> int:
        return self.local.now_ns() // 1_000_000 + self.offset_ms

    async def sync(self, fetch_server_ms: Callable[[], Awaitable[int]], samples: int = 3) -> int:
        """Estimate the offset from `samples` round trips; returns it in milliseconds."""
        best: tuple[float, int] | None = None
        for _ in range(samples):
            sent = self.local.now_ns()
            server_ms = await fetch_server_ms()
            received = self.local.now_ns()
            rtt = (received - sent) / 1_000_000
            midpoint_ms = (sent + received) // 2_000_000
            if best is None or rtt < best[0]:
                best = (rtt, server_ms - midpoint_ms)
        assert best is not None
        self.rtt_ms, self.offset_ms = best
        return self.offset_ms
