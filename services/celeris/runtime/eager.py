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
    return loop.create_task(_resume(coro, yielded), context=context)


async def _resume(coro: Coroutine[Any, Any, T], yielded: Any) -> T:
    return await _Continuation(coro, yielded)  # type: ignore[no-any-return]


class _Continuation:
    """Hands the task the future the coroutine suspended on, then drives the coroutine as the task does."""

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self.coro, self.yielded = coro, yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        return _drive(self.coro, self.yielded)


def _drive(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    while True:
        try:
            sent = yield yielded  # the task waits for this future (or, for a bare yield, one loop turn)
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - cancellation and throw() go to the coroutine's wait
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            yielded = coro.send(sent)
        except StopIteration as stop:
            return stop.value
