"""The venue's decisions, driven deterministically (test clock, manual ticks)."""

from fractions import Fraction

import pytest

from celeris.domain.values import MONEY_SCALE
from celeris.exchange_sim.engine import VenueError
from tests.sim.conftest import API_KEY


def place(venue, **params):
    params = {k: str(v) for k, v in params.items()}
    return venue.engine.place(venue.engine.accounts[API_KEY], params)


def book(venue, symbol="BTCUSDT"):
    return venue.engine.books[symbol]


def fmt(venue, ticks, symbol="BTCUSDT"):
    return book(venue, symbol).instrument.format_price(ticks)


def test_limit_rests_then_market_flow_fills_it_after_the_queue_ahead(venue):
    b = book(venue)
    bid = b.best(True)
    ahead = b.level_qty(True, bid)
    order = place(venue, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010",
                  price=fmt(venue, bid))
    assert order.status == "NEW" and b.level_qty(True, bid) == ahead + 10
    # Flow smaller than the synthetic quantity ahead does not reach us.
    venue.engine.fill_resting_from_flow("BTCUSDT", side_sell(), bid, ahead - 1)
    assert order.filled_steps == 0
    venue.engine.fill_resting_from_flow("BTCUSDT", side_sell(), bid, 1 + 4)
    assert order.filled_steps == 4 and order.status == "PARTIALLY_FILLED"
    venue.engine.fill_resting_from_flow("BTCUSDT", side_sell(), bid, 100)
    assert order.status == "FILLED"
    pos = venue.engine.accounts[API_KEY].positions["BTCUSDT"]
    assert pos.qty_steps == 10


def side_sell():
    from celeris.domain.values import Side
    return Side.SELL


def test_market_order_walks_the_book_and_pays_taker_fee(venue):
    account = venue.engine.accounts[API_KEY]
    wallet0 = account.wallet
    b = book(venue)
    best_ask = b.best(False)
    order = place(venue, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="2")
    assert order.status == "FILLED" and order.filled_steps == 2000
    avg = Fraction(order.filled_quote, order.filled_steps)
    assert avg > best_ask  # 2 BTC is more than the first level
    fees = wallet0 - account.wallet
    notional = Fraction(order.filled_quote * 10, 10**5)  # ticks 0.1 x steps 0.001
    assert fees == round(notional * Fraction(4, 10_000) * 10**MONEY_SCALE) or abs(
        fees - notional * Fraction(4, 10_000) * 10**MONEY_SCALE) <= len(account.trades)


def test_round_trip_wallet_change_equals_realized_minus_fees(venue):
    account = venue.engine.accounts[API_KEY]
    wallet0 = account.wallet
    place(venue, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.5")
    for _ in range(20):
        venue.tick()
    place(venue, symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.5")
    pos = account.positions["BTCUSDT"]
    assert pos.qty_steps == 0
    commissions = sum(int(t["commission"].replace(".", "")) for t in account.trades)
    assert account.wallet - wallet0 == pos.realized_pnl - commissions


@pytest.mark.parametrize("params,code", [
    (dict(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010", price="60000.05"), -4014),
    (dict(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.0105", price="60000.00"), -1111),
    (dict(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.000", price="60000.00"), -4003),
    (dict(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price="5000.00"), -4024),
    (dict(symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price="3000.00"),
     -4164),
    (dict(side="BUY", type="LIMIT", quantity="0.010", price="60000.00"), -1102),
    (dict(side="UP", type="LIMIT", timeInForce="GTC", quantity="0.010", price="60000.00"), -1117),
    (dict(side="BUY", type="LIMITED", quantity="0.010"), -1116),
    (dict(side="BUY", type="MARKET", quantity="0.010", price="60000.00"), -1106),
    (dict(side="SELL", type="MARKET", quantity="0.010", reduceOnly="true"), -2022),
    (dict(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010", price="60000.00",
          positionSide="LONG"), -4061),
    (dict(side="BUY", type="MARKET", quantity="100"), -2019),
    (dict(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010", price="60000.00",
          newClientOrderId="bad id!"), -4015),
])
def test_refusals_carry_the_venue_codes(venue, params, code):
    params = {"symbol": "BTCUSDT", **params}
    with pytest.raises(VenueError) as err:
        place(venue, **params)
    assert err.value.code == code, err.value.msg


def test_unknown_symbol(venue):
    with pytest.raises(VenueError) as err:
        place(venue, symbol="DOGEBTC", side="BUY", type="MARKET", quantity="1")
    assert err.value.code == -1121


def test_tif_semantics(venue):
    b = book(venue)
    ask = b.best(False)
    with pytest.raises(VenueError) as err:  # post-only that would take
        place(venue, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTX", quantity="0.010",
              price=fmt(venue, ask))
    assert err.value.code == -5022
    with pytest.raises(VenueError) as err:  # FOK larger than the liquidity up to its price
        place(venue, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="FOK", quantity="10",
              price=fmt(venue, ask))
    assert err.value.code == -5021
    level = b.level_qty(False, ask)
    ioc = place(venue, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="IOC",
                quantity=b.instrument.format_qty(level + 5), price=fmt(venue, ask))
    assert ioc.status == "EXPIRED" and ioc.filled_steps == level


def test_duplicate_client_order_id_among_open_orders(venue):
    bid = book(venue).best(True) - 100
    place(venue, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010",
          price=fmt(venue, bid), newClientOrderId="dup-1")
    with pytest.raises(VenueError) as err:
        place(venue, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010",
              price=fmt(venue, bid), newClientOrderId="dup-1")
    assert err.value.code == -4116


def test_stop_market_triggers_on_last_price(venue):
    account = venue.engine.accounts[API_KEY]
    b = book(venue)
    stop = b.last_price_ticks + 1
    order = place(venue, symbol="BTCUSDT", side="BUY", type="STOP_MARKET", stopPrice=fmt(venue, stop),
                  quantity="0.010")
    assert order.status == "NEW"
    with pytest.raises(VenueError) as err:
        place(venue, symbol="BTCUSDT", side="BUY", type="STOP_MARKET",
              stopPrice=fmt(venue, b.last_price_ticks - 5), quantity="0.010")
    assert err.value.code == -2021
    b.last_price_ticks = stop
    venue.engine.check_triggers("BTCUSDT")
    assert order.status == "FILLED" and account.positions["BTCUSDT"].qty_steps == 10


def test_trailing_stop_follows_the_high(venue):
    b = book(venue)
    place(venue, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010")
    start = b.last_price_ticks
    trail = place(venue, symbol="BTCUSDT", side="SELL", type="TRAILING_STOP_MARKET", callbackRate="1",
                  quantity="0.010", reduceOnly="true")
    for price in (start, start + 5000, start + 8000):  # rises: the stop follows
        b.last_price_ticks = price
        venue.engine.check_triggers("BTCUSDT")
    assert trail.status == "NEW"
    b.last_price_ticks = int((start + 8000) * 0.995)  # -0.5 %: not yet
    venue.engine.check_triggers("BTCUSDT")
    assert trail.status == "NEW"
    b.last_price_ticks = int((start + 8000) * 0.989)  # -1.1 % from the high: triggers
    venue.engine.check_triggers("BTCUSDT")
    assert trail.status == "FILLED"


def test_conditional_orders_can_be_refused_like_the_current_venue(clock):
    from celeris.exchange_sim.engine import EngineConfig
    from celeris.exchange_sim.server import SimVenue

    v = SimVenue(symbols=["BTCUSDT"], api_key=API_KEY, api_secret="s", clock=clock,
                 config=EngineConfig(conditional_on_order_endpoint=False))
    with pytest.raises(VenueError) as err:
        place(v, symbol="BTCUSDT", side="BUY", type="STOP_MARKET", stopPrice="70000.00", quantity="0.010")
    assert err.value.code == -4120


def test_funding_moves_money_from_longs(venue):
    account = venue.engine.accounts[API_KEY]
    place(venue, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="1")
    before = account.wallet
    venue.engine.apply_funding("BTCUSDT")
    mark = venue.engine.mark("BTCUSDT")
    expected = Fraction(mark, 10) * Fraction(1, 10_000)  # notional x 0.01 %
    assert before - account.wallet == round(expected * 10**MONEY_SCALE)
    assert account.events[-1]["a"]["m"] == "FUNDING_FEE"


def test_liquidation_when_margin_runs_out(clock):
    from celeris.exchange_sim.server import SimVenue

    v = SimVenue(symbols=["BTCUSDT"], api_key=API_KEY, api_secret="s", clock=clock, wallet_usdt=1000)
    account = v.engine.accounts[API_KEY]
    v.engine.set_leverage(account, "BTCUSDT", 100)
    place(v, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="1")  # 60k notional on 1k
    b = v.engine.books["BTCUSDT"]
    b.mark_ticks = b.mark_ticks * 98 // 100  # -2 %: loss 1200 > wallet
    v.engine.check_liquidations("BTCUSDT")
    assert account.positions["BTCUSDT"].qty_steps == 0
    assert any(e.get("o", {}).get("c", "").startswith("autoclose-") for e in account.events)


def test_synthetic_market_is_deterministic_under_a_seed(clock):
    from celeris.exchange_sim.server import SimVenue

    def run(seed):
        v = SimVenue(symbols=["BTCUSDT"], api_key=API_KEY, api_secret="s", clock=clock, seed=seed)
        for _ in range(50):
            v.market.step()
        return v.engine.books["BTCUSDT"].depth(10)

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_replay_market_plays_the_real_capture(clock):
    from celeris.exchange_sim.server import SimVenue
    from tests.conftest import CAPTURE_60S

    v = SimVenue(symbols=["BTCUSDT"], api_key=API_KEY, api_secret="s", clock=clock, replay=CAPTURE_60S)
    b = v.engine.books["BTCUSDT"]
    assert b.instrument.format_price(b.best(True)) == "61800.20"  # the real snapshot's touch
    for _ in range(50):
        v.market.step()
    assert b.best(True) < b.best(False) and b.trade_id > 0


def test_depth_events_cover_every_update_id_even_when_a_level_changes_twice(venue):
    """A snapshot taken between any two changes must be straddled by the next event (U <= id <= u)."""
    b = book(venue)
    published = []
    venue._send = lambda stream, payload, wanted: published.append(payload) if stream == "btcusdt@depth@100ms" else None
    venue._wanted_streams = lambda: {"btcusdt@depth@100ms"}
    venue.tick()
    snapshot_ids = []
    for _ in range(30):
        bid = b.best(True)
        b.set_synthetic(True, bid, b.level_qty(True, bid) + 1)
        snapshot_ids.append(b.update_id)
        b.set_synthetic(True, bid, b.level_qty(True, bid) + 1)  # the same level again
        venue._publish_market(venue.now_ms())
    events = [e for e in published]
    for a, nxt in zip(events, events[1:]):
        assert nxt["pu"] == a["u"] and nxt["U"] == a["u"] + 1
    for snap_id in snapshot_ids:
        assert any(e["U"] <= snap_id <= e["u"] for e in events)
