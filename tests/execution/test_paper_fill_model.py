"""The paper venue's fill model as hftbacktest defines it, attacked: a trade fills at most its quantity,
the queue ahead moves only as the named queue model says, takers use liquidity up, names are checked."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from celeris.domain.book import BookState
from celeris.domain.clock import TestClock
from celeris.domain.instruments import OrderType
from celeris.domain.messages import BookUpdate, Execution, TradeUpdate
from celeris.domain.orders import Order
from celeris.domain.values import Side
from celeris.execution import queue_models
from celeris.execution.paper import PaperVenue
from celeris.marketdata.verify import bundled_instruments

INS = bundled_instruments()["BTCUSDT"]
BID, ASK = 600_000, 600_001
_seq = iter(range(10**9))


def venue(queue_model: str = "risk_averse", seed: int = 0, bid_qty: int = 2_000, ask_levels=None) -> PaperVenue:
    paper = PaperVenue({"BTCUSDT": INS}, TestClock(start_ns=0), latency_ms=0, queue_model=queue_model, seed=seed)
    asks = ask_levels or [(ASK, 500), (ASK + 1, 3_000)]
    paper.on_book(BookUpdate("BTCUSDT", 1, BookState.LIVE, True, [(BID, bid_qty), (BID - 1, 1_000)], asks, 1, 0, 0))
    return paper


def book(paper: PaperVenue, bids=(), asks=()) -> None:
    paper.on_book(BookUpdate("BTCUSDT", next(_seq), BookState.LIVE, False, list(bids), list(asks), 2, 0, 0))


def sell_trade(price: int, qty: int) -> TradeUpdate:
    """A seller takes liquidity: it hits the bids (buyer is maker)."""
    return TradeUpdate("BTCUSDT", next(_seq), next(_seq), price, qty, True, 0, 0)


def buy(paper: PaperVenue, qty: int, price: int | None = BID, cid: str | None = None) -> str:
    cid = cid or f"c-{next(_seq)}"
    kind = OrderType.LIMIT if price is not None else OrderType.MARKET
    paper.place_now(Order(cid, "BTCUSDT", Side.BUY, kind, qty, price))
    return cid


def filled(paper: PaperVenue, cid: str | None = None) -> int:
    return sum(f.last_qty_steps for f in paper.fills if cid is None or f.client_order_id == cid)


# -- trades fill at most their quantity ------------------------------------------------------------
def test_a_one_step_trade_through_a_3000_step_bid_fills_exactly_one_step():
    paper = venue()
    cid = buy(paper, 3_000)
    paper.on_trade(sell_trade(BID - 1, 1))
    assert filled(paper, cid) == 1 and paper.orders[cid].status == "PARTIALLY_FILLED"


@settings(max_examples=150, deadline=None)
@given(size=st.integers(1, 5_000), trade_qty=st.integers(1, 5_000), ticks_through=st.integers(1, 50))
def test_a_trade_through_fills_min_of_trade_and_order(size, trade_qty, ticks_through):
    paper = venue()
    cid = buy(paper, size)
    paper.on_trade(sell_trade(BID - ticks_through, trade_qty))
    assert filled(paper, cid) == min(size, trade_qty)
    assert all(f.last_price_ticks == BID and f.is_maker for f in paper.fills)  # at our price, as maker


@settings(max_examples=150, deadline=None)
@given(level=st.integers(0, 4_000), size=st.integers(1, 3_000), trades=st.lists(st.integers(1, 3_000), max_size=6))
def test_trades_at_our_price_eat_the_queue_ahead_first(level, size, trades):
    paper = venue(bid_qty=level) if level else venue(bid_qty=1)
    ahead = level if level else 1
    cid = buy(paper, size)
    assert paper.orders[cid].queue_ahead == ahead
    expected = 0
    for q in trades:
        eaten = min(ahead, q)
        ahead -= eaten
        expected += min(q - eaten, size - expected)
        paper.on_trade(sell_trade(BID, q))
        assert paper.orders[cid].queue_ahead == ahead
        assert filled(paper, cid) == expected


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(1, 2_000), min_size=2, max_size=5), trade_qty=st.integers(1, 4_000))
def test_one_trade_fills_all_our_orders_together_at_most_its_quantity(sizes, trade_qty):
    paper = venue()
    cids = [buy(paper, s, price=BID - i % 2) for i, s in enumerate(sizes)]  # some at 60000.0, some 59999.9
    paper.on_trade(sell_trade(BID - 5, trade_qty))
    assert filled(paper) == min(trade_qty, sum(sizes))
    # best price first, then oldest: an order fills only if every better-ranked order is full
    ranked = sorted(range(len(sizes)), key=lambda i: (-(BID - i % 2), i))
    done = [filled(paper, cids[i]) == sizes[i] for i in ranked]
    touched = [filled(paper, cids[i]) > 0 for i in ranked]
    for k in range(1, len(ranked)):
        assert not touched[k] or all(done[:k])


def test_the_book_moving_through_our_bid_fills_at_most_the_crossing_levels_and_rests_the_rest():
    paper = venue()
    cid = buy(paper, 3_000)
    book(paper, asks=[(ASK, 0), (BID, 10), (BID - 1, 5)])  # 15 steps at or below our bid, 3,000 above it
    resting = paper.orders[cid]
    assert filled(paper, cid) == 15 and resting.status == "PARTIALLY_FILLED"
    assert all(f.last_price_ticks == BID and f.is_maker for f in paper.fills)  # at our price, as maker
    assert paper.books["BTCUSDT"].asks_through(BID) == []  # used up, as a taker's order would
    assert resting.queue_ahead == 0  # the rest rests at the front: the next trade at our price is ours
    paper.on_trade(sell_trade(BID, 7))
    assert filled(paper, cid) == 22


def test_crossing_liquidity_goes_to_our_best_priced_then_oldest_order_and_is_used_up():
    paper = venue()
    low, high, old, young = sell(paper, 10, ASK + 3), sell(paper, 10, ASK + 5), sell(paper, 5, ASK + 4), \
        sell(paper, 5, ASK + 4)
    book(paper, bids=[(ASK + 6, 12), (ASK + 4, 4)])  # the bids jump through all of them: 16 steps shown
    assert [filled(paper, c) for c in (low, old, young, high)] == [10, 5, 1, 0]
    assert paper.books["BTCUSDT"].bids_through(ASK + 3) == []
    # What we took stays taken while the feed shows it (our orders are not in the real book): a level that
    # shrinks brings nothing, one that grows brings what it shows beyond what we took.
    book(paper, bids=[(ASK + 6, 9)])
    assert filled(paper, young) == 1 and paper.books["BTCUSDT"].qty_at(True, ASK + 6) == 0
    book(paper, bids=[(ASK + 6, 12)])  # 9 of it is still the 9 we took: 3 are new
    assert filled(paper, young) == 4 and filled(paper, high) == 0
    book(paper, bids=[(ASK + 6, 0)])
    book(paper, bids=[(ASK + 6, 2)])  # the level went away and came back: all of it is new
    assert filled(paper, young) == 5 and filled(paper, high) == 1


def test_a_snapshot_keeps_what_our_crossed_order_took_off_the_levels_it_still_shows():
    paper = venue()
    cid = sell(paper, 100, ASK + 3)
    book(paper, bids=[(ASK + 5, 30)])
    assert filled(paper, cid) == 30
    paper.on_book(BookUpdate("BTCUSDT", next(_seq), BookState.LIVE, True, [(ASK + 5, 40), (BID, 2_000)],
                             [(ASK + 9, 500)], 3, 0, 0))  # a resync: the 30 we took are still in the feed
    assert filled(paper, cid) == 40 and paper.books["BTCUSDT"].qty_at(True, ASK + 5) == 0
    paper.on_book(BookUpdate("BTCUSDT", next(_seq), BookState.LIVE, True, [(BID, 2_000)], [(ASK + 9, 500)], 4, 0,
                             0))  # a resync without the level: those we took from have gone
    book(paper, bids=[(ASK + 5, 10)])  # all new
    assert filled(paper, cid) == 50


@settings(max_examples=150, deadline=None)
@given(orders=st.lists(st.tuples(st.integers(0, 6), st.integers(1, 3_000)), min_size=1, max_size=6),
       levels=st.lists(st.tuples(st.integers(0, 8), st.integers(1, 2_000)), min_size=1, max_size=6))
def test_a_crossing_book_never_fills_more_than_it_shows_through_our_prices(orders, levels):
    paper = venue()
    cids = {sell(paper, qty, ASK + ticks): ASK + ticks for ticks, qty in orders}
    crossing = dict((ASK + ticks, qty) for ticks, qty in levels)
    book(paper, bids=list(crossing.items()))
    lowest = min(cids.values())
    assert filled(paper) <= sum(q for p, q in crossing.items() if p >= lowest)
    for cid, price in cids.items():  # no order took more than what showed at or above its own price
        assert filled(paper, cid) <= sum(q for p, q in crossing.items() if p >= price)
    top = max(crossing)
    if top >= lowest:  # the best of our crossed orders got everything it could
        best = min((c for c, p in cids.items() if p == lowest), key=lambda c: paper.orders[c].venue_order_id)
        assert filled(paper, best) == min(paper.orders[best].qty, sum(q for p, q in crossing.items() if p >= lowest))


# -- queue models on level changes -----------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(start=st.integers(1, 4_000),
       moves=st.lists(st.tuples(st.booleans(), st.integers(0, 5_000)), max_size=12))
def test_risk_averse_queue_moves_only_on_trades_and_clips_to_the_level(start, moves):
    """Reference: trades at our price take off their quantity; a level change sets min(ahead, level)."""
    paper = venue(bid_qty=start)
    cid = buy(paper, 10_000)
    ahead = start
    for is_trade, qty in moves:
        if is_trade:
            if qty == 0:
                continue
            paper.on_trade(sell_trade(BID, qty))
            ahead = max(0, ahead - qty)
        else:
            level_before = paper.books["BTCUSDT"].qty_at(True, BID)
            book(paper, bids=[(BID, qty)])
            if qty != level_before:
                ahead = min(ahead, qty)
        assert paper.orders[cid].queue_ahead == ahead


def test_risk_averse_queue_never_grows_when_the_level_grows():
    paper = venue(bid_qty=1_000)
    cid = buy(paper, 10)
    book(paper, bids=[(BID, 400)])  # cancels: clipped to what is left
    assert paper.orders[cid].queue_ahead == 400
    book(paper, bids=[(BID, 5_000)])  # new orders join behind us
    assert paper.orders[cid].queue_ahead == 400


@pytest.mark.parametrize("name", ["power", "power:3", "log"])
@settings(max_examples=100, deadline=None)
@given(front=st.integers(0, 5_000), back=st.integers(0, 5_000), cut=st.integers(0, 10_000),
       traded=st.integers(0, 200), seed=st.integers(0, 2**32))
def test_probabilistic_queue_stays_between_the_bounds(name, front, back, cut, traded, seed):
    model = queue_models.build(name, rng=random.Random(seed), lot=0.001)
    prev = front + back
    new = max(0, prev - cut)
    after = model.depth(front, traded, prev, new)
    assert isinstance(after, int) and 0 <= after <= min(front, new)
    # never further forward than the whole unexplained decrease taken from the front
    assert after >= min(new, max(0, front - max(0, prev - new - traded)))


def test_probabilistic_queue_expectation_is_hftbacktests_formula():
    """Stochastic rounding keeps hftbacktest's estimate in expectation: the mean of many draws is within
    a step of front - (1 - p) * chg - max(p * chg - back, 0)."""
    front, back, chg = 300, 700, 250
    for name, f in (("power", lambda x: x ** 2), ("log", lambda x: __import__("math").log1p(x))):
        model = queue_models.build(name, rng=random.Random(7), lot=0.001)
        draws = [model.depth(front, 0, front + back, front + back - chg) for _ in range(4_000)]
        p = f(back * 0.001) / (f(back * 0.001) + f(front * 0.001))
        expected = front - (1 - p) * chg - max(p * chg - back, 0)
        assert abs(sum(draws) / len(draws) - expected) < 0.5


def test_power_queue_moves_forward_on_cancels_where_risk_averse_does_not():
    averse, power = venue("risk_averse", bid_qty=2_000), venue("power", bid_qty=2_000)
    a, p = buy(averse, 10), buy(power, 10)
    for paper in (averse, power):
        paper.on_book(BookUpdate("BTCUSDT", 5, BookState.LIVE, False, [(BID, 3_000)], [], 5, 0, 0))  # 1,000 behind
        paper.on_book(BookUpdate("BTCUSDT", 6, BookState.LIVE, False, [(BID, 2_500)], [], 6, 0, 0))  # 500 cancelled
    assert averse.orders[a].queue_ahead == 2_000
    assert power.orders[p].queue_ahead < 2_000  # some of the cancels were ahead of us


def test_probabilistic_models_subtract_the_traded_part_of_a_decrease():
    paper = venue("power", bid_qty=2_000)
    cid = buy(paper, 10)
    paper.on_trade(sell_trade(BID, 500))  # ahead 1,500; the level will show the same 500 gone
    book(paper, bids=[(BID, 1_500)])
    assert paper.orders[cid].queue_ahead == 1_500  # not counted twice


@pytest.mark.parametrize("name", ["", "fifo", "risk-averse", "power:x", "power:-1", "log:2", "RISK_AVERSE"])
def test_an_unknown_queue_model_is_refused_in_one_line(name):
    with pytest.raises(ValueError) as err:
        PaperVenue({"BTCUSDT": INS}, TestClock(), latency_ms=0, queue_model=name)
    message = str(err.value)
    assert "\n" not in message and all(n in message for n in queue_models.NAMES)


@pytest.mark.parametrize("name", ["power:500", "power:10.5", "power:1e9", "power:inf", "power:nan", "power:0"])
def test_a_power_the_formula_cannot_compute_is_refused_in_one_line(name):
    with pytest.raises(ValueError) as err:
        PaperVenue({"BTCUSDT": INS}, TestClock(), latency_ms=0, queue_model=name)
    assert "\n" not in str(err.value) and "power" in str(err.value)


@settings(max_examples=100, deadline=None)
@given(n=st.floats(0.01, queue_models.MAX_POWER_N), front=st.integers(0, 10**60), back=st.integers(0, 10**60),
       cut=st.integers(1, 10**60))
def test_the_largest_accepted_power_computes_on_any_level_without_overflow(n, front, back, cut):
    model = queue_models.build(f"power:{n!r}", rng=random.Random(0), lot=0.001)
    ahead = model.depth(front, 0, front + back, max(0, front + back - cut))
    assert 0 <= ahead <= front


def test_a_huge_level_under_the_largest_power_keeps_the_probability_of_the_formula():
    big = queue_models.build(f"power:{queue_models.MAX_POWER_N}", rng=random.Random(0), lot=1.0)
    # back 10x front: p = f(back) / (f(back) + f(front)) = 1 / (1 + 0.1**10): 1e-10 of the cut is ahead of us
    from_front = 10**40 - big.depth(10**40, 0, 11 * 10**40, 11 * 10**40 - 10**39)
    assert abs(from_front - 10**29) < 10**25
    # front 10x back: all but 1e-10 of the cut is ahead of us
    from_front = 10**41 - big.depth(10**41, 0, 11 * 10**40, 11 * 10**40 - 10**39)
    assert abs(from_front - (10**39 - 10**29)) < 10**25


# -- liquidity depletion ---------------------------------------------------------------------------
def avg_price(paper: PaperVenue, cid: str) -> float:
    fills = [f for f in paper.fills if f.client_order_id == cid]
    return sum(f.last_price_ticks * f.last_qty_steps for f in fills) / sum(f.last_qty_steps for f in fills)


def test_two_market_orders_in_a_row_get_worse_prices():
    paper = venue()
    first = buy(paper, 400, price=None)
    second = buy(paper, 400, price=None)
    assert [(f.last_price_ticks, f.last_qty_steps) for f in paper.fills if f.client_order_id == first] == [(ASK, 400)]
    assert [(f.last_price_ticks, f.last_qty_steps) for f in paper.fills if f.client_order_id == second] == \
        [(ASK, 100), (ASK + 1, 300)]
    assert avg_price(paper, second) > avg_price(paper, first)
    assert paper.books["BTCUSDT"].asks()[:1] == [(ASK + 1, 2_700)]


def test_used_liquidity_comes_back_only_when_an_update_replaces_the_level():
    paper = venue()
    buy(paper, 500, price=None)  # takes the whole 60000.1 level
    book(paper, asks=[(ASK + 5, 7)])  # an update of another level does not refill 60000.1
    again = buy(paper, 100, price=None)
    assert [f.last_price_ticks for f in paper.fills if f.client_order_id == again] == [ASK + 1]
    book(paper, asks=[(ASK, 800)])  # the venue says 60000.1 holds 0.800 again
    third = buy(paper, 100, price=None)
    assert [f.last_price_ticks for f in paper.fills if f.client_order_id == third] == [ASK]


@settings(max_examples=100, deadline=None)
@given(orders=st.lists(st.integers(1, 1_500), min_size=1, max_size=8))
def test_takers_never_get_more_than_the_book_held(orders):
    levels = [(ASK, 500), (ASK + 1, 700), (ASK + 3, 300)]
    paper = venue(ask_levels=levels)
    for qty in orders:
        try:
            buy(paper, qty, price=ASK + 3, cid=None)  # a marketable limit: the rest would rest at ASK + 3
        except Exception:
            pass
        for cid, r in list(paper.orders.items()):
            if r.status in ("NEW", "PARTIALLY_FILLED"):
                paper.cancel_now(cid)
    taken = {}
    for f in paper.fills:
        if not f.is_maker:
            taken[f.last_price_ticks] = taken.get(f.last_price_ticks, 0) + f.last_qty_steps
    for price, qty in levels:
        assert taken.get(price, 0) <= qty
    assert sum(taken.values()) == min(sum(orders), sum(q for _, q in levels))


def test_a_crossing_amendment_uses_the_liquidity_up_too():
    paper = venue()
    cid = buy(paper, 300, price=BID - 5)
    paper.amend_now(paper.orders[cid].order, 300, ASK)
    assert paper.books["BTCUSDT"].qty_at(False, ASK) == 200
    assert [e for e in paper.fills if e.client_order_id == cid][0].execution is Execution.TRADE


# -- the ask side mirrors the bid side -------------------------------------------------------------
def buy_trade(price: int, qty: int) -> TradeUpdate:
    """A buyer takes liquidity: it lifts the asks (buyer is taker)."""
    return TradeUpdate("BTCUSDT", next(_seq), next(_seq), price, qty, False, 0, 0)


def sell(paper: PaperVenue, qty: int, price: int | None = ASK) -> str:
    cid = f"s-{next(_seq)}"
    kind = OrderType.LIMIT if price is not None else OrderType.MARKET
    paper.place_now(Order(cid, "BTCUSDT", Side.SELL, kind, qty, price))
    return cid


@settings(max_examples=100, deadline=None)
@given(size=st.integers(1, 5_000), trade_qty=st.integers(1, 5_000), ticks=st.integers(0, 50))
def test_a_buy_trade_at_or_through_our_ask_fills_what_the_queue_leaves(size, trade_qty, ticks):
    paper = venue()
    cid = sell(paper, size)
    ahead = 500 if ticks == 0 else 0  # at our price the 0.500 already there goes first
    paper.on_trade(buy_trade(ASK + ticks, trade_qty))
    assert filled(paper, cid) == min(size, max(0, trade_qty - ahead))
    assert paper.orders[cid].queue_ahead == (max(0, 500 - trade_qty) if ticks == 0 else 500)


def test_two_market_sells_in_a_row_get_worse_prices():
    paper = venue(bid_qty=300)
    first, second = sell(paper, 300, price=None), sell(paper, 300, price=None)
    assert [f.last_price_ticks for f in paper.fills if f.client_order_id == first] == [BID]
    assert [f.last_price_ticks for f in paper.fills if f.client_order_id == second] == [BID - 1]
