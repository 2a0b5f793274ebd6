"""The in-process bus: topics, synchronous subscribers on the hot path, coalescing async queues.

Owns delivery inside one process. Hot-path consumers (the strategy engine in `celeris up`) subscribe a
plain callback and are called synchronously with the message object: no copy, no serialization.
Consumers that may fall behind (gRPC streams, Redis, the dashboard) take a `CoalescingQueue`: it keeps
at most one pending item per key and merges newer into older with the caller's merge function, so a slow
consumer sees fewer, fuller updates and memory stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any, Callable, Generic, Hashable, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Callback = Callable[[Any], None]


class InProcessBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, list[Callback]] = defaultdict(list)
        self._hot: dict[str, int] = defaultdict(int)
        """topic -> how many of its first subscribers are on the hot path."""
        self.errors = 0

    def subscribe(self, topic: str, callback: Callback, hot: bool = False) -> Callable[[], None]:
        """Call `callback(message)` for each message on `topic`; returns an unsubscribe function. `hot`
        subscribers (the strategy engine's feed) are called before the others (dashboards, fan-out queues),
        in the order they subscribed: a tick reaches the decision first."""
        subscribers = self._subscribers[topic]
        if hot:
            subscribers.insert(self._hot[topic], callback)
            self._hot[topic] += 1
        else:
            subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in subscribers:
                if subscribers.index(callback) < self._hot[topic]:
                    self._hot[topic] -= 1
                subscribers.remove(callback)
        return unsubscribe

    def publish(self, topic: str, message: Any) -> None:
        for callback in self._subscribers.get(topic, ()):
            try:
                callback(message)
            except Exception:  # one broken consumer must not stop the feed for the others
                self.errors += 1
                log.exception("bus subscriber failed on %s", topic)

    def has_subscribers(self, topic: str) -> bool:
        return bool(self._subscribers.get(topic))


class CoalescingQueue(Generic[T]):
    """A bounded queue keyed by e.g. symbol: `put` merges into a pending item for the same key."""

    def __init__(self, merge: Callable[[T, T], T], max_keys: int = 10_000) -> None:
        self._merge = merge
        self._pending: dict[Hashable, T] = {}
        self._ready = asyncio.Event()
        self.max_keys = max_keys
        self.coalesced = 0
        self.closed = False

    def put(self, key: Hashable, item: T) -> None:
        if self.closed:
            return
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= self.max_keys:
                raise OverflowError("coalescing queue has too many keys")
            self._pending[key] = item
        else:
            self._pending[key] = self._merge(pending, item)
            self.coalesced += 1
        self._ready.set()

    async def get(self) -> list[T]:
        """Everything pending (oldest key first), waiting until there is something."""
        while not self._pending:
            if self.closed:
                raise asyncio.CancelledError("queue closed")
            self._ready.clear()
            await self._ready.wait()
        items = list(self._pending.values())
        self._pending.clear()
        return items

    def close(self) -> None:
        self.closed = True
        self._ready.set()
