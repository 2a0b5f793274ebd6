"""A long-lived task that raises is logged, counted and restarted with back-off; a cancel stops it."""

import asyncio

from prometheus_client import generate_latest

from celeris.runtime.metrics import new_registry
from celeris.transport import tasks


async def test_a_failing_loop_is_restarted_counted_and_exported():
    runs = []

    async def flaky():
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("boom")
        await asyncio.sleep(3600)

    task = tasks.supervised("test-flaky", flaky, initial_backoff_s=0.01)
    for _ in range(200):
        if len(runs) >= 3:
            break
        await asyncio.sleep(0.01)
    assert len(runs) == 3 and tasks.failures["test-flaky"] == 2
    assert b'celeris_task_restarts_total{task="test-flaky"} 2.0' in generate_latest(new_registry())
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
