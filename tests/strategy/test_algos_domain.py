"""The pure execution algorithms (celeris.domain.algos, algo_kinds): the parent is a hard cap whatever the
venue does and in whatever order its answers arrive, each algorithm follows its schedule, profile, rate or
display size, the minimums and the leftover, refusals and halts, and slippage against arrival."""

from __future__ import annotations

import pytest
from celeris.domain.algo_kinds import make_algo, volume_profile
from celeris.domain.algo_orders import (
    CancelChild,
    ChildStyle,
    IcebergParams,
    ParentOrder,
    PlaceChild,
    PovParams,
    TwapParams,
    VwapParams,
)
from celeris.domain.algos import (
    TRANSITIONS,
    AlgoEvent,
    AlgoState,
    InvalidAlgoTransition,
    StopReason,
    fit_child,
    min_steps_at,
    slippage_ppm,
)
from celeris.domain.clock import NS_PER_DAY, NS_PER_S
from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.values import Side
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.strategy.algo_model import VenueModel, btcusdt

INS = btcusdt()
BID, ASK = 618_000, 618_001  # 61800.00 / 61800.10 in ticks of 0.10
S = NS_PER_S


def parent(params, qty=100, side=Side.BUY, start=0, end=10 * S, limit=None, **kw) -> ParentOrder:
    return ParentOrder("BTCUSDT", side, qty, start, end, params, limit, **kw)


@st.composite
def parents(draw):
    kind = draw(st.sampled_from(["twap", "vwap", "pov", "iceberg"]))
    side = draw(st.sampled_from([Side.BUY, Side.SELL]))
    qty = draw(st.integers(1, 300))
    style = draw(st.sampled_from([ChildStyle.CROSS, ChildStyle.PASSIVE, ChildStyle.MARKET]))
    if kind == "twap":
        params = TwapParams(draw(st.integers(1, 12)), style)
    elif kind == "vwap":
        params = VwapParams(tuple(draw(st.lists(st.integers(0, 50), min_size=1, max_size=8).filter(any))), style)
    elif kind == "pov":
        low = draw(st.integers(0, 10))
        params = PovParams(draw(st.integers(1, 10_000)), draw(st.one_of(st.just(0), st.integers(max(low, 1), 40))),
                           low, style)
    else:
        params = IcebergParams(draw(st.integers(1, 40)))
    end = 0 if kind in ("pov", "iceberg") and draw(st.booleans()) else 10 * S
    limit = None if style is ChildStyle.MARKET and kind != "iceberg" else draw(
        st.one_of(st.none(), st.integers(BID - 5, ASK + 5)))
    if kind == "iceberg" and limit is None:
        limit = BID
    return ParentOrder("BTCUSDT", side, qty, 0, end, params, limit, max_refusals=draw(st.integers(1, 4)))


OPS = st.lists(st.tuples(st.sampled_from(["ack", "fill", "close", "refuse", "cancel", "cancel_fail", "deliver",
                                          "deliver", "deliver", "time", "trade", "top", "halt_on"]),
                         st.integers(0, 1 << 16), st.integers(1, 60)), min_size=20, max_size=120)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parent=parents(), ops=OPS, min_qty=st.integers(1, 6))
def test_children_never_exceed_the_parent_whatever_the_venue_does_and_in_any_order(parent, ops, min_qty):
    """Acknowledgements late, partial fills, closes before the fills they announce, refusals, failed cancels:
    after every step the venue can never fill more than the parent, and the algorithm never counts less
    than the venue could still fill."""
    algo = make_algo("p", parent, btcusdt(min_qty_steps=min_qty, market_min_qty_steps=min_qty))
    venue = VenueModel(algo)
    venue.top(BID, ASK)
    for op, pick, amount in ops:
        open_ids = venue.open_orders()
        cid = open_ids[pick % len(open_ids)] if open_ids else None
        if op == "ack" and cid:
            venue.ack(cid)
        elif op == "fill" and cid:
            venue.fill(cid, amount, BID + pick % 3)
        elif op == "close" and cid:
            venue.close(cid)
        elif op == "refuse" and cid:
            venue.refuse(cid)
        elif op in ("cancel", "cancel_fail") and venue.cancels:
            venue.deliver_cancel(pick, op == "cancel_fail")
        elif op == "deliver" and venue.inbox:
            venue.deliver(pick)
        elif op == "time":
            venue.advance(amount * S // 10)
        elif op == "trade":
            venue.trade(BID, amount)
        elif op == "top":
            venue.top(BID - pick % 4, ASK + pick % 4)
        elif op == "halt_on":
            venue.halted = True
        assert venue.exposure() <= parent.qty_steps
        assert algo.committed_steps <= parent.qty_steps
        assert algo.committed_steps >= venue.exposure(), "the algorithm counts less than the venue may fill"
        assert all(p.qty_steps >= min_qty for p in venue.placed), "no child below the minimum"
    venue.drain()
    assert algo.filled_steps == venue.venue_filled()
    assert algo.filled_steps <= parent.qty_steps


@settings(max_examples=200, deadline=None)
@given(display=st.integers(1, 30), qty=st.integers(1, 200), ops=OPS)
def test_an_iceberg_never_shows_more_than_its_display(display, qty, ops):
    algo = make_algo("ice", parent(IcebergParams(display), qty=qty, end=0, limit=BID), INS)
    venue = VenueModel(algo)
    venue.top(BID, ASK)
    for op, pick, amount in ops:
        open_ids = venue.open_orders()
        cid = open_ids[pick % len(open_ids)] if open_ids else None
        if op == "fill" and cid:
            venue.fill(cid, amount, BID)
        elif op == "close" and cid:
            venue.close(cid)
        elif op == "deliver" and venue.inbox:
            venue.deliver(pick)
        elif op == "ack" and cid:
            venue.ack(cid)
        assert venue.working_shown() <= display
        assert all(p.qty_steps <= display and p.price_ticks == BID and p.time_in_force is TimeInForce.GTC
                   for p in venue.placed)
    venue.drain()
    venue.advance(algo.parent.retry_backoff_ns)  # a child closed short on its own backs off first
    venue.fill_everything_now(BID)
    assert algo.filled_steps == qty  # replenished until the hidden rest is gone
    assert algo.state is AlgoState.FINISHED and algo.stop_reason is StopReason.FILLED


def test_an_iceberg_replenishes_only_when_its_child_ends():
    algo = make_algo("ice", parent(IcebergParams(10), qty=25, end=0, limit=BID), INS)
    venue = VenueModel(algo)
    venue.top(BID, ASK)
    assert [p.qty_steps for p in venue.placed] == [10]
    venue.fill("ice-1", 4, BID)
    venue.drain()
    assert len(venue.placed) == 1  # partly filled: still showing its rest, nothing added
    venue.fill("ice-1", 6, BID)
    venue.drain()
    # 15 left: 10 would leave 5 behind, fine; the last shows the 5.
    assert [p.qty_steps for p in venue.placed] == [10, 10]
    venue.fill_everything_now(BID)
    assert [p.qty_steps for p in venue.placed] == [10, 10, 5]


def test_twap_slices_equal_parts_on_its_schedule():
    algo = make_algo("tw", parent(TwapParams(10), qty=105), INS)
    venue = VenueModel(algo)
    venue.top(BID, ASK)
    seen = []
    for second in range(11):
        venue.now = second * S
        venue.take(algo.on_time(venue.now))
        venue.fill_everything_now(ASK)
        seen.append(algo.filled_steps)
    assert seen == [105 * (i + 1) // 10 for i in range(10)] + [105]
    assert all(p.price_ticks == ASK and p.time_in_force is TimeInForce.IOC for p in venue.placed)
    assert algo.state is AlgoState.FINISHED and algo.stop_reason is StopReason.FILLED


def test_twap_carries_an_unfilled_slice_into_the_next_and_ends_at_its_horizon():
    algo = make_algo("tw", parent(TwapParams(4), qty=40), INS)
    venue = VenueModel(algo)
    venue.top(BID, ASK)
    venue.close("tw-1")  # the IOC found nothing
    venue.drain()
    assert len(venue.placed) == 1  # nothing more is due before the next slice
    venue.advance(int(2.5 * S))
    venue.fill_everything_now(ASK)
    assert algo.filled_steps == 20  # slice 2's target: the missed slice went out with it
    venue.advance(int(7.5 * S))  # at the end, no event came in between: slices 3 and 4 never went
    assert algo.state is AlgoState.FINISHED and algo.stop_reason is StopReason.END_OF_HORIZON
    assert algo.progress().leftover_steps == 20


def test_a_passive_child_is_cancelled_when_the_next_slice_is_due_and_its_rest_replaced():
    algo = make_algo("tw", parent(TwapParams(2, ChildStyle.PASSIVE), qty=20), INS)
    venue = VenueModel(algo)
    venue.top(BID, ASK)
    first = venue.placed[0]
    assert (first.price_ticks, first.time_in_force, first.qty_steps) == (BID, TimeInForce.GTX, 10)
    venue.fill("tw-1", 3, BID)
    venue.drain()
    venue.top(BID + 1, ASK + 1)
    venue.advance(5 * S)
    assert venue.canceled == ["tw-1"] and len(venue.placed) == 1  # nothing new before the close is known
    venue.drain()
    assert venue.placed[1].qty_steps == 17 and venue.placed[1].price_ticks == BID + 1


@settings(max_examples=150, deadline=None)
@given(profile=st.lists(st.integers(0, 1000), min_size=1, max_size=12).filter(any), qty=st.integers(1, 500))
def test_vwap_follows_the_profile(profile, qty):
    algo = make_algo("vw", parent(VwapParams(tuple(profile)), qty=qty, end=len(profile) * S), INS)
    venue = VenueModel(algo)
    venue.top(BID, ASK)
    total, running = sum(profile), 0
    for bucket, volume in enumerate(profile):
        venue.now = bucket * S
        venue.take(algo.on_time(venue.now))
        venue.fill_everything_now(ASK)
        running += volume
        assert algo.filled_steps == qty * running // total, f"bucket {bucket}"
    assert algo.filled_steps == qty


@settings(max_examples=200, deadline=None)
@given(rate=st.integers(1, 10_000), max_child=st.integers(0, 30), min_child=st.integers(0, 8),
       trades=st.lists(st.integers(1, 80), max_size=60), qty=st.integers(1, 400), min_qty=st.integers(1, 4))
def test_pov_stays_within_its_rate_of_the_market_volume_less_or_more_one_child(rate, max_child, min_child,
                                                                              trades, qty, min_qty):
    assume(max_child == 0 or max_child >= max(min_child, min_qty))  # else no child could ever be sent
    ins = btcusdt(min_qty_steps=min_qty)
    algo = make_algo("pov", parent(PovParams(rate, max_child, min_child), qty=qty, end=0), ins)
    venue = VenueModel(algo)
    venue.top(BID, ASK)
    volume = 0
    smallest = max(min_qty, min_child)
    for q in trades:
        venue.trade(BID, q)
        volume += q
        venue.fill_everything_now(ASK)
        target = min(qty, volume * rate // 10_000)
        assert algo.filled_steps < target + smallest, "over the rate by a minimum child or more"
        if algo.state is AlgoState.RUNNING:
            assert algo.filled_steps > target - smallest, "left behind the rate by a child or more"
        assert all(p.qty_steps <= (max_child or qty) for p in venue.placed)


def test_pov_counts_only_the_volume_traded_since_its_start():
    algo = make_algo("pov", parent(PovParams(1000), start=5 * S, end=0), INS)
    venue = VenueModel(algo)
    venue.top(BID, ASK)
    venue.trade(BID, 500)
    assert venue.placed == []
    venue.advance(5 * S)
    venue.trade(BID, 100)
    assert [p.qty_steps for p in venue.placed] == [10]


@settings(max_examples=300, deadline=None)
@given(want=st.integers(0, 100), room=st.integers(0, 100), minimum=st.integers(1, 10), cap=st.integers(1, 100))
def test_a_child_is_never_below_the_minimum_nor_leaves_a_tail_below_it_when_that_can_be_helped(want, room,
                                                                                              minimum, cap):
    size = fit_child(want, room, minimum, cap)
    assert size == 0 or minimum <= size <= min(room, cap)
    if size:
        rest = room - size
        if 0 < rest < minimum:  # a tail that cannot go alone: only when the cap forbade taking it
            assert room > cap and size - (minimum - rest) < minimum
        assert size <= max(want, 0) + minimum - 1


def test_the_min_notional_sets_the_smallest_child_and_reduce_only_is_exempt():
    ins = btcusdt(min_qty_steps=1)
    assert ins.min_notional > 0
    steps = min_steps_at(ins, OrderType.LIMIT, BID, False)
    assert ins.notional(BID, steps) >= ins.min_notional > ins.notional(BID, steps - 1)
    assert min_steps_at(ins, OrderType.LIMIT, BID, True) == 1


def test_no_child_is_larger_than_the_instrument_allows():
    ins = btcusdt(max_qty_steps=30, market_max_qty_steps=20)
    for style, largest in ((ChildStyle.CROSS, 30), (ChildStyle.MARKET, 20)):
        algo = make_algo("big", parent(TwapParams(1, style), qty=100), ins)
        venue = VenueModel(algo)
        venue.top(BID, ASK)
        venue.fill_everything_now(ASK)
        assert algo.filled_steps == 100 and max(p.qty_steps for p in venue.placed) == largest


def test_a_remainder_too_small_to_send_is_the_leftover():
    # 3 steps at ~61,800 is below a 200 USDT minimum notional: the last slice cannot go.
    ins = btcusdt(min_qty_steps=1, min_notional=200 * 10**8)
    algo = make_algo("tw", parent(TwapParams(2), qty=7), ins)
    venue = VenueModel(algo)
    venue.top(BID, ASK)
    assert venue.placed == []  # 3 steps is 185 USDT: carried, not sent
    venue.advance(5 * S)
    venue.fill_everything_now(ASK)
    assert [p.qty_steps for p in venue.placed] == [7]  # the carried slice went with the next
    assert algo.filled_steps == 7


def test_a_halt_refusal_stops_the_parent_at_once_and_nothing_is_retried():
    algo = make_algo("tw", parent(TwapParams(10), qty=100), INS)
    venue = VenueModel(algo)
    venue.halted = True
    venue.top(BID, ASK)
    venue.refuse("tw-1")
    venue.drain()
    assert algo.state is AlgoState.FINISHED and algo.stop_reason is StopReason.HALTED
    for _ in range(20):
        venue.advance(S)
        venue.top(BID, ASK)
    assert len(venue.placed) == 1


def test_other_refusals_back_off_and_stop_the_parent_after_max_refusals():
    algo = make_algo("tw", parent(TwapParams(100), qty=1000, max_refusals=3, retry_backoff_ns=S), INS)
    venue = VenueModel(algo)
    venue.top(BID, ASK)
    for i in range(1, 4):
        venue.refuse(f"tw-{i}")
        venue.drain()
        venue.top(BID, ASK)
        assert len(venue.placed) == i  # backing off: not again on the next book update
        venue.advance(S)
    assert algo.state is AlgoState.FINISHED and algo.stop_reason is StopReason.REFUSED
    assert len(venue.placed) == 3


def test_a_cancelled_parent_cancels_its_child_and_finishes_when_the_close_is_known():
    algo = make_algo("tw", parent(TwapParams(2, ChildStyle.PASSIVE), qty=20), INS)
    venue = VenueModel(algo)
    venue.top(BID, ASK)
    venue.take(algo.stop(StopReason.CANCELED, venue.now))
    assert venue.canceled == ["tw-1"] and algo.state is AlgoState.STOPPING
    venue.fill("tw-1", 4, BID)  # fills racing the cancel still count
    venue.drain()
    assert algo.state is AlgoState.FINISHED and algo.stop_reason is StopReason.CANCELED
    assert algo.filled_steps == 4 and algo.progress().leftover_steps == 16


def test_a_failed_cancel_is_asked_again_after_the_back_off_not_on_every_event():
    algo = make_algo("tw", parent(TwapParams(2, ChildStyle.PASSIVE), qty=20, retry_backoff_ns=S), INS)
    venue = VenueModel(algo)
    venue.top(BID, ASK)
    venue.take(algo.stop(StopReason.CANCELED, 0))
    venue.deliver_cancel(0, fail=True)
    venue.deliver(0)
    for _ in range(5):
        venue.top(BID, ASK)
    assert venue.canceled == ["tw-1"]
    venue.advance(S)
    assert venue.canceled == ["tw-1", "tw-1"]


@settings(max_examples=300, deadline=None)
@given(side=st.sampled_from([Side.BUY, Side.SELL]), bid=st.integers(1, 10**7), spread=st.integers(1, 100),
       fills=st.lists(st.tuples(st.integers(1, 10**7), st.integers(1, 1000)), min_size=1, max_size=10))
def test_slippage_is_positive_when_it_costs(side, bid, spread, fills):
    arrival_x2 = 2 * bid + spread
    qty = sum(q for _, q in fills)
    quote = sum(p * q for p, q in fills)
    ppm = slippage_ppm(side, arrival_x2, qty, quote)
    worse = (2 * quote - arrival_x2 * qty) * side.sign  # > 0: paid more on a buy, got less on a sell
    exact_num, den = worse * 10**6, arrival_x2 * qty
    assert 2 * abs(ppm * den - exact_num) <= den  # the nearest ppm
    assert (ppm >= 0) if worse > 0 else (ppm <= 0) if worse < 0 else ppm == 0


def test_slippage_against_arrival_for_a_buy_and_a_sell():
    for side, fill_price, expected in ((Side.BUY, 618_062, 100), (Side.SELL, 617_939, 100),
                                       (Side.BUY, 617_939, -100), (Side.SELL, 618_062, -100)):
        algo = make_algo("s", parent(TwapParams(1), side=side, qty=10), INS)
        venue = VenueModel(algo)
        venue.top(618_000, 618_001)  # arrival mid 61800.05
        placed = venue.placed[0]
        venue.fill(placed.child_id, 10, fill_price)
        venue.drain()
        # 6.2 ticks of 618000.5 is 100.3 ppm: 1 bp, a cost for the buyer who paid above and the seller
        # who sold below arrival, a gain the other way round.
        assert abs(algo.progress().slippage_ppm - expected) <= 1, (side, algo.progress().slippage_ppm)
        assert (algo.progress().slippage_ppm > 0) == (expected > 0)


def test_the_arrival_price_is_the_mid_of_the_first_top_at_or_after_the_start():
    algo = make_algo("a", parent(TwapParams(2), start=2 * S, end=4 * S), INS)
    venue = VenueModel(algo)
    venue.top(BID, ASK)
    assert algo.state is AlgoState.PENDING and algo.arrival_x2_ticks is None
    venue.advance(2 * S)
    assert algo.arrival_x2_ticks == BID + ASK and venue.placed


def test_a_parent_that_never_had_a_price_ends_at_its_horizon_and_says_when_it_wants_waking():
    algo = make_algo("n", parent(TwapParams(2), start=2 * S, end=4 * S), INS)
    assert algo.next_due_ns() == 2 * S
    assert algo.on_time(3 * S) == [] and algo.state is AlgoState.PENDING  # no top: no arrival price
    assert algo.on_time(4 * S) == []
    assert algo.state is AlgoState.FINISHED and algo.stop_reason is StopReason.END_OF_HORIZON
    pov = make_algo("p", parent(PovParams(100), start=5 * S, end=0), INS)
    assert pov.next_due_ns() == 5 * S


def test_a_crossing_child_waits_while_the_market_is_beyond_the_limit():
    algo = make_algo("l", parent(TwapParams(1), limit=ASK - 1), INS)
    venue = VenueModel(algo)
    venue.top(BID, ASK)
    assert venue.placed == []
    venue.top(BID - 1, ASK - 1)
    assert venue.placed[0].price_ticks == ASK - 1


def test_the_parent_lifecycle_is_a_table_and_illegal_moves_raise():
    algo = make_algo("t", parent(TwapParams(1)), INS)
    assert (AlgoState.FINISHED, AlgoEvent.START) not in TRANSITIONS
    algo.state = AlgoState.FINISHED
    with pytest.raises(InvalidAlgoTransition):
        algo._move(AlgoEvent.START)
    algo.state = AlgoState.STOPPING
    with pytest.raises(InvalidAlgoTransition):
        algo._move(AlgoEvent.START)


@pytest.mark.parametrize("bad", [
    {"qty_steps": 0}, {"end_ns": 0}, {"params": TwapParams(0)}, {"params": VwapParams((0, 0))},
    {"params": PovParams(0), "end_ns": 0}, {"params": PovParams(10_001)}, {"params": PovParams(10, 2, 3)},
    {"params": IcebergParams(5), "end_ns": 0},
    {"params": TwapParams(2, ChildStyle.MARKET), "limit_price_ticks": BID},
])
def test_a_malformed_parent_is_refused(bad):
    fields = {"symbol": "BTCUSDT", "side": Side.BUY, "qty_steps": 10, "start_ns": 0, "end_ns": 10,
              "params": TwapParams(2)}
    fields.update(bad)
    with pytest.raises(ValueError):
        ParentOrder(**fields)


def test_the_volume_profile_sums_trade_quantities_per_bucket():
    trades = [(0, 5), (999, 1), (1000, 2), (2500, 7), (3999, 1), (4000, 100), (-1, 100)]
    assert volume_profile(trades, 0, 4000, 4) == (6, 2, 7, 1)
    day = 3 * NS_PER_DAY
    assert volume_profile([(day + 10, 3), (NS_PER_DAY + 10, 4)], 0, 20, 2, time_of_day=True) == (0, 7)
    with pytest.raises(ValueError):
        volume_profile(trades, 10, 10, 1)


def test_actions_carry_the_child_terms():
    algo = make_algo("m", parent(TwapParams(1, ChildStyle.MARKET), side=Side.SELL), INS)
    actions = algo.on_top(0, BID, 1, ASK, 1)
    assert actions == [PlaceChild("m-1", Side.SELL, 100, None, OrderType.MARKET, TimeInForce.GTC, False)]
    assert algo.stop(StopReason.CANCELED, 0) == [CancelChild("m-1")]
