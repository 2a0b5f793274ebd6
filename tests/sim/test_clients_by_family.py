"""Third-party clients, unchanged, against `celeris sim`, one test per client and endpoint family.

ccxt.pro's watch_* (trades, order book, ticker, mark price, ohlcv, orders, positions, balance), ccxt's REST settings,
account and trade calls, python-binance's sync Client and AsyncClient with its BinanceSocketManager futures
sockets run in .venv/clients (see
test_clients_unchanged.py for why); binance-futures-connector's REST families and UMFuturesWebsocketClient
run here. Each test asserts on what the client hands back: prices against the book the venue serves, an
order placed through the client found in its own stream under its id, the streamed position and balance
equal to the ones the REST API answers afterwards. Every wait is bounded (asyncio.wait_for in the client
scripts, wait_until here). The session's simulator is shared, so figures are compared within one test.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest
from binance.um_futures import UMFutures
from binance.websocket.um_futures.websocket_client import UMFuturesWebsocketClient

from tests.sim.conftest import API_KEY, API_SECRET
from tests.sim.test_clients_unchanged import CLIENTS
from tests.support.waits import wait_until

PRELUDE = r"""
import asyncio, json, sys
rest, ws, key, secret = sys.argv[1:5]

async def until(get, ok, what, timeout=8.0):
    # Calls an awaitable factory until its value satisfies ok, within timeout seconds.
    async def loop():
        while True:
            value = await get()
            if ok(value):
                return value
    try:
        return await asyncio.wait_for(loop(), timeout)
    except asyncio.TimeoutError:
        raise SystemExit(f"timed out waiting for {what}")
"""

CCXT_PRO = PRELUDE + r"""
import ccxt.pro as ccxtpro

async def main():
    ex = ccxtpro.binanceusdm({"apiKey": key, "secret": secret, "options": {"fetchCurrencies": False}})
    for name, value in list(ex.urls["api"].items()):
        if isinstance(value, str) and "/fapi/" in value:
            ex.urls["api"][name] = rest + "/fapi/" + value.rsplit("/fapi/", 1)[1]
    ex.urls["api"]["ws"]["linear"] = ws + "/ws"  # ccxt rewrites it to /public/ws, /market/ws, /private/ws
    s = "BTC/USDT:USDT"
    out = {}
    try:
        await ex.load_markets()
        out["trades"] = [{k: t[k] for k in ("id", "price", "amount", "side", "symbol")}
                         for t in await until(lambda: ex.watch_trades(s), bool, "trades")]
        book = await until(lambda: ex.watch_order_book(s), lambda b: b["bids"] and b["asks"], "a book")
        out["book"] = {"bids": book["bids"][:5], "asks": book["asks"][:5], "nonce": book["nonce"]}
        ticker = await until(lambda: ex.watch_ticker(s), lambda t: t["last"], "a ticker")
        out["ticker"] = {k: ticker[k] for k in ("symbol", "last", "high", "low", "open", "baseVolume")}
        mark = await until(lambda: ex.watch_mark_price(s), lambda t: t.get("markPrice"), "a mark price")
        out["mark"] = {"symbol": mark["symbol"], "markPrice": mark["markPrice"], "indexPrice": mark["indexPrice"]}
        candles = await until(lambda: ex.watch_ohlcv(s, "1m"), bool, "a candle")
        out["ohlcv"] = candles[-1]
        out["rest_mark"] = float((await ex.fapiPublicGetPremiumIndex({"symbol": "BTCUSDT"}))["markPrice"])

        # The private streams: subscribed first, then an order placed through the client.
        orders = asyncio.ensure_future(ex.watch_orders(s))
        await asyncio.wait_for(ex.watch_positions([s]), 8)  # resolves with the REST snapshot first
        await asyncio.sleep(0.3)  # the listenKey socket is open: ccxt subscribes with the first watch
        bid = (await ex.fetch_order_book(s, 5))["bids"][0][0]
        resting = await ex.create_order(s, "limit", "buy", 0.004, round(bid - 300, 1))
        first = await asyncio.wait_for(orders, 8)
        seen = [o for o in first if o["id"] == resting["id"]] or [
            o for o in await until(lambda: ex.watch_orders(s), lambda os: any(o["id"] == resting["id"] for o in os),
                                   "the resting order in the stream") if o["id"] == resting["id"]]
        out["resting"] = {"id": resting["id"], "streamed": seen[-1]["id"], "status": seen[-1]["status"],
                          "price": seen[-1]["price"], "amount": seen[-1]["amount"]}
        await ex.cancel_order(resting["id"], s)
        cancelled = await until(lambda: ex.watch_orders(s), lambda os: any(
            o["id"] == resting["id"] and o["status"] == "canceled" for o in os), "the cancel in the stream")
        out["cancelled"] = [o["id"] for o in cancelled if o["status"] == "canceled"]

        positions = asyncio.ensure_future(until(lambda: ex.watch_positions([s]), lambda ps: ps, "a position"))
        balance = asyncio.ensure_future(ex.watch_balance())
        await asyncio.sleep(0.2)
        filled = await ex.create_order(s, "market", "buy", 0.003)
        streamed = (await positions)[-1]
        bal = await asyncio.wait_for(balance, 8)
        rest_position = (await ex.fetch_positions([s]))[0]
        rest_balance = await ex.fetch_balance()
        out["position"] = {"filled": filled["id"], "streamed": streamed["contracts"], "side": streamed["side"],
                           "rest": rest_position["contracts"], "entry": streamed["entryPrice"],
                           "rest_entry": rest_position["entryPrice"]}
        # The stream's total is the wallet balance (ACCOUNT_UPDATE wb); ccxt's REST total adds unrealised PnL.
        wallet = next(a for a in rest_balance["info"]["assets"] if a["asset"] == "USDT")["walletBalance"]
        out["balance"] = {"streamed": bal["USDT"]["total"], "rest": float(wallet),
                          "margin": rest_balance["USDT"]["total"]}
        # Flat again: the session's simulator serves other tests, which read positions absolutely.
        await ex.create_order(s, "market", "sell", rest_position["contracts"], params={"reduceOnly": True})
        print(json.dumps(out))
    finally:
        await ex.close()

asyncio.run(main())
"""

CCXT_REST = r"""
import json, sys
import ccxt
rest, ws, key, secret = sys.argv[1:5]
ex = ccxt.binanceusdm({"apiKey": key, "secret": secret, "options": {"fetchCurrencies": False}})
for name, value in list(ex.urls["api"].items()):
    if isinstance(value, str) and "/fapi/" in value:
        ex.urls["api"][name] = rest + "/fapi/" + value.rsplit("/fapi/", 1)[1]
ex.load_markets()
s = "BTC/USDT:USDT"
out = {"set_leverage": ex.set_leverage(9, s)["leverage"], "leverage": ex.fetch_leverage(s)["longLeverage"],
       "margin_mode": ex.fetch_margin_mode(s)["marginMode"], "hedged": ex.fetch_position_mode(s)["hedged"],
       "fee": ex.fetch_trading_fee(s), "tiers": ex.fetch_leverage_tiers([s])[s][0]["maxLeverage"],
       "bids_asks": ex.fetch_bids_asks([s])[s], "funding": ex.fetch_funding_rate(s)["fundingRate"]}
ex.set_leverage(20, s)  # back to the venue's default for the tests that follow
filled = ex.create_order(s, "market", "buy", 0.002)
out["filled"] = {k: filled[k] for k in ("id", "status", "filled", "average")}
out["my_trades"] = [{k: t[k] for k in ("order", "amount", "price", "side")} for t in ex.fetch_my_trades(s)
                    if t["order"] == filled["id"]]
out["closed"] = [o["id"] for o in ex.fetch_closed_orders(s)]
out["positions"] = [{k: p[k] for k in ("symbol", "contracts", "side")} for p in ex.fetch_positions([s])]
out["balance"] = ex.fetch_balance()["USDT"]
ex.create_order(s, "market", "sell", 0.002, params={"reduceOnly": True})  # flat again
print(json.dumps(out))
"""

PYTHON_BINANCE_SYNC = r"""
import json, sys
from binance.client import Client
rest, ws, key, secret = sys.argv[1:5]
c = Client(key, secret, ping=False)
c.FUTURES_URL = rest + "/fapi"
bid = float(c.futures_orderbook_ticker(symbol="BTCUSDT")["bidPrice"])
placed = c.futures_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.008",
                                price=f"{bid - 350:.1f}", newClientOrderId="pb-sync-1")
out = {"placed": placed, "queried": c.futures_get_order(symbol="BTCUSDT", origClientOrderId="pb-sync-1"),
       "modified": c.futures_modify_order(symbol="BTCUSDT", orderId=placed["orderId"], side="BUY", quantity="0.009",
                                          price=f"{bid - 350:.1f}"),
       "amendments": c.futures_v1_get_order_amendment(symbol="BTCUSDT", orderId=placed["orderId"]),
       "open": c.futures_get_open_orders(symbol="BTCUSDT"),
       "positions": c.futures_position_information(symbol="BTCUSDT"),  # v3: listed while an order is open
       "cancelled": c.futures_cancel_order(symbol="BTCUSDT", orderId=placed["orderId"]),
       "leverage": c.futures_change_leverage(symbol="BTCUSDT", leverage=20),
       "balance": c.futures_account_balance(), "flat": c.futures_position_information(symbol="BTCUSDT"),
       "fee": c.futures_commission_rate(symbol="BTCUSDT"), "dual": c.futures_get_position_mode(),
       "listen_key": c.futures_stream_get_listen_key(), "premium": c.futures_mark_price(symbol="BTCUSDT"),
       "agg": c.futures_aggregate_trades(symbol="BTCUSDT", limit=3), "book": c.futures_order_book(symbol="BTCUSDT")}
print(json.dumps(out))
"""

PYTHON_BINANCE_ASYNC = PRELUDE + r"""
from binance import AsyncClient, BinanceSocketManager

async def main():
    c = AsyncClient(key, secret)  # AsyncClient.create() would ping the spot API first
    c.FUTURES_URL = rest + "/fapi"
    bm = BinanceSocketManager(c)
    bm.FSTREAM_URL = ws + "/"
    out = {}
    try:
        out["depth"] = await c.futures_order_book(symbol="BTCUSDT", limit=5)
        out["mark"] = await c.futures_mark_price(symbol="BTCUSDT")
        out["ticker"] = await c.futures_symbol_ticker(symbol="BTCUSDT")
        out["klines"] = await c.futures_klines(symbol="BTCUSDT", interval="1m", limit=3)
        out["wallet"] = (await c.futures_account())["totalWalletBalance"]
        async with bm.futures_depth_socket("BTCUSDT", depth="5") as sock:
            out["depth_ws"] = await asyncio.wait_for(sock.recv(), 8)
        async with bm.symbol_mark_price_socket("BTCUSDT") as sock:
            out["mark_ws"] = await asyncio.wait_for(sock.recv(), 8)
        async with bm.futures_multiplex_socket(["btcusdt@aggTrade", "btcusdt@bookTicker"], category="public") as sock:
            out["multiplex"] = [await asyncio.wait_for(sock.recv(), 8) for _ in range(6)]
        async with bm.futures_user_socket() as sock:
            await asyncio.sleep(0.3)  # python-binance connects lazily, on entering the context
            bid = float(out["depth"]["bids"][0][0])
            order = await c.futures_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                                 quantity="0.005", price=f"{bid - 400:.1f}")
            await c.futures_cancel_order(symbol="BTCUSDT", orderId=order["orderId"])
            events = []
            while not any(e.get("o", {}).get("X") == "CANCELED" for e in events):
                events.append(await asyncio.wait_for(sock.recv(), 8))
            out["order"] = order
            out["user"] = events
        print(json.dumps(out))
    finally:
        await c.close_connection()

asyncio.run(main())
"""


def _run(script: str, sim_process: dict) -> dict:
    if not CLIENTS.exists():
        if os.environ.get("CI"):
            pytest.fail("no .venv/clients (scripts/install creates it)")
        pytest.skip("no .venv/clients (scripts/install creates it)")
    done = subprocess.run([str(CLIENTS), "-c", script, sim_process["rest_url"], sim_process["ws_url"], API_KEY,
                           API_SECRET], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    return json.loads(done.stdout.splitlines()[-1])


def _near(a: float, b: float, fraction: float = 0.005) -> bool:
    return abs(a - b) <= abs(b) * fraction


# -- ccxt.pro ---------------------------------------------------------------------------------------------
def test_ccxt_pro_watches_market_and_private_streams(sim_process):
    got = _run(CCXT_PRO, sim_process)
    mark = got["rest_mark"]
    trades = got["trades"]
    assert all(t["symbol"] == "BTC/USDT:USDT" and t["side"] in ("buy", "sell") and t["amount"] > 0
               and _near(t["price"], mark) for t in trades)
    bids, asks = got["book"]["bids"], got["book"]["asks"]
    assert bids[0][0] < asks[0][0] and _near(bids[0][0], mark)  # crossed or stale books fail
    assert [b[0] for b in bids] == sorted((b[0] for b in bids), reverse=True) and all(q > 0 for _, q in bids)
    assert [a[0] for a in asks] == sorted(a[0] for a in asks) and got["book"]["nonce"] > 0
    ticker = got["ticker"]
    assert ticker["symbol"] == "BTC/USDT:USDT" and ticker["low"] <= ticker["last"] <= ticker["high"]
    assert _near(ticker["last"], mark) and ticker["baseVolume"] > 0
    assert got["mark"]["symbol"] == "BTC/USDT:USDT" and _near(got["mark"]["markPrice"], mark, 0.001)
    assert _near(got["mark"]["indexPrice"], mark, 0.001)
    opened, o, h, low, c, v = got["ohlcv"]  # watch_ohlcv: the open 1m candle of the kline stream
    assert opened % 60_000 == 0 and low <= min(o, c) <= max(o, c) <= h and v >= 0 and _near(c, mark)
    # watch_orders: the order placed through ccxt, under its own id, open and then cancelled.
    resting = got["resting"]
    assert resting["streamed"] == resting["id"] and resting["status"] == "open" and resting["amount"] == 0.004
    assert resting["id"] in got["cancelled"]
    # watch_positions and watch_balance: what the stream said is what REST answers after the fill.
    position = got["position"]
    assert position["streamed"] == position["rest"] and position["streamed"] >= 0.003
    assert position["side"] == "long" and position["entry"] == position["rest_entry"]
    assert got["balance"]["streamed"] == got["balance"]["rest"] > 0 and _near(got["balance"]["margin"],
                                                                            got["balance"]["rest"])


def test_ccxt_rest_settings_account_and_trade_families(sim_process):
    got = _run(CCXT_REST, sim_process)
    # fetch_leverage and fetch_margin_mode read GET /fapi/v1/symbolConfig.
    assert got["set_leverage"] == 9 and got["leverage"] == 9 and got["margin_mode"] == "cross"
    assert got["hedged"] is False and got["tiers"] >= 20
    assert got["fee"]["maker"] == 0.0002 and got["fee"]["taker"] == 0.0004
    assert got["bids_asks"]["bid"] < got["bids_asks"]["ask"] and got["funding"] is not None
    filled = got["filled"]
    assert filled["status"] == "closed" and filled["filled"] == 0.002 and filled["id"] in got["closed"]
    assert sum(t["amount"] for t in got["my_trades"]) == pytest.approx(0.002)
    assert all(t["side"] == "buy" and _near(t["price"], filled["average"]) for t in got["my_trades"])
    assert any(p["symbol"] == "BTC/USDT:USDT" and p["contracts"] >= 0.002 and p["side"] == "long"
               for p in got["positions"])
    assert got["balance"]["total"] > 0 and got["balance"]["free"] <= got["balance"]["total"]


# -- python-binance ---------------------------------------------------------------------------------------
def test_python_binance_sync_futures_trade_and_account(sim_process):
    got = _run(PYTHON_BINANCE_SYNC, sim_process)
    placed = got["placed"]
    assert placed["status"] == "NEW" and placed["clientOrderId"] == "pb-sync-1" and placed["origQty"] == "0.008"
    assert got["queried"]["orderId"] == placed["orderId"] and got["queried"]["price"] == placed["price"]
    assert got["modified"]["origQty"] == "0.009"
    (amendment,) = got["amendments"]  # GET /fapi/v1/orderAmendment
    assert amendment["orderId"] == placed["orderId"] and amendment["amendment"]["count"] == 1
    assert amendment["amendment"]["origQty"] == {"before": "0.008", "after": "0.009"}
    assert any(o["orderId"] == placed["orderId"] for o in got["open"])
    assert got["cancelled"]["orderId"] == placed["orderId"] and got["cancelled"]["status"] == "CANCELED"
    assert got["leverage"]["leverage"] == 20 and got["leverage"]["symbol"] == "BTCUSDT"
    assert got["balance"][0]["asset"] == "USDT" and float(got["balance"][0]["balance"]) > 0
    (position,) = got["positions"]
    assert position["symbol"] == "BTCUSDT" and position["positionSide"] == "BOTH"
    assert float(position["openOrderInitialMargin"]) > 0
    assert all(float(p["positionAmt"]) != 0 for p in got["flat"])  # v3 leaves out a flat symbol without orders
    assert got["fee"]["symbol"] == "BTCUSDT" and got["dual"] == {"dualSidePosition": False}
    assert len(got["listen_key"]) == 64
    bid, ask = float(got["book"]["bids"][0][0]), float(got["book"]["asks"][0][0])
    assert bid < ask and _near(float(got["premium"]["markPrice"]), bid)
    assert all(_near(float(t["p"]), bid) for t in got["agg"])


def test_python_binance_async_client_and_futures_sockets(sim_process):
    got = _run(PYTHON_BINANCE_ASYNC, sim_process)
    bid, ask = float(got["depth"]["bids"][0][0]), float(got["depth"]["asks"][0][0])
    mark = float(got["mark"]["markPrice"])
    assert bid < ask and _near(bid, mark) and _near(float(got["ticker"]["price"]), mark)
    assert len(got["klines"]) >= 1 and all(len(k) == 12 for k in got["klines"])
    assert float(got["wallet"]) > 0
    depth = got["depth_ws"]  # python-binance opens futures sockets as combined streams
    assert depth["stream"] == "btcusdt@depth5" and len(depth["data"]["b"]) == 5 and len(depth["data"]["a"]) == 5
    assert float(depth["data"]["b"][0][0]) < float(depth["data"]["a"][0][0])
    assert depth["data"]["pu"] < depth["data"]["u"]
    marked = got["mark_ws"]
    assert marked["stream"] == "btcusdt@markPrice@1s" and _near(float(marked["data"]["p"]), mark, 0.001)
    streams = {m["stream"] for m in got["multiplex"]}
    assert streams <= {"btcusdt@aggTrade", "btcusdt@bookTicker"} and streams
    for m in got["multiplex"]:
        if m["stream"] == "btcusdt@bookTicker":
            assert float(m["data"]["b"]) < float(m["data"]["a"])
    order_id = got["order"]["orderId"]
    mine = [e["o"] for e in got["user"] if e.get("e") == "ORDER_TRADE_UPDATE" and e["o"]["i"] == order_id]
    assert [o["X"] for o in mine] == ["NEW", "CANCELED"] and mine[0]["p"] == got["order"]["price"]


# -- binance-futures-connector ----------------------------------------------------------------------------
@pytest.fixture
def connector(sim_process):
    return UMFutures(key=API_KEY, secret=API_SECRET, base_url=sim_process["rest_url"])


def test_connector_market_family(connector):
    book = connector.book_ticker("BTCUSDT")
    bid, ask = float(book["bidPrice"]), float(book["askPrice"])
    assert bid < ask
    ticker = connector.ticker_24hr_price_change("BTCUSDT")
    assert float(ticker["lowPrice"]) <= float(ticker["lastPrice"]) <= float(ticker["highPrice"])
    assert _near(float(connector.ticker_price("BTCUSDT")["price"]), bid)
    klines = connector.klines("BTCUSDT", "1m", limit=3)
    assert klines and all(float(k[3]) <= min(float(k[1]), float(k[4])) <= float(k[2]) for k in klines)
    assert all(_near(float(t["p"]), bid) for t in connector.agg_trades("BTCUSDT", limit=5))
    assert all(_near(float(t["price"]), bid) for t in connector.trades("BTCUSDT", limit=5))
    assert _near(float(connector.mark_price_klines("BTCUSDT", "1m", limit=1)[-1][4]), bid)
    assert float(connector.open_interest("BTCUSDT")["openInterest"]) >= 0
    assert connector.time()["serverTime"] > 0 and connector.ping() == {}
    recent = connector.trades("BTCUSDT", limit=3)
    older = connector.historical_trades("BTCUSDT", fromId=recent[0]["id"], limit=2)  # MARKET_DATA: a key
    assert [t["id"] for t in older] == [t["id"] for t in recent[:2]]
    with pytest.raises(urllib.error.HTTPError) as err:  # the connector itself refuses to send it keyless
        urllib.request.urlopen(f"{connector.base_url}/fapi/v1/historicalTrades?symbol=BTCUSDT", timeout=5)
    assert err.value.code == 401 and json.loads(err.value.read())["code"] == -2014


def test_connector_trade_and_account_families(connector):
    bid = float(connector.book_ticker("BTCUSDT")["bidPrice"])
    order = connector.new_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.006",
                                price=f"{bid - 250:.1f}")
    amended = connector.modify_order(symbol="BTCUSDT", side="BUY", orderId=order["orderId"], quantity="0.007",
                                     price=f"{bid - 260:.1f}")
    assert amended["orderId"] == order["orderId"] and amended["origQty"] == "0.007"
    listed = connector.get_open_orders(symbol="BTCUSDT", orderId=order["orderId"])
    assert float(listed["price"]) == round(bid - 260, 1)
    assert any(o["orderId"] == order["orderId"] for o in connector.get_orders(symbol="BTCUSDT"))
    assert connector.cancel_order(symbol="BTCUSDT", orderId=order["orderId"])["status"] == "CANCELED"
    assert any(o["orderId"] == order["orderId"] and o["status"] == "CANCELED"
               for o in connector.get_all_orders(symbol="BTCUSDT"))
    fee = connector.commission_rate(symbol="BTCUSDT")
    assert fee["symbol"] == "BTCUSDT" and float(fee["takerCommissionRate"]) > float(fee["makerCommissionRate"])
    assert connector.get_position_mode()["dualSidePosition"] is False
    brackets = connector.leverage_brackets(symbol="BTCUSDT")
    assert brackets[0]["symbol"] == "BTCUSDT" if isinstance(brackets, list) else brackets["symbol"] == "BTCUSDT"
    wallet = connector.account()["totalWalletBalance"]
    assert connector.balance()[0]["balance"] == wallet


def test_connector_websocket_streams_and_user_stream(connector, sim_process):
    key = connector.new_listen_key()["listenKey"]
    received: list[dict] = []
    ws = UMFuturesWebsocketClient(stream_url=sim_process["ws_url"],
                                  on_message=lambda _, message: received.append(json.loads(message)))
    kinds = {"aggTrade", "markPriceUpdate", "bookTicker", "depthUpdate", "24hrTicker", "24hrMiniTicker", "kline"}
    try:
        ws.agg_trade(symbol="btcusdt")
        ws.mark_price(symbol="btcusdt", speed=1)
        ws.book_ticker(symbol="btcusdt")
        ws.partial_book_depth(symbol="btcusdt", level=5, speed=100)
        ws.ticker(symbol="btcusdt")
        ws.mini_ticker(symbol="btcusdt")
        ws.kline(symbol="btcusdt", interval="1m")
        ws.user_data(listen_key=key)
        wait_until(lambda: sum(1 for d in list(received) if "result" in d) >= 8, 10, "eight subscriptions")
        order = connector.new_order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.050")
        wait_until(lambda: kinds <= {d.get("e") for d in list(received)} and any(
            d.get("e") == "ORDER_TRADE_UPDATE" and d["o"]["i"] == order["orderId"] and d["o"]["X"] == "FILLED"
            for d in list(received)), 10, "every stream and the order's fill")
    finally:
        ws.stop()
        # Flat again: the session's simulator serves other tests, which read positions absolutely.
        connector.new_order(symbol="ETHUSDT", side="SELL", type="MARKET", quantity="0.050", reduceOnly="true")
    events = list(received)
    fill = next(d["o"] for d in events if d.get("e") == "ORDER_TRADE_UPDATE" and d["o"]["X"] == "FILLED"
                and d["o"]["i"] == order["orderId"])
    assert fill["s"] == "ETHUSDT" and fill["z"] == "0.050"
    lite = [d for d in events if d.get("e") == "TRADE_LITE" and d["i"] == order["orderId"]]
    assert lite and lite[-1]["L"] == fill["L"]  # one TRADE_LITE per fill; the order may take several levels
    assert sum(round(float(d["l"]) * 1000) for d in lite) == 50
    depth = next(d for d in events if d.get("e") == "depthUpdate")
    assert len(depth["b"]) == 5 and float(depth["b"][0][0]) < float(depth["a"][0][0])
    ticker = next(d for d in events if d.get("e") == "24hrTicker")
    assert ticker["s"] == "BTCUSDT" and float(ticker["l"]) <= float(ticker["c"]) <= float(ticker["h"])
    mini = next(d for d in events if d.get("e") == "24hrMiniTicker")
    assert set(mini) == {"e", "E", "s", "c", "o", "h", "l", "v", "q"}
    kline = next(d["k"] for d in events if d.get("e") == "kline")
    assert kline["i"] == "1m" and kline["T"] - kline["t"] == 59_999 and kline["f"] <= kline["L"]
    assert float(kline["l"]) <= float(kline["c"]) <= float(kline["h"])
    book = next(d for d in events if d.get("e") == "bookTicker")
    assert float(book["b"]) < float(book["a"])
    assert connector.close_listen_key(key) == {}

