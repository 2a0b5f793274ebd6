"""Supervised long-lived tasks: a loop that raises is logged, counted and started again with back-off.

Owns `supervised(name, factory)`, used for every long-lived task of the engines (stream readers, the
snapshot worker, reconciliation and monitoring loops, the execution event worker, timers), and the
failure counts `failures` that /metrics exports as `celeris_task_restarts_total{task}`. A task whose
coroutine returns is finished; cancelling the task stops it for good.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

log = logging.getLogger(__name__)

failures: dict[str, int] = {}
"""task name -> how many times it failed and was restarted (this process)."""


def supervised(name: str, factory: Callable[[], Awaitable[Any]], *, initial_backoff_s: float = 0.5,
               max_backoff_s: float = 30.0) -> asyncio.Task[None]:
    """Run `factory()` as a task named `name`; an exception restarts it after a back-off that doubles
    (reset after a run that lasted longer than the back-off cap)."""

    async def run() -> None:
        loop = asyncio.get_running_loop()
        delay = initial_backoff_s
        while True:
            started = loop.time()
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                failures[name] = failures.get(name, 0) + 1
                if loop.time() - started > max_backoff_s:
                    delay = initial_backoff_s
                log.exception("task %s failed (%d so far); restarting in %.1f s", name, failures[name], delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_backoff_s)

    return asyncio.create_task(run(), name=name)
