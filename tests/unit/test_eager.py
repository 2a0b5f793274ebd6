"""start_eager: the coroutine's prefix runs in the caller's stack, the rest as a task with task semantics."""

from __future__ import annotations

import asyncio

import pytest

from celeris.runtime.eager import start_eager


async def test_runs_up_to_the_first_wait_before_returning() -> None:
    steps: list[str] = []
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def work() -> int:
        steps.append("checked")
        async with asyncio.Lock():  # an uncontended lock is no wait
            steps.append("written")
        value = await gate
        steps.append("answered")
        return value + 1

    fut = start_eager(work())
    assert steps == ["checked", "written"]  # before any loop turn
    assert not fut.done()
    gate.set_result(41)
    assert await fut == 42
    assert steps == ["checked", "written", "answered"]


async def test_a_coroutine_that_never_waits_is_a_done_future() -> None:
    async def work() -> str:
        return "done"

    fut = start_eager(work())
    assert fut.done() and fut.result() == "done"


async def test_an_exception_is_the_futures_not_the_callers() -> None:
    async def before_wait() -> None:
        raise ValueError("refused")

    async def after_wait() -> None:
        await asyncio.sleep(0)
        raise KeyError("late")

    early = start_eager(before_wait())
    with pytest.raises(ValueError, match="refused"):
        await early
    late = start_eager(after_wait())
    with pytest.raises(KeyError):
        await late


async def test_cancelling_reaches_the_coroutine_at_its_wait_and_it_may_clean_up() -> None:
    cleaned: list[str] = []
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def work() -> None:
        try:
            await never
        except asyncio.CancelledError:
            cleaned.append("cancelled")
            raise

    fut = start_eager(work())
    await asyncio.sleep(0)
    fut.cancel()
    with pytest.raises(asyncio.CancelledError):
        await fut
    assert cleaned == ["cancelled"]
    assert never.cancelled()


async def test_a_coroutine_may_catch_the_cancel_and_return() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def work() -> str:
        try:
            await never
        except asyncio.CancelledError:
            return "gave up"
        return "answered"

    fut = start_eager(work())
    await asyncio.sleep(0)
    fut.cancel()
    await asyncio.wait([fut])
    # asyncio.Task semantics: a swallowed cancel ends the task with the coroutine's value.
    assert fut.result() == "gave up"


async def test_many_waits_bare_yields_and_sleeps_in_a_row() -> None:
    async def work() -> int:
        total = 0
        for i in range(50):
            await asyncio.sleep(0)
            total += i
            if i % 10 == 0:
                await asyncio.sleep(0.001)
        return total

    assert await start_eager(work()) == sum(range(50))


async def test_order_of_effects_matches_a_task_after_the_first_wait() -> None:
    """Two eager starts interleave at their waits like two tasks do."""
    log: list[str] = []

    async def work(name: str) -> None:
        log.append(f"{name}0")
        await asyncio.sleep(0)
        log.append(f"{name}1")
        await asyncio.sleep(0)
        log.append(f"{name}2")

    a, b = start_eager(work("a")), start_eager(work("b"))
    assert log == ["a0", "b0"]
    await asyncio.gather(a, b)
    assert log == ["a0", "b0", "a1", "b1", "a2", "b2"]


async def test_a_context_variable_set_in_the_eager_part_stays_the_coroutines_as_in_a_task():
    """asyncio.Task runs its coroutine in a copy of the caller's context: what the coroutine sets must not
    leak into the caller (here the market-data callback), nor the caller's later changes into the task."""
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="caller")
    seen: list[str] = []

    async def coro():
        var.set("coroutine")
        await asyncio.sleep(0)
        seen.append(var.get())

    fut = start_eager(coro())
    assert var.get() == "caller"
    var.set("caller-later")
    await fut
    assert seen == ["coroutine"]


async def test_cancelled_before_the_task_first_runs_the_coroutine_still_sees_the_cancellation():
    """A task cancelled before its first step throws CancelledError into its coroutine at once: the eager
    coroutine, already suspended at its wait, must get it there (its finally, e.g. a reservation's release,
    runs), not be left suspended forever."""
    cleaned: list[str] = []

    async def coro():
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            cleaned.append("cancelled")
            raise
        finally:
            cleaned.append("finally")

    fut = start_eager(coro())
    fut.cancel()  # same loop turn: the task has not taken its first step
    with pytest.raises(asyncio.CancelledError):
        await fut
    assert cleaned == ["cancelled", "finally"]
