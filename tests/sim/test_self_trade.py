"""Self-trade prevention in the simulator, as Binance USD-M defines it: the taker's selfTradePreventionMode
decides what happens when it meets a resting order of its own account (NONE, the default, trades and pays
both fees; EXPIRE_TAKER / EXPIRE_MAKER / EXPIRE_BOTH expire with status EXPIRED_IN_MATCH); another
account's order always trades."""

from __future__ import annotations

import pytest

from celeris.exchange_sim.engine import VenueError
from tests.sim.conftest import API_KEY
from tests.sim.test_engine import book, fmt, place


def _inside_ask(venue):
    """The best ask level with the venue's own (synthetic) liquidity taken away: only our orders rest there."""
    b = book(venue)
    ask = b.best(False)
    b.set_synthetic(False, ask, 0)
    return ask


@pytest.mark.parametrize("mode, taker_status, maker_status", [
    (None, "FILLED", "FILLED"),
    ("NONE", "FILLED", "FILLED"),
    ("EXPIRE_TAKER", "EXPIRED_IN_MATCH", "NEW"),
    ("EXPIRE_MAKER", "NEW", "EXPIRED_IN_MATCH"),
    ("EXPIRE_BOTH", "EXPIRED_IN_MATCH", "EXPIRED_IN_MATCH"),
])
def test_the_takers_mode_decides_a_self_trade(venue, mode, taker_status, maker_status):
    account = venue.engine.accounts[API_KEY]
    price = _inside_ask(venue)
    maker = place(venue, symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.010",
                  price=fmt(venue, price))
    wallet = account.wallet
    extra = {"selfTradePreventionMode": mode} if mode else {}
    taker = place(venue, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010",
                  price=fmt(venue, price), **extra)
    assert (taker.status, maker.status) == (taker_status, maker_status)
    assert venue.engine.order_json(taker)["selfTradePreventionMode"] == (mode or "NONE")
    if taker_status == "FILLED":  # it traded with itself: flat, both fees paid
        assert account.positions["BTCUSDT"].qty_steps == 0 and account.wallet < wallet
    else:
        assert account.wallet == wallet and account.positions["BTCUSDT"].qty_steps == 0
        expired = [e["o"] for e in account.events if e["o"]["X"] == "EXPIRED_IN_MATCH"]
        assert expired and all(o["x"] == "EXPIRED" for o in expired)
    b = book(venue)
    resting = [o for q in b.queues.values() for o in q]
    assert all(o.is_open for o in resting)  # nothing expired stays in the book


def test_another_accounts_order_trades_whatever_the_mode(venue):
    other = venue.engine.add_account("other-key-0001", "other-secret")
    price = _inside_ask(venue)
    theirs = venue.engine.place(other, {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
                                        "quantity": "0.010", "price": fmt(venue, price)})
    ours = place(venue, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010",
                 price=fmt(venue, price), selfTradePreventionMode="EXPIRE_BOTH")
    assert (ours.status, theirs.status) == ("FILLED", "FILLED")


def test_an_unknown_mode_is_refused(venue):
    with pytest.raises(VenueError) as refused:
        place(venue, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010",
              price=fmt(venue, book(venue).best(True) - 10), selfTradePreventionMode="EXPIRE_SOMETIMES")
    assert refused.value.code == -5039  # INVALID_SELF_TRADE_PREVENTION_MODE
