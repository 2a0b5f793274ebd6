"""A send whose outcome is unknown (the venue answers after our timeout) never becomes a second order, and
an order given up on that lands after all is tracked again: against the bundled simulator on 127.0.0.1,
orders over the WebSocket API, the venue holding the first order back (the adversarial review's repros)."""

from __future__ import annotations

import asyncio

import pytest

from celeris.domain.instruments import OrderType
from celeris.venues.binance.ws_api import WsApiClient
from tests.execution.conftest import Harness, live_venue, request, wait_for  # noqa: F401
from tests.sim.conftest import API_KEY


def venue_orders(h, cid):
    return [o for o in h.sim.engine.accounts[API_KEY].orders.values() if o.client_order_id == cid]


def venue_position(h):
    return h.sim.engine.accounts[API_KEY].positions["BTCUSDT"].qty_steps


async def harness(venue, **config):
    return await Harness(venue, ws_api=lambda rest: WsApiClient(f"{venue.ws_url}/ws-fapi/v1", rest, timeout_s=0.3,
                                                                backoff_initial_s=0.05, backoff_max_s=0.05),
                         **config).start()


@pytest.fixture
async def late_answer(live_venue):  # noqa: F811
    """A harness (2 s unknown-outcome window) whose venue holds the first order's answer until it is queried:
    (harness, instrument, the venue's position before)."""
    h = await harness(live_venue, unknown_outcome_window_s=2.0)
    hold_first_order(live_venue, release_on_query=True)
    try:
        yield h, h.ins(), venue_position(h)
    finally:
        await h.stop()


def hold_first_order(venue, release_on_query: bool, every_send: bool = False):
    """The venue is slow with the first order: it executes it only once released (by our first query of
    it, i.e. just after answering "does not exist", or by the test)."""
    place, query = venue._place_order, venue._query_order
    gate, held = asyncio.Event(), []

    async def late_place(account, params, received_ns):
        if every_send or not held:
            held.append(params.get("newClientOrderId"))
            await gate.wait()
        return await place(account, params, received_ns)

    def late_query(account, params):
        try:
            return query(account, params)
        finally:
            if release_on_query:
                gate.set()

    venue._place_order, venue._query_order = late_place, late_query
    return gate


async def test_a_market_order_answered_late_is_one_order_not_two(late_answer):
    h, ins, before = late_answer
    out = await asyncio.wait_for(h.engine.submit(request(order_type=OrderType.MARKET, qty="0.050", instrument=ins)),
                                 20)
    await h.engine.settle()
    cid = out.order.client_order_id
    assert len(venue_orders(h, cid)) == 1  # never sent twice
    assert venue_position(h) - before == ins.qty("0.050")
    assert out.accepted and h.engine.stats.ambiguous_resolved == 1


async def test_a_burst_in_flight_when_the_connection_times_out_is_placed_once_each(late_answer):
    h, ins, before = late_answer
    outs = await asyncio.wait_for(asyncio.gather(*(h.engine.submit(
        request(order_type=OrderType.MARKET, qty="0.010", instrument=ins)) for _ in range(4))), 30)
    await h.engine.settle()
    for out in outs:
        assert len(venue_orders(h, out.order.client_order_id)) == 1
    assert venue_position(h) - before == 4 * ins.qty("0.010")


async def test_an_order_given_up_on_that_lands_later_is_tracked_again_and_a_halt_cancels_it(live_venue):
    h = await harness(live_venue)  # a window shorter than the venue's delay: given up on, then it lands
    try:
        gate = hold_first_order(live_venue, release_on_query=False, every_send=True)
        ins = h.ins()
        out = await asyncio.wait_for(h.engine.submit(request(price=ins.format_price(h.best(True) - 100),
                                                             instrument=ins)), 20)
        assert not out.accepted and "after 3 attempts:" in out.rejection.message
        cid = out.order.client_order_id
        await h.engine.halt("drill", "test")
        gate.set()  # the venue executes the held frame now: a live order we had refused
        assert await wait_for(lambda: h.engine.stats.landed_late == 1, 10)
        assert await wait_for(lambda: venue_orders(h, cid) and not any(o.is_open for o in venue_orders(h, cid)), 10)
        assert len(venue_orders(h, cid)) == 1 and not h.engine.open_orders()
    finally:
        await h.stop()
