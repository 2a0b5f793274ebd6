"""Orders decided on a book reach the gateway before on_book returns (the tick-to-order path does not wait
for the loop); actions caused by execution's own answers and fills stay tasks (never re-entering it)."""

from __future__ import annotations

import asyncio

from celeris.domain import sdk
from celeris.domain.values import Side
from tests.strategy.fakes import ControlledGateway, book, engine_with, settle


class Quoter(sdk.Strategy):
    """Places a bid on every book; on a fill, places another (from execution's callback)."""

    name = "quoter"
    depth = 1

    def __init__(self):
        self.placed: list[str] = []

    def on_book(self, book):
        self.placed.append(self.place("BTCUSDT", Side.BUY, "60000.00", "0.001", post_only=True))

    def on_fill(self, fill):
        self.placed.append(self.place("BTCUSDT", Side.BUY, "59999.00", "0.001", post_only=True))


class Ladder(sdk.Strategy):
    """Three bids on every book."""

    name = "ladder"
    depth = 1

    def on_book(self, book):
        for i in range(3):
            self.place("BTCUSDT", Side.BUY, f"{59990 + i}.00", "0.001", post_only=True)


class SyncGateway(ControlledGateway):
    """Records, in the order they ran, the synchronous part of each submit (what execution does before
    its first wait: checks, signing, the socket write)."""

    def __init__(self, log: list[str]) -> None:
        super().__init__(hold=True)
        self.log = log

    async def submit(self, request):
        self.log.append(f"submit {request.client_order_id}")
        return await super().submit(request)


async def test_an_order_on_a_book_is_written_before_the_book_call_returns(btcusdt):
    log: list[str] = []
    engine = engine_with(btcusdt, ("q", Quoter, {}), gateway=SyncGateway(log))
    engine.on_book(book(1))
    quoter = engine.runners["q"].strategy
    log.append("on_book returned")
    # Before any loop turn: the order's checks and write ran inside the callback.
    assert log == [f"submit {quoter.placed[0]}", "on_book returned"]
    gw = engine.gateway
    gw.ack(quoter.placed[0])
    await settle()
    assert [o.state.value for o in quoter.orders()] == ["WORKING"]


async def test_several_orders_of_one_book_go_out_in_the_order_decided(btcusdt):
    log: list[str] = []

    engine = engine_with(btcusdt, ("l", Ladder, {}), gateway=SyncGateway(log))
    engine.on_book(book(1))
    sent = [r.price_ticks for r in engine.gateway.submitted]
    assert sent == [599900, 599910, 599920] and len(log) == 3


async def test_an_order_placed_from_a_fill_is_a_task_not_a_reentrant_call(btcusdt):
    log: list[str] = []
    engine = engine_with(btcusdt, ("q", Quoter, {}), gateway=SyncGateway(log))
    engine.on_book(book(1))
    quoter = engine.runners["q"].strategy
    gw = engine.gateway
    gw.ack(quoter.placed[0])
    await settle()
    log.clear()
    gw.fill(engine, quoter.placed[0], 1)
    log.append("fill delivered")
    # The fill's order waits for a loop turn: execution, which delivered the fill, is not re-entered.
    assert log == ["fill delivered"]
    await settle()
    assert log == ["fill delivered", f"submit {quoter.placed[-1]}"]


async def test_a_failing_gateway_in_the_eager_part_is_the_strategys_refusal(btcusdt):
    class Broken(ControlledGateway):
        async def submit(self, request):
            raise RuntimeError("socket gone")

    engine = engine_with(btcusdt, ("q", Quoter, {}), gateway=Broken())
    engine.on_book(book(1))  # does not raise into market data
    quoter = engine.runners["q"].strategy
    await settle()
    (order,) = [quoter.order(cid) for cid in quoter.placed if quoter.order(cid) is not None] or [None]
    assert order is None  # closed as rejected, told to the strategy
    assert engine.stats["orders"] == 1
    assert not engine._tasks
    await asyncio.sleep(0)


async def test_an_interrupt_in_one_eager_start_leaves_the_rest_of_the_books_orders_tasks(btcusdt):
    """KeyboardInterrupt/SystemExit in the first order's eager part propagates (as from a task), but the
    book's other order actions were already reserved: they must become tracked tasks (stop() and the loop's
    shutdown cancel them, releasing their reservations), not coroutines dropped unawaited."""

    class Interrupted(ControlledGateway):
        def __init__(self):
            super().__init__(hold=True)
            self.calls = 0

        async def submit(self, request):
            self.calls += 1
            if self.calls == 1:
                raise KeyboardInterrupt
            return await super().submit(request)

    engine = engine_with(btcusdt, ("l", Ladder, {}), gateway=Interrupted())
    try:
        engine.on_book(book(1))
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the interrupt must propagate")
    assert len(engine._tasks) == 2
    await engine.stop()
    assert not engine._tasks


async def test_stop_right_after_a_book_releases_the_eagerly_started_orders(btcusdt):
    """stop() in the same loop turn as the book that started an order: its task is cancelled before its
    first step; the order's coroutine (execution's submit, waiting for the venue) must still get the
    cancellation and run its cleanup, not stay suspended for ever."""
    log: list[str] = []

    class Releasing(SyncGateway):
        async def submit(self, request):
            try:
                return await super().submit(request)
            except asyncio.CancelledError:
                log.append("submit cancelled")
                raise

    engine = engine_with(btcusdt, ("q", Quoter, {}), gateway=Releasing(log))
    engine.on_book(book(1))
    assert engine._tasks
    await engine.stop()
    assert not engine._tasks
    assert "submit cancelled" in log


async def test_a_book_published_from_inside_an_eager_start_does_not_overtake_the_earlier_books_orders(btcusdt):
    """Execution's synchronous part may (through the bus) publish another book: that book's orders start
    after the rest of the first book's, in the order the two books were decided."""
    holder: dict = {}

    class Republishing(ControlledGateway):
        def __init__(self):
            super().__init__(hold=True)
            self.nested = False

        async def submit(self, request):
            if not self.nested:
                self.nested = True
                holder["engine"].on_book(book(2, bid=600100, ask=600110))
            return await super().submit(request)

    engine = engine_with(btcusdt, ("l", Ladder, {}), gateway=Republishing())
    holder["engine"] = engine
    engine.on_book(book(1))
    sent = [r.client_order_id for r in engine.gateway.submitted]
    ladder = engine.runners["l"].strategy
    placed = [o.client_order_id for o in ladder.orders()]
    assert len(sent) == 6 and sent == placed  # the order decided: book 1's three, then book 2's three
    await engine.stop()
