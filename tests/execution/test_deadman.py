"""The live venue adapter against the simulator over real sockets: at start it refuses an account in hedge
mode; then the dead-man's switch: execution arms Binance's countdownCancelAll before its first live order
(never before: an account Celeris has not traded is left alone), keeps renewing it, and when execution stops
beating (dies or hangs) the venue itself cancels the open orders, which execution then learns from the user
stream."""

from __future__ import annotations

from celeris.domain.orders import OrderStatus
from tests.execution.conftest import Harness, live_venue, request, wait_for  # noqa: F401
from tests.sim.conftest import API_KEY


async def test_armed_before_the_first_order_renewed_and_the_venue_cancels_when_execution_stops_beating(
        live_venue):  # noqa: F811
    h = await Harness(live_venue, cancel_all_after_ms=900).start()
    try:
        account = h.sim.engine.accounts[API_KEY]
        assert account.countdowns == {}  # nothing traded yet: the account's own orders are not put at risk
        ins = h.ins()
        outcome = await h.engine.submit(request(price=ins.format_price(h.best(True) - 100), instrument=ins))
        assert outcome.accepted, outcome.rejection
        assert set(account.countdowns) == {"BTCUSDT", "ETHUSDT"}  # armed before the order reached the venue
        first = account.countdowns["BTCUSDT"]
        assert await wait_for(lambda: account.countdowns.get("BTCUSDT", 0) > first, timeout=5), "never renewed"
        renewals = h.live.deadman.beats
        assert await wait_for(lambda: h.live.deadman.beats >= renewals + 3, timeout=5)
        client_id = outcome.order.client_order_id
        assert h.engine.orders[client_id].status is OrderStatus.SUBMITTED  # renewed in time: still working
        # Execution stops beating (what a crash or a hang looks like from the venue).
        h.live.deadman._task.cancel()
        assert await wait_for(lambda: all(o.status == "CANCELED" for o in account.orders.values()), timeout=5)
        assert await wait_for(lambda: h.engine.orders[client_id].status is OrderStatus.CANCELED, timeout=5)
    finally:
        await h.stop()


async def test_off_means_no_countdown_and_a_refused_arm_sends_no_order(live_venue):  # noqa: F811
    h = await Harness(live_venue).start()
    try:
        ins = h.ins()
        outcome = await h.engine.submit(request(price=ins.format_price(h.best(True) - 100), instrument=ins))
        assert outcome.accepted and h.sim.engine.accounts[API_KEY].countdowns == {}
    finally:
        await h.stop()
    # A venue that refuses the switch: the order is refused too, and nothing reaches the book.
    h = await Harness(live_venue, cancel_all_after_ms=900).start()
    try:
        h.live.deadman.symbols = ["NOPEUSDT"]  # the venue answers -1121
        before = len(h.sim.engine.accounts[API_KEY].orders)
        outcome = await h.engine.submit(request(price=ins.format_price(h.best(True) - 100), instrument=ins))
        assert not outcome.accepted, outcome
        assert len(h.sim.engine.accounts[API_KEY].orders) == before
    finally:
        await h.stop()


async def test_an_execution_process_refuses_a_hedge_mode_account_before_any_stream_or_order(live_venue):  # noqa: F811
    """The pods' path (no `celeris up` preflight): the live venue adapter's start refuses hedge mode."""
    import pytest

    from celeris.venues.binance.errors import UnsupportedAccountMode

    live_venue.engine.accounts[API_KEY].dual_side = True
    h = Harness(live_venue)
    with pytest.raises(UnsupportedAccountMode, match="hedge mode"):
        await h.engine.start()
    assert h.live.listen_key == ""  # no stream was opened
    await h.stop()
