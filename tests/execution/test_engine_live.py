"""Execution against the simulator in live mode: every path that can lose or duplicate an order."""

import aiohttp
import pytest

from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.modes import Mode
from celeris.domain.orders import OrderStatus
from celeris.domain.values import Side
from celeris.domain.messages import RejectCode
from tests.execution.conftest import Harness, live_venue, request, wait_for  # noqa: F401
from tests.sim.conftest import API_KEY


def sim_orders(h, client_id):
    account = h.sim.engine.accounts[API_KEY]
    return [o for o in account.orders.values() if o.client_order_id == client_id]


async def fault(h, **faults):
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{h.sim.base_url}/_sim/faults", json=faults) as r:
            assert r.status == 200


async def test_limit_order_lifecycle_and_cancel(harness):
    h = harness
    ins = h.ins()
    price = ins.format_price(h.best(True) - 100)
    outcome = await h.engine.submit(request(price=price, instrument=ins))
    assert outcome.accepted and outcome.order.status is OrderStatus.SUBMITTED
    client_id = outcome.order.client_order_id
    assert [o.status for o in sim_orders(h, client_id)] == ["NEW"]
    cancel = await h.engine.cancel("c1", "BTCUSDT", client_id)
    assert cancel.accepted and cancel.order.status is OrderStatus.CANCELED
    again = await h.engine.cancel("c2", "BTCUSDT", client_id)
    assert not again.accepted and again.rejection.code is RejectCode.NOT_CANCELABLE
    statuses = [e[3] for e in h.journal.events if e[1] == client_id]
    assert statuses[0] == "PENDING_SUBMIT" and statuses[-1] == "CANCELED"


async def test_market_order_fills_arrive_from_the_user_stream_once(harness):
    h = harness
    ins = h.ins()
    outcome = await h.engine.submit(request(order_type=OrderType.MARKET, qty="0.050", instrument=ins))
    assert outcome.accepted
    order = outcome.order
    assert await wait_for(lambda: order.status is OrderStatus.FILLED)
    assert order.filled_steps == 50
    assert h.engine.positions["BTCUSDT"].qty_steps == 50
    fills = [m for t, m in h.published if t == "fills.BTCUSDT"]
    assert sum(f.qty_steps for f in fills) == 50
    # A reconciliation replays the venue's trades: nothing is counted twice.
    await h.engine.reconcile(h.live)
    assert order.filled_steps == 50 and h.engine.positions["BTCUSDT"].qty_steps == 50
    assert h.engine.stats.duplicate_fills_ignored >= 1


async def test_partial_fills_of_a_resting_order(harness):
    h = harness
    ins = h.ins()
    bid = h.best(True)
    outcome = await h.engine.submit(request(price=ins.format_price(bid), qty="0.500", instrument=ins))
    order = outcome.order
    # Background flow eats the queue ahead, then part of our order.
    ahead = h.sim.engine.books["BTCUSDT"].synthetic_bids.get(bid, 0)
    h.sim.engine.fill_resting_from_flow("BTCUSDT", Side.SELL, bid, ahead + 120)
    h.sim.engine._notify(h.sim.engine.accounts[API_KEY])
    await h.sim._flush_users()
    assert await wait_for(lambda: order.filled_steps == 120)
    assert order.status is OrderStatus.PARTIALLY_FILLED
    await h.engine.cancel("cx", "BTCUSDT", order.client_order_id)
    assert order.status is OrderStatus.CANCELED and order.filled_steps == 120


async def test_same_request_id_returns_the_first_answer_and_sends_once(harness):
    h = harness
    ins = h.ins()
    req = request(price=ins.format_price(h.best(True) - 200), instrument=ins, request_id="dup-req-1")
    first, second = await __import__("asyncio").gather(h.engine.submit(req), h.engine.submit(req))
    third = await h.engine.submit(req)
    assert first.accepted and second.accepted and third.accepted
    assert first.order.client_order_id == second.order.client_order_id == third.order.client_order_id
    assert len(sim_orders(h, first.order.client_order_id)) == 1
    assert h.engine.stats.duplicates_answered == 2


async def test_unknown_503_is_resolved_by_query_not_a_second_order(harness):
    h = harness
    ins = h.ins()
    await fault(h, rest_unknown_503=1)
    outcome = await h.engine.submit(request(price=ins.format_price(h.best(True) - 300), instrument=ins))
    assert outcome.accepted and outcome.order.status is OrderStatus.SUBMITTED
    assert len(sim_orders(h, outcome.order.client_order_id)) == 1
    assert h.engine.stats.ambiguous_resolved == 1


async def test_5xx_is_retried_and_then_succeeds(harness):
    h = harness
    ins = h.ins()
    await fault(h, rest_5xx=2)
    outcome = await h.engine.submit(request(price=ins.format_price(h.best(True) - 300), instrument=ins))
    assert outcome.accepted and h.engine.stats.retries >= 1  # the query before the retry eats a 5xx too
    assert len(sim_orders(h, outcome.order.client_order_id)) == 1


async def test_persistent_5xx_fails_cleanly_and_opens_the_breaker(harness):
    h = harness
    ins = h.ins()
    await fault(h, rest_5xx=50)
    results = []
    for _ in range(3):
        results.append(await h.engine.submit(request(price=ins.format_price(h.best(True) - 300), instrument=ins)))
    assert not results[0].accepted and results[0].rejection.code is RejectCode.SUBMIT_FAILED
    assert results[0].order.status is OrderStatus.REJECTED
    assert h.engine.breaker.is_open
    assert results[-1].rejection.code is RejectCode.CIRCUIT_OPEN
    await fault(h, rest_5xx=0)


async def test_429_waits_and_retries(harness):
    h = harness
    ins = h.ins()
    h.engine.config.max_rate_limit_wait_s = 60
    slept = []

    async def fake_sleep(s):
        slept.append(s)
        h.rest.budget.blocked_until = 0  # the wait is over

    h.engine._sleep = fake_sleep
    h.rest.budget._sleep = fake_sleep
    await fault(h, rest_429=1)
    outcome = await h.engine.submit(request(price=ins.format_price(h.best(True) - 300), instrument=ins))
    assert outcome.accepted and 60 in slept
    assert len(sim_orders(h, outcome.order.client_order_id)) == 1


async def test_418_ban_fails_without_hammering(harness):
    h = harness
    ins = h.ins()
    slept = []

    async def fake_sleep(s):
        slept.append(s)

    h.engine._sleep = fake_sleep
    await fault(h, rest_418=1)
    outcome = await h.engine.submit(request(price=ins.format_price(h.best(True) - 300), instrument=ins))
    assert not outcome.accepted and outcome.rejection.code is RejectCode.SUBMIT_FAILED
    assert "418" in outcome.rejection.message
    assert h.sim.stats["orders"] == 0  # nothing was placed while banned


@pytest.mark.parametrize("kwargs,code,venue_code", [
    (dict(price="60000.05"), None, None),  # off tick: refused by the converter in gRPC; here by the grid
    (dict(price=None), RejectCode.INVALID_REQUEST, 0),
    (dict(symbol="ETHUSDT", qty="0.001", price="3000.00"), RejectCode.FILTER, -4164),
    (dict(symbol="DOGEUSDT"), RejectCode.UNKNOWN_SYMBOL, 0),
])
async def test_bad_requests_get_precise_rejections(harness, kwargs, code, venue_code):
    h = harness
    ins = h.ins()
    if kwargs.get("price") == "60000.05":
        with pytest.raises(ValueError):
            request(instrument=ins, **kwargs)
        return
    if kwargs.get("symbol") == "ETHUSDT":
        req = request(instrument=h.ins("ETHUSDT"), **kwargs)
    elif kwargs.get("symbol") == "DOGEUSDT":
        from celeris.domain.messages import OrderRequest
        req = OrderRequest("r-doge", "DOGEUSDT", Side.BUY, OrderType.MARKET, 1)
    else:
        req = request(instrument=ins, **kwargs)
    outcome = await h.engine.submit(req)
    assert not outcome.accepted and outcome.rejection.code is code
    assert outcome.rejection.venue_code == venue_code


async def test_percent_price_against_the_mark(harness):
    h = harness
    ins = h.ins()
    h.engine.on_mark("BTCUSDT", ins.price("60000.00"))
    outcome = await h.engine.submit(request(price="30000.00", instrument=ins))
    assert outcome.rejection.code is RejectCode.FILTER and outcome.rejection.venue_code == -4024


async def test_venue_rejection_carries_the_venue_code(harness):
    h = harness
    ins = h.ins()
    ask = h.best(False)
    outcome = await h.engine.submit(request(price=ins.format_price(ask), tif=TimeInForce.GTX, instrument=ins))
    assert not outcome.accepted and outcome.rejection.code is RejectCode.VENUE_REJECTED
    assert outcome.rejection.venue_code == -5022 and outcome.order.status is OrderStatus.REJECTED


async def test_observation_mode_sends_nothing(harness):
    h = harness
    await h.engine.set_mode(Mode.OBSERVATION)
    outcome = await h.engine.submit(request(order_type=OrderType.MARKET, instrument=h.ins()))
    assert not outcome.accepted and outcome.rejection.code is RejectCode.OBSERVATION_MODE
    assert not h.sim.engine.accounts[API_KEY].orders


async def test_halt_cancels_everything_refuses_new_and_persists(harness):
    h = harness
    ins = h.ins()
    for i in range(3):
        await h.engine.submit(request(price=ins.format_price(h.best(True) - 100 - i), instrument=ins))
    canceled = await h.engine.halt("drawdown", "risk")
    assert canceled == 3 and not h.engine.open_orders()
    assert not [o for o in h.sim.engine.accounts[API_KEY].orders.values() if o.is_open]
    refused = await h.engine.submit(request(order_type=OrderType.MARKET, instrument=ins))
    assert refused.rejection.code is RejectCode.HALTED
    assert await h.hot.get_halt() == (True, "drawdown")
    assert await h.engine.halt("again", "risk") == 0  # idempotent
    with pytest.raises(ValueError):
        await h.engine.resume("")
    await h.engine.resume("alice")
    assert (await h.engine.submit(request(order_type=OrderType.MARKET, instrument=ins))).accepted


async def test_halt_with_flatten_closes_positions_reduce_only(harness):
    h = harness
    ins = h.ins()
    await h.engine.submit(request(order_type=OrderType.MARKET, qty="0.030", instrument=ins))
    assert await wait_for(lambda: h.engine.positions["BTCUSDT"].qty_steps == 30)
    await h.engine.halt("emergency", "risk", flatten=True)
    assert await wait_for(lambda: h.engine.positions["BTCUSDT"].qty_steps == 0)
    assert h.sim.engine.accounts[API_KEY].positions["BTCUSDT"].qty_steps == 0


async def test_cancel_race_with_a_fill(harness):
    h = harness
    ins = h.ins()
    bid = h.best(True)
    outcome = await h.engine.submit(request(price=ins.format_price(bid), qty="0.010", instrument=ins))
    order = outcome.order
    # The order fills at the venue before our cancel arrives.
    ahead = h.sim.engine.books["BTCUSDT"].synthetic_bids.get(bid, 0)
    h.sim.engine.fill_resting_from_flow("BTCUSDT", Side.SELL, bid, ahead + 10)
    cancel = await h.engine.cancel("race", "BTCUSDT", order.client_order_id)
    assert not cancel.accepted or order.status is OrderStatus.FILLED
    await h.sim._flush_users()
    assert await wait_for(lambda: order.status is OrderStatus.FILLED)
    assert order.filled_steps == 10 and h.engine.stats.illegal_transitions == 0


async def test_dropped_user_stream_fills_during_the_outage_are_recovered(harness):
    h = harness
    ins = h.ins()
    bid = h.best(True)
    outcome = await h.engine.submit(request(price=ins.format_price(bid), qty="0.020", instrument=ins))
    order = outcome.order
    async with aiohttp.ClientSession() as s:
        await s.post(f"{h.sim.base_url}/_sim/drop", json={"which": "user"})
    ahead = h.sim.engine.books["BTCUSDT"].synthetic_bids.get(bid, 0)
    h.sim.engine.fill_resting_from_flow("BTCUSDT", Side.SELL, bid, ahead + 20)  # while nobody listens
    assert await wait_for(lambda: order.status is OrderStatus.FILLED, timeout=8)
    assert order.filled_steps == 20 and h.engine.positions["BTCUSDT"].qty_steps == 20


async def test_listen_key_expiry_recreates_the_key_and_reconciles(harness):
    h = harness
    ins = h.ins()
    old_key = h.live.listen_key
    bid = h.best(True)
    order = (await h.engine.submit(request(price=ins.format_price(bid), qty="0.010", instrument=ins))).order
    h.sim.listen_keys[old_key] = (API_KEY, 0)  # the venue expires it
    assert await wait_for(lambda: h.live.listen_key != old_key and h.live.listen_key_renewals == 1)
    ahead = h.sim.engine.books["BTCUSDT"].synthetic_bids.get(bid, 0)
    h.sim.engine.fill_resting_from_flow("BTCUSDT", Side.SELL, bid, ahead + 10)
    assert await wait_for(lambda: order.status is OrderStatus.FILLED)


@pytest.mark.parametrize("policy", ["adopt", "cancel"])
async def test_unknown_venue_orders_at_startup_are_adopted_or_cancelled(live_venue, policy):
    from binance.um_futures import UMFutures

    from tests.sim.conftest import API_SECRET

    manual = UMFutures(key=API_KEY, secret=API_SECRET, base_url=live_venue.base_url)
    bid = live_venue.engine.books["BTCUSDT"].best(True)
    ins = live_venue.instruments[0]
    await __import__("asyncio").to_thread(
        manual.new_order, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010",
        price=ins.format_price(bid - 500), newClientOrderId=f"manual-{policy}")
    h = await Harness(live_venue, unknown_orders_policy=policy).start()
    try:
        if policy == "adopt":
            assert f"manual-{policy}" in {o.client_order_id for o in h.engine.open_orders()}
            assert h.engine.stats.adopted == 1
        else:
            assert h.engine.stats.canceled_unknown == 1
            assert not [o for o in sim_orders(h, f"manual-{policy}") if o.is_open]
    finally:
        await h.stop()


async def test_risk_managers_check_is_applied_and_fails_closed(harness):

    from celeris.api.v1 import risk_pb2, risk_pb2_grpc
    from celeris.clients.risk import GrpcRiskCheck
    from celeris.runtime import grpc_server

    class Risk(risk_pb2_grpc.RiskManagerServicer):
        async def CheckOrder(self, request, context):
            if request.quantity.mantissa > 20:
                return risk_pb2.CheckOrderResponse(request_id=request.request_id, approved=False, violations=[
                    risk_pb2.PolicyViolation(policy="max-order-size", kind="hard", metric="position_notional_usdt",
                                             threshold="1000", scope="account")])
            return risk_pb2.CheckOrderResponse(request_id=request.request_id, approved=True)

    bound = grpc_server.create_server([lambda s: risk_pb2_grpc.add_RiskManagerServicer_to_server(Risk(), s)])
    await bound.server.start()
    h = harness
    ins = h.ins()
    h.engine.risk = GrpcRiskCheck(bound.target, h.instruments)
    try:
        small = await h.engine.submit(request(order_type=OrderType.MARKET, qty="0.010", instrument=ins))
        big = await h.engine.submit(request(order_type=OrderType.MARKET, qty="0.500", instrument=ins))
        assert small.accepted and not big.accepted
        assert big.rejection.code is RejectCode.RISK_DENIED and "max-order-size" in big.rejection.message
        await bound.server.stop(None)
        down = await h.engine.submit(request(order_type=OrderType.MARKET, qty="0.010", instrument=ins))
        assert down.rejection.code is RejectCode.RISK_DENIED and "unreachable" in down.rejection.message
    finally:
        await h.engine.risk.close()
        await bound.server.stop(None)


async def test_the_open_order_index_is_exactly_the_open_orders_through_every_way_an_order_ends(harness):
    h = harness
    ins = h.ins()

    def scanned(symbol=""):
        return sorted(o.client_order_id for o in h.engine.orders.values()
                      if o.is_open and (not symbol or o.symbol == symbol))

    def indexed(symbol=""):
        return sorted(o.client_order_id for o in h.engine.open_orders(symbol))

    resting = [await h.engine.submit(request(price=ins.format_price(h.best(True) - 100 - i), instrument=ins))
               for i in range(4)]
    assert indexed() == scanned() and len(indexed()) == 4
    await h.engine.cancel("c-one", "BTCUSDT", resting[0].order.client_order_id)
    filled = await h.engine.submit(request(order_type=OrderType.MARKET, qty="0.010", instrument=ins))
    assert await wait_for(lambda: filled.order.status is OrderStatus.FILLED)
    expired = await h.engine.submit(request(price=ins.format_price(h.best(True) - 500), tif=TimeInForce.IOC,
                                            instrument=ins))
    assert await wait_for(lambda: expired.order.status.is_terminal)
    assert indexed() == scanned() and len(indexed()) == 3
    assert indexed("ETHUSDT") == scanned("ETHUSDT") == []
    await h.engine.cancel_all("c-all", "BTCUSDT")
    assert await wait_for(lambda: not scanned())
    assert indexed() == scanned() == []
