"""Every real or documented venue payload the project has a type for decodes, and converts exactly."""

import json

import pytest

from celeris.domain.instruments import Instrument
from celeris.domain.values import money, to_units
from celeris.venues.binance import codec
from tests.conftest import SAMPLES, load_sample

MARKET = {
    "hftbacktest/real_ws_combined_depthUpdate_btcusdt.json": codec.DepthUpdate,
    "hftbacktest/real_ws_combined_bookTicker_btcusdt.json": codec.BookTicker,
    "hftbacktest/real_ws_combined_trade_btcusdt.json": codec.Trade,
    "nautilus/rs_depth_update_stream.json": codec.DepthUpdate,
    "nautilus/py_ws_futures_depth_update.json": codec.DepthUpdate,
    "nautilus/py_ws_futures_depth_diff_update.json": codec.DepthUpdate,
    "nautilus/rs_book_ticker_stream.json": codec.BookTicker,
    "nautilus/py_ws_futures_book_ticker.json": codec.BookTicker,
    "nautilus/rs_trade_stream.json": codec.Trade,
    "nautilus/rs_agg_trade_stream.json": codec.AggTrade,
    "nautilus/rs_mark_price_stream.json": codec.MarkPriceUpdate,
}
USER = {
    "nautilus/rs_order_update_new.json": codec.OrderTradeUpdate,
    "nautilus/rs_order_update_trade.json": codec.OrderTradeUpdate,
    "nautilus/rs_order_update_trade_partial.json": codec.OrderTradeUpdate,
    "nautilus/rs_order_update_calculated.json": codec.OrderTradeUpdate,
    "nautilus/rs_order_update_adl.json": codec.OrderTradeUpdate,
    "nautilus/rs_order_update_settlement.json": codec.OrderTradeUpdate,
    "nautilus/py_ws_futures_order_update_liquidation.json": codec.OrderTradeUpdate,
    "nautilus/py_ws_futures_order_update_trade_reduce_only_qty.json": codec.OrderTradeUpdate,
    "nautilus/rs_trade_lite.json": codec.TradeLite,
    "nautilus/py_ws_futures_trade_lite.json": codec.TradeLite,
    "nautilus/rs_account_update.json": codec.AccountUpdate,
    "nautilus/rs_account_update_bnfcr.json": codec.AccountUpdate,
}
SNAPSHOTS = ["hftbacktest/real_rest_depth_snapshot_btcusdt_limit1000.json",
             "nautilus/py_http_futures_market_depth.json", "ccxt/ccxt_fapi_v1_depth_limit5.json"]


def _unwrap(raw: str) -> bytes:
    data = json.loads(raw)
    return json.dumps(data.get("data", data)).encode()


def _present(mapping):
    return [name for name in mapping if (SAMPLES / name).exists()]


@pytest.mark.parametrize("name", _present(MARKET))
def test_market_samples_decode(name):
    raw = (SAMPLES / name).read_text()
    msg = codec.decode_raw(_unwrap(raw))
    assert isinstance(msg, MARKET[name])
    if "combined" in name:  # the combined wrapper decodes as is, too
        assert isinstance(codec.decode_combined(raw).data, MARKET[name])


@pytest.mark.parametrize("name", _present(USER))
def test_user_samples_decode(name):
    msg = codec.decode_user_event(_unwrap((SAMPLES / name).read_text()))
    assert isinstance(msg, USER[name])
    if isinstance(msg, codec.OrderTradeUpdate):
        to_units(msg.o.z, 8) and to_units(msg.o.L, 8)
    if isinstance(msg, codec.AccountUpdate):
        assert all(money(b.wb) is not None for b in msg.a.B)


@pytest.mark.parametrize("name", SNAPSHOTS)
def test_depth_snapshots_decode(name):
    snap = codec.decode_snapshot((SAMPLES / name).read_text())
    assert snap.lastUpdateId > 0 and snap.bids and snap.asks


def test_real_snapshot_converts_to_ticks_and_is_sorted(btcusdt):
    snap = codec.decode_snapshot((SAMPLES / SNAPSHOTS[0]).read_text())
    bids, asks = codec.snapshot_levels(snap, codec.LevelParser(btcusdt))
    assert len(bids) == len(asks) == 1000
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert bids[0][0] < asks[0][0]
    assert btcusdt.format_price(bids[0][0]) == snap.bids[0][0]


def test_real_depth_update_converts(btcusdt):
    msg = codec.decode_combined((SAMPLES / "hftbacktest/real_ws_combined_depthUpdate_btcusdt.json").read_text())
    event = codec.depth_event(msg.data, codec.LevelParser(btcusdt))
    assert event.prev_final_id == 5123110691288 and event.bids[0] == (50000, 2301)


def test_every_exchange_info_symbol_builds_an_instrument():
    info = load_sample("nautilus/py_http_futures_market_exchange_info.json")
    instruments = [Instrument.from_exchange_info(s) for s in info["symbols"]]
    assert {i.symbol for i in instruments} >= {"BTCUSDT"}
    for ins in instruments:
        assert ins.min_qty_steps >= 1 and ins.max_price_ticks > ins.min_price_ticks


def test_malformed_messages_raise_a_countable_error(btcusdt):
    for raw in (b"", b"{", b'{"e":"depthUpdate"}', b'{"e":"nope"}', b"[1,2]"):
        with pytest.raises(codec.MalformedMessage):
            codec.decode_raw(raw)
    parser = codec.LevelParser(btcusdt)
    with pytest.raises(codec.MalformedMessage):
        parser.price("61800.25")  # off the 0.10 tick
    with pytest.raises(codec.MalformedMessage):
        parser.qty("abc")
