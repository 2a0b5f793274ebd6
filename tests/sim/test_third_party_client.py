"""binance-futures-connector, unchanged, pointed at `celeris sim` (PROTOCOL.md §10)."""

import json
import threading

import pytest
from binance.error import ClientError
from binance.um_futures import UMFutures
from binance.websocket.um_futures.websocket_client import UMFuturesWebsocketClient

from tests.sim.conftest import API_KEY, API_SECRET
from tests.support.waits import wait_until


@pytest.fixture
def client(sim_process):
    return UMFutures(key=API_KEY, secret=API_SECRET, base_url=sim_process["rest_url"], show_limit_usage=True)


def test_market_data_and_exchange_info(client):
    info = client.exchange_info()["data"]  # show_limit_usage wraps answers
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["MIN_NOTIONAL"]["notional"] and filters["PRICE_FILTER"]["tickSize"] == "0.10"
    assert filters["PERCENT_PRICE"]["multiplierUp"] and btc["orderTypes"] and btc["timeInForce"]
    depth = client.depth("BTCUSDT", limit=10)["data"]
    assert len(depth["bids"]) == 10 and float(depth["bids"][0][0]) < float(depth["asks"][0][0])
    assert "x-mbx-used-weight-1m" in {k.lower() for k in client.depth("BTCUSDT", limit=5)["limit_usage"]}
    assert float(client.mark_price("BTCUSDT")["data"]["markPrice"]) > 0


def test_place_query_cancel_and_batch(client):
    bid = float(client.depth("BTCUSDT", limit=5)["data"]["bids"][0][0])
    price = f"{bid - 100:.1f}"
    order = client.new_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010",
                             price=price, newClientOrderId="tp-limit-1")["data"]
    assert order["status"] == "NEW" and order["clientOrderId"] == "tp-limit-1"
    assert client.query_order(symbol="BTCUSDT", origClientOrderId="tp-limit-1")["data"]["orderId"] == order["orderId"]
    assert any(o["orderId"] == order["orderId"] for o in client.get_orders(symbol="BTCUSDT")["data"])
    assert client.cancel_order(symbol="BTCUSDT", orderId=order["orderId"])["data"]["status"] == "CANCELED"
    with pytest.raises(ClientError) as err:
        client.cancel_order(symbol="BTCUSDT", orderId=order["orderId"])
    assert err.value.error_code == -2011
    batch = client.new_batch_order([
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.010", "price": price, "timeInForce": "GTC"},
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.010", "price": price + "5",
         "timeInForce": "GTC"},
    ])["data"]
    assert batch[0]["status"] == "NEW" and batch[1]["code"] in (-4014, -1111)
    assert client.cancel_open_orders(symbol="BTCUSDT")["data"]["code"] == 200


def test_positions_account_and_trades_agree(client):
    filled = client.new_order(symbol="ETHUSDT", side="SELL", type="MARKET", quantity="0.100",
                              newOrderRespType="RESULT")["data"]
    assert filled["status"] == "FILLED"
    positions = client.get_position_risk(symbol="ETHUSDT")["data"]
    assert positions[0]["positionAmt"] == "-0.100"
    account = client.account()["data"]
    assert any(p["symbol"] == "ETHUSDT" and p["positionAmt"] == "-0.100" for p in account["positions"])
    trades = client.get_account_trades(symbol="ETHUSDT")["data"]
    assert trades[-1]["orderId"] == filled["orderId"] and trades[-1]["maker"] is False
    assert client.balance()["data"][0]["asset"] == "USDT"
    assert client.change_leverage(symbol="ETHUSDT", leverage=5)["data"]["leverage"] == 5


def test_signature_and_key_errors(sim_process):
    bad = UMFutures(key=API_KEY, secret="wrong-secret", base_url=sim_process["rest_url"])
    with pytest.raises(ClientError) as err:
        bad.account()
    assert (err.value.status_code, err.value.error_code) == (400, -1022)
    nokey = UMFutures(key="unknown-key", secret=API_SECRET, base_url=sim_process["rest_url"])
    with pytest.raises(ClientError) as err:
        nokey.balance()
    assert err.value.error_code == -2015


def test_listen_key_and_websocket_streams(client, sim_process):
    key = client.new_listen_key()["data"]["listenKey"]
    assert client.renew_listen_key(key)["data"] == {"listenKey": key}
    received: list[dict] = []
    done = threading.Event()

    def on_message(_, message):
        data = json.loads(message)
        received.append(data)
        kinds = {d.get("e") for d in received}
        if {"depthUpdate", "ORDER_TRADE_UPDATE"} <= kinds:
            done.set()

    ws = UMFuturesWebsocketClient(stream_url=sim_process["ws_url"], on_message=on_message)
    try:
        ws.diff_book_depth(symbol="btcusdt", speed=100)
        ws.user_data(listen_key=key)  # subscribes the listenKey as a stream, as this client does
        # Both subscriptions acknowledged ({"result": null, "id": ...}): the order's events cannot be missed.
        wait_until(lambda: sum(1 for d in list(received) if "result" in d and "id" in d) >= 2, 10, "subscriptions")
        client.new_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")
        assert done.wait(10), [d.get("e") for d in received]
    finally:
        ws.stop()
    depth = [d for d in received if d.get("e") == "depthUpdate"]
    assert all(b["pu"] == a["u"] for a, b in zip(depth, depth[1:]))
    assert client.close_listen_key(key)["data"] == {}
