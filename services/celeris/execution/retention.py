"""How long execution keeps a closed order in memory: the order table's retention.

A session places orders without end; keeping every closed `Order` (with its history) made execution's
memory grow linearly. A closed order is kept `closed_order_retention_s` after it closed (late events,
the dashboard and GetOrder read it there), then dropped from the engine's tables and from hot state.
Its client order id stays known for the idempotency window (`idempotency_ttl_s`), so a retried request
is answered as a duplicate, never placed twice, and a late venue event for it is ignored instead of
being adopted as somebody else's order.
"""

from __future__ import annotations

from collections import deque
from typing import Any


class ClosedOrderRetention:
    def __init__(self, engine: Any, retention_s: float, id_ttl_s: float) -> None:
        self.engine = engine
        self.retention_ns = int(retention_s * 1e9)
        self.id_ttl_ns = int(id_ttl_s * 1e9)
        self._closed: deque[tuple[int, str]] = deque()
        """(closed at, client id), oldest first."""
        self._dropped: deque[tuple[int, str]] = deque()
        self.dropped_ids: set[str] = set()
        """Client ids of orders dropped from memory but still inside the id window."""
        self.pending_forget: list[str] = []
        """Dropped ids whose hot-state records are still to be deleted (done on the next persist)."""
        self.pruned = 0

    def closed(self, client_id: str, ts_ns: int) -> None:
        self._closed.append((ts_ns, client_id))

    def known_closed(self, client_id: str) -> bool:
        return client_id in self.dropped_ids

    def prune(self, now_ns: int) -> None:
        engine = self.engine
        while self._closed and now_ns - self._closed[0][0] >= self.retention_ns:
            _, cid = self._closed.popleft()
            order = engine.orders.get(cid)
            if order is None or order.is_open or cid in engine._closing:
                continue  # reopened (cannot happen by the table) or still finishing: not ours to drop
            lock = engine._locks.get(cid)
            if lock is not None and lock.locked():
                self._closed.append((now_ns, cid))  # a cancel still running on it: later
                continue
            del engine.orders[cid]
            engine._locks.pop(cid, None)
            engine.order_mode.pop(cid, None)
            if order.venue_order_id and engine.by_venue_id.get(order.venue_order_id) == cid:
                del engine.by_venue_id[order.venue_order_id]
            engine.request_of.pop(cid, None)
            self.dropped_ids.add(cid)
            self._dropped.append((now_ns, cid))
            self.pending_forget.append(cid)
            self.pruned += 1
        while self._dropped and now_ns - self._dropped[0][0] >= self.id_ttl_ns:
            _, cid = self._dropped.popleft()
            self.dropped_ids.discard(cid)

    async def forget_in_hot_state(self) -> None:
        if not self.pending_forget:
            return
        batch, self.pending_forget = self.pending_forget, []
        await self.engine.hot.forget_orders(batch)
