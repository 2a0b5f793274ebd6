"""Start a coroutine now: run it in the caller's stack up to its first real wait, then as a task.

Owns `start_eager`, Python 3.11's missing `asyncio.eager_task_factory` for one coroutine. An order
decided in a market-data callback is otherwise a task that runs only after everything else the event
loop has ready (the rest of that frame's subscribers, other frames): on the tick-to-order path that
wait was the largest single stage. Run eagerly, the order is checked, signed and written before the
callback returns; only the wait for the venue's answer is left to the loop.

The coroutine sees the same semantics as in a task: its exceptions land in the returned future (never
in the caller), cancelling the future cancels it at the wait it is in, and what it awaits is awaited
by a real `asyncio.Task` once it suspends. The caller must be in a context where running that code
synchronously is safe (no half-updated state the coroutine reads): it is a decision of the caller.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")


def start_eager(coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """Run `coro` until it first suspends; a done future if it finished, else the task that goes on."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()  # as a task: the coroutine's context is a copy of the caller's
    try:
        yielded = context.run(coro.send, None)
    except StopIteration as stop:
        done: asyncio.Future[T] = loop.create_future()
        done.set_result(stop.value)
        return done
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - as a task would: the exception is the future's
        failed: asyncio.Future[T] = loop.create_future()
        if isinstance(exc, asyncio.CancelledError):
            failed.cancel()
        else:
            failed.set_exception(exc)
        return failed
    return loop.create_task(_Resumed(coro, yielded), context=context)


class _Resumed(Coroutine[Any, Any, Any]):
    """The task's coroutine: its first step hands the task the wait the coroutine is in; every later step,
    and a throw (a cancellation) even before that first step, goes straight to the coroutine."""

    __slots__ = ("coro", "yielded", "started")

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self.coro, self.yielded, self.started = coro, yielded, False

    def send(self, value: Any) -> Any:
        if not self.started:
            self.started = True
            yielded, self.yielded = self.yielded, None
            return yielded
        return self.coro.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:  # type: ignore[override]
        self.started, self.yielded = True, None
        return self.coro.throw(typ) if val is None and tb is None else self.coro.throw(typ, val, tb)

    def close(self) -> None:
        self.coro.close()

    def __await__(self) -> Generator[Any, Any, Any]:
        return self.coro.__await__()
