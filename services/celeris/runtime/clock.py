"""The wall clock, the only place the core's Clock port meets real time."""

from __future__ import annotations

import time


class SystemClock:
    def now_ns(self) -> int:
        return time.time_ns()
