"""An SDK strategy whose engine reaches execution over gRPC (the strategy service's topology): place, amend
and cancel go through the ExecutionClient on a real socket to a simulation-mode execution engine, and the
venue's order has exactly the terms the strategy asked for."""

from __future__ import annotations

from celeris.clients.execution import ExecutionClient
from celeris.domain.clock import TestClock
from celeris.domain.modes import Mode
from celeris.domain.sdk_types import OrderState
from celeris.domain.values import Side
from celeris.execution import servicer
from celeris.execution.engine import ExecutionEngine
from celeris.execution.model import ExecutionConfig, PositionLimits
from celeris.execution.paper import PaperVenue
from celeris.runtime.grpc_server import create_server
from celeris.transport.bus import InProcessBus
from tests.strategy.fakes import book, engine_with
from tests.strategy.test_sdk import Recorder
from tests.support.waits import wait_for


async def test_place_amend_cancel_over_grpc_reach_the_venue_exactly(btcusdt):
    clock = TestClock()
    instruments = {"BTCUSDT": btcusdt}
    bus = InProcessBus()
    paper = PaperVenue(instruments, clock, latency_ms=0)
    execution = ExecutionEngine(ExecutionConfig(("BTCUSDT",), PositionLimits(0, 1000)), instruments, clock,
                                {Mode.SIMULATION: paper}, bus.publish, mode=Mode.SIMULATION)
    await execution.start()
    bound = create_server([servicer.registrar(execution, bus)])
    await bound.server.start()
    client = ExecutionClient(f"127.0.0.1:{bound.port}", instruments)
    try:
        engine = engine_with(btcusdt, ("a", Recorder, {}), gateway=client, clock=clock, mode=Mode.SIMULATION)
        s = engine.runners["a"].strategy
        s.script = lambda s, e: e == "start" and s.place("BTCUSDT", Side.BUY, "59990.00", "0.010", post_only=True)
        first = book(1, 600000, 600010)
        paper.on_book(first)
        engine.on_book(first)
        assert await wait_for(lambda: s.orders() and s.orders()[0].state is OrderState.WORKING)
        (order,) = s.orders()
        venue = paper.orders[order.client_order_id]
        assert (venue.price, venue.qty, venue.order.time_in_force.value) == (599900, 10, "GTX")
        s.amend(order.client_order_id, price="59995.50", qty="0.012")
        engine._drain(engine.runners["a"])
        assert await wait_for(lambda: ("amended", OrderState.WORKING) in s.updates())
        assert (venue.price, venue.qty) == (599955, 12)
        assert execution.orders[order.client_order_id].price_ticks == 599955
        s.cancel(order.client_order_id)
        engine._drain(engine.runners["a"])
        assert await wait_for(lambda: s.orders() == ())
        assert s.updates()[-1] == ("canceled", OrderState.CANCELED)
        assert not execution.orders[order.client_order_id].is_open and engine.owned.working == {}
    finally:
        await client.close()
        await bound.server.stop(None)
        await execution.stop()
