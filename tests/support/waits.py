"""Waits on a condition, never on a duration: each polls until the condition holds or its deadline passes.

`wait_for` (async, a plain predicate: False on timeout), `until` (async, an awaitable returning a value;
gRPC errors while a server starts count as "not yet"; the last value on timeout) and `wait_until`
(blocking, a plain predicate: raises on timeout, naming what it waited for).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

import grpc


async def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, poll_s: float = 0.01) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(poll_s)
    return True


async def until(fn: Callable[[], Awaitable[Any]], timeout: float = 30.0, poll_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = await fn()
            if last:
                return last
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(poll_s)
    return last


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "", poll_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll_s)
    raise AssertionError(f"timed out waiting for {what or predicate}")
