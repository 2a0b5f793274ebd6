"""Every recorded venue payload in data/binance/samples against the simulator's answer to the same call.

For each sample whose endpoint or stream the simulator serves, the test makes the simulator produce the
same answer over real sockets on 127.0.0.1 (REST calls, a combined market stream, the user data stream
after placing, filling and liquidating orders) and compares them recursively: the same key set, the same
JSON type per key (decimal strings stay strings, ints ints, bools bools) and enum values from the venue's
allowed set (and, per sample, values that name the kind of payload equal to the recording's). SAMPLES maps
each sample file to the simulator answer it is compared with, HOW says how each answer is obtained, and
SKIPPED names every other file with the reason. A key the recorded payload has and the simulator cannot (or
the other way round) is allowed only per sample, in its allow-list, with the reason.

Two properties of the recordings are part of the rules, from data/binance/samples/PROVENANCE.md: ccxt's
recorder stores integers as strings ("orderId": "664082074"), so in ccxt samples a string of digits
stands for an int; nautilus's hand-made fixtures write null for a field they leave unset, so a null
sample value fixes no type.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tests.conftest import SAMPLES as SAMPLE_DIR
from tests.conftest import load_sample
from tests.sim.conftest import API_KEY, signed_query

HEADERS = {"X-MBX-APIKEY": API_KEY}

# -- allowed enum values (PROTOCOL.md §5, §7; Binance "Common Definition" of USD-M futures) ---------------
ORDER_STATUS = {"NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH",
                "NEW_INSURANCE", "NEW_ADL"}
ORDER_TYPE = {"LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
              "TRAILING_STOP_MARKET", "LIQUIDATION"}
EXECUTION = {"NEW", "CANCELED", "CALCULATED", "EXPIRED", "TRADE", "AMENDMENT"}
TIF = {"GTC", "IOC", "FOK", "GTX", "GTD"}
SIDE = {"BUY", "SELL"}
POSITION_SIDE = {"BOTH", "LONG", "SHORT"}
WORKING = {"MARK_PRICE", "CONTRACT_PRICE"}
STP = {"NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"}
PRICE_MATCH = {"NONE", "OPPONENT", "OPPONENT_5", "OPPONENT_10", "OPPONENT_20", "QUEUE", "QUEUE_5", "QUEUE_10",
               "QUEUE_20"}
UPDATE_REASON = {"DEPOSIT", "WITHDRAW", "ORDER", "FUNDING_FEE", "WITHDRAW_REJECT", "ADJUSTMENT",
                 "INSURANCE_CLEAR", "ADMIN_DEPOSIT", "ADMIN_WITHDRAW", "MARGIN_TRANSFER", "MARGIN_TYPE_CHANGE",
                 "ASSET_TRANSFER", "OPTIONS_PREMIUM_FEE", "OPTIONS_SETTLE_PROFIT", "AUTO_EXCHANGE",
                 "COIN_SWAP_DEPOSIT", "COIN_SWAP_WITHDRAW"}
FILTERS = {"PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "MAX_NUM_ORDERS", "MAX_NUM_ALGO_ORDERS",
           "MIN_NOTIONAL", "PERCENT_PRICE", "POSITION_RISK_CONTROL"}
EVENTS = {"depthUpdate", "bookTicker", "trade", "aggTrade", "markPriceUpdate", "24hrTicker", "kline",
          "forceOrder", "ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE", "TRADE_LITE"}
SAME = {"e", "stream"}
"""Keys whose value must be the recording's own: the simulator's answer is the same kind of payload."""

# Keyed by the path with list positions written [] and any leading [] or data. wrapper dropped.
ENUMS: dict[str, set[str]] = {
    "status": ORDER_STATUS, "type": ORDER_TYPE, "origType": ORDER_TYPE, "side": SIDE, "timeInForce": TIF,
    "positionSide": POSITION_SIDE, "workingType": WORKING, "selfTradePreventionMode": STP,
    "priceMatch": PRICE_MATCH, "marginType": {"cross", "isolated"}, "e": EVENTS,
    "o.X": ORDER_STATUS, "o.x": EXECUTION, "o.o": ORDER_TYPE, "o.ot": ORDER_TYPE, "o.S": SIDE, "o.f": TIF,
    "o.ps": POSITION_SIDE, "o.wt": WORKING, "o.V": STP, "o.pm": PRICE_MATCH, "S": SIDE,
    "a.m": UPDATE_REASON, "a.P[].mt": {"cross", "isolated"}, "a.P[].ps": POSITION_SIDE,
    "X": {"MARKET", "ADL", "INSURANCE_FUND", "NA"},  # a trade stream's execution kind
    "symbols[].status": {"TRADING", "PENDING_TRADING", "PRE_DELIVERING", "DELIVERING", "DELIVERED",
                         "PRE_SETTLE", "SETTLING", "CLOSE"},
    "symbols[].contractType": {"PERPETUAL", "CURRENT_MONTH", "NEXT_MONTH", "CURRENT_QUARTER", "NEXT_QUARTER",
                               "PERPETUAL_DELIVERING", "TRADIFI_PERPETUAL", ""},
    "symbols[].orderTypes[]": ORDER_TYPE - {"LIQUIDATION"}, "symbols[].timeInForce[]": TIF,
    "symbols[].filters[].filterType": FILTERS, "futuresType": {"U_MARGINED"},
}


@dataclass(frozen=True)
class Sample:
    answer: str
    """The key of the simulator's answer in `Answers` (how it is obtained: see `collect`)."""
    sample_only: dict[str, str] = field(default_factory=dict)
    """Paths the recording has and the simulator may lack, each with why."""
    sim_only: dict[str, str] = field(default_factory=dict)
    """Paths the simulator sends and the recording lacks, each with why."""
    enums: dict[str, set[str]] = field(default_factory=dict)
    """This endpoint's own spelling of an enum, over ENUMS."""
    same: frozenset[str] = frozenset()
    """Paths whose value must be the recording's own (the kind of event it is)."""


CLOSED_KLINE = "stepped:btcusdt@kline_1m:closed"
LIQUIDATION_FILL = frozenset({"o.x", "o.X"})  # a liquidation's fill: CALCULATED, FILLED (PROTOCOL.md §7.1)
SYMBOL_CONFIG = {"marginType": {"CROSSED", "ISOLATED"}}  # positionRisk spells them cross / isolated
NAUTILUS_STREAM_EXTRAS = {"st": "nautilus's hand-made fixture; no real USD-M capture (hftbacktest) has it",
                          "ps": "nautilus's hand-made fixture; no real USD-M capture (hftbacktest) has it"}
OTU_TRAILING = {"o.AP": "activation price, sent with TRAILING_STOP_MARKET orders only (Binance docs)",
                "o.cr": "callback rate, sent with TRAILING_STOP_MARKET orders only (Binance docs)"}
OTU_NEWER = {"o.pm": "price match, added to the event in 2023, after this fixture was written",
             "o.gtd": "good-till-date, added to the event in 2023, after this fixture was written",
             "o.er": "expiry reason, added to the event in 2024, after this fixture was written"}
OTU_NAUTILUS_W = {"o.W": "nautilus-only field of its hand-made fixtures, in no Binance documentation"}
OTU_NO_N = {"o.N": "commission asset: the docs omit it while nothing was paid; the simulator always sends it",
            "o.n": "commission: the docs omit it while nothing was paid; the simulator always sends it"}

# sample file -> the simulator's answer it is compared with.
SAMPLES: dict[str, Sample] = {
    # REST market data
    "ccxt/ccxt_fapi_v1_depth_limit5.json": Sample("depth5"),
    "nautilus/py_http_futures_market_depth.json": Sample("depth5"),
    "hftbacktest/real_rest_depth_snapshot_btcusdt_limit1000.json": Sample("depth1000"),
    "ccxt/ccxt_fapi_v1_klines_1m.json": Sample("klines"),
    "nautilus/py_http_futures_market_klines.json": Sample("klines"),
    "nautilus/py_http_futures_market_continuous_klines.json": Sample("continuous_klines"),
    "nautilus/py_http_futures_market_mark_price_klines.json": Sample("mark_klines"),
    "nautilus/py_http_futures_market_index_price_klines.json": Sample("index_klines"),
    "nautilus/py_http_futures_market_agg_trades.json": Sample("agg_trades"),
    "nautilus/py_http_futures_market_trades.json": Sample("trades"),
    "nautilus/py_http_futures_market_historical_trades.json": Sample("historical_trades"),
    "nautilus/py_http_futures_market_book_ticker.json": Sample("book_ticker"),
    "nautilus/py_http_futures_market_exchange_info.json": Sample("exchange_info"),
    "nautilus/py_http_futures_market_funding_rate.json": Sample("funding_rate", sim_only={
        "[].markPrice": "added to the answer after this fixture was written (Binance docs list it)"}),
    "nautilus/py_http_futures_market_open_interest.json": Sample("open_interest"),
    "nautilus/py_http_futures_market_premium_index.json": Sample("premium_index"),
    "nautilus/py_http_futures_market_ticker_24hr.json": Sample("ticker_24hr"),
    "nautilus/py_http_futures_market_ticker_price.json": Sample("ticker_price"),
    # REST orders
    "nautilus/rs_order_response.json": Sample("order_new", sample_only={
        "time": "hand-made fixture: the real batchOrders capture (ccxt) and the docs' example of a placement "
                "answer carry no time"}, sim_only={
        "cumQty": "placement answers carry cumQty: the real batchOrders capture (ccxt) and the docs' example"}),
    "ccxt/ccxt_fapi_v1_openOrder_GTX_LTCUSDT.json": Sample("open_order_gtx"),
    "ccxt/ccxt_fapi_v1_batchOrders_POST_response.json": Sample("batch_new"),
    "ccxt/ccxt_fapi_v1_batchOrders_PUT_modify_response.json": Sample("batch_amend"),
    "nautilus/py_http_futures_account_orders.json": Sample("open_orders_trailing", sim_only={
        f"[].{k}": "added to order answers in 2023; this fixture's order is from January 2020"
        for k in ("selfTradePreventionMode", "priceMatch", "goodTillDate")}),
    "ccxt/ccxt_fapi_v1_userTrades.json": Sample("user_trades"),
    "nautilus/py_http_futures_account_trades.json": Sample("user_trades"),
    # REST account
    "ccxt/ccxt_fapi_v2_account_no_positions.json": Sample("account_v2"),
    "nautilus/rs_account_info_v2.json": Sample("account_v2"),
    "ccxt/ccxt_fapi_v3_account_with_position.json": Sample("account_v3"),
    "ccxt/ccxt_fapi_v3_positionRisk_BTCUSDT.json": Sample("position_risk_v3"),
    "nautilus/rs_position_risk.json": Sample("position_risk_v2"),
    "nautilus/py_http_futures_account_positions_one_way.json": Sample("position_risk_v2", sim_only={
        "[].notional": "added to v2 positionRisk after this fixture was written (Binance docs list it)",
        "[].isolatedWallet": "added to v2 positionRisk after this fixture was written (Binance docs list it)",
        "[].breakEvenPrice": "added to v2 positionRisk in 2023, after this fixture was written"}),
    "nautilus/py_http_futures_account_positions_hedge.json": Sample("position_risk_v2", sim_only={
        "[].notional": "added to v2 positionRisk after this fixture was written (Binance docs list it)",
        "[].isolatedWallet": "added to v2 positionRisk after this fixture was written (Binance docs list it)",
        "[].breakEvenPrice": "added to v2 positionRisk in 2023, after this fixture was written"}),
    "nautilus/rs_balance.json": Sample("balance"),
    "ccxt/ccxt_fapi_v1_symbolConfig.json": Sample("symbol_config", enums=SYMBOL_CONFIG),
    "nautilus/py_http_futures_account_symbol_config.json": Sample("symbol_config", enums=SYMBOL_CONFIG),
    "nautilus/py_http_futures_account_position_side_dual.json": Sample("position_side"),
    "nautilus/py_http_futures_wallet_commission_rate_btcusdt.json": Sample("commission_btc"),
    "nautilus/py_http_futures_wallet_commission_rate_ethusdt.json": Sample("commission_eth"),
    # market streams
    "hftbacktest/real_ws_combined_depthUpdate_btcusdt.json": Sample("ws:btcusdt@depth@0ms"),
    "hftbacktest/real_ws_combined_bookTicker_btcusdt.json": Sample("ws:btcusdt@bookTicker"),
    "hftbacktest/real_ws_combined_trade_btcusdt.json": Sample("ws:btcusdt@trade"),
    "nautilus/rs_depth_update_stream.json": Sample("data:btcusdt@depth", sample_only=NAUTILUS_STREAM_EXTRAS),
    "nautilus/py_ws_futures_depth_diff_update.json": Sample("data:btcusdt@depth"),
    "nautilus/py_ws_futures_depth_update.json": Sample("data:btcusdt@depth5", sample_only=NAUTILUS_STREAM_EXTRAS),
    "nautilus/rs_book_ticker_stream.json": Sample("data:btcusdt@bookTicker", sample_only=NAUTILUS_STREAM_EXTRAS),
    "nautilus/py_ws_futures_book_ticker.json": Sample("data:btcusdt@bookTicker", sample_only=NAUTILUS_STREAM_EXTRAS),
    "nautilus/rs_agg_trade_stream.json": Sample("data:btcusdt@aggTrade", sample_only={
        "st": NAUTILUS_STREAM_EXTRAS["st"]}, sim_only={
        "nq": "normal quantity (without RPI orders), added to aggTrade in 2025, after this fixture"}),
    "nautilus/rs_trade_stream.json": Sample("data:btcusdt@trade", sim_only={
        "T": "trade time: the real capture (hftbacktest) has it, the hand-made fixture left it out",
        "X": "execution kind: the real capture (hftbacktest) has it, the hand-made fixture left it out"}),
    "nautilus/rs_ticker_stream.json": Sample("data:btcusdt@ticker", sample_only={"st": NAUTILUS_STREAM_EXTRAS["st"]}),
    "nautilus/py_ws_futures_ticker_24hr.json": Sample("data:btcusdt@ticker",
                                                      sample_only={"st": NAUTILUS_STREAM_EXTRAS["st"]}),
    "nautilus/rs_kline_stream_open.json": Sample("data:btcusdt@kline_1m", same=frozenset({"k.x", "k.i"})),
    # A closed candle needs the minute to roll over: test_a_closed_kline_as_recorded steps a venue's clock.
    "nautilus/rs_kline_stream_closed.json": Sample(CLOSED_KLINE, same=frozenset({"k.x", "k.i"})),
    "nautilus/rs_liquidation_stream.json": Sample("data:ethusdt@forceOrder"),
    "nautilus/rs_mark_price_stream.json": Sample("data:btcusdt@markPrice@1s",
                                                 sample_only={"st": NAUTILUS_STREAM_EXTRAS["st"]}),
    # user data stream
    "nautilus/rs_order_update_new.json": Sample("user:NEW:TRAILING_STOP_MARKET", sim_only=OTU_NEWER),
    "nautilus/rs_order_update_trade.json": Sample("user:TRADE:MARKET", sample_only=OTU_TRAILING, sim_only=OTU_NEWER),
    "nautilus/rs_order_update_trade_partial.json": Sample("user:TRADE:MARKET", sample_only=OTU_TRAILING,
                                                          sim_only=OTU_NEWER),
    "nautilus/py_ws_futures_order_update_new_price_match.json": Sample(
        "user:NEW:LIMIT", sample_only=OTU_TRAILING | OTU_NAUTILUS_W, sim_only={"o.pm": OTU_NEWER["o.pm"],
                                                                               "o.er": OTU_NEWER["o.er"]}),
    "nautilus/py_ws_futures_order_update_new_stop_limit_price_match.json": Sample(
        "user:NEW:STOP", sample_only=OTU_TRAILING | OTU_NAUTILUS_W, sim_only={"o.pm": OTU_NEWER["o.pm"],
                                                                              "o.er": OTU_NEWER["o.er"]}),
    "nautilus/py_ws_futures_order_update_new_limit_if_touched_price_match.json": Sample(
        "user:NEW:TAKE_PROFIT", sample_only=OTU_TRAILING | OTU_NAUTILUS_W,
        sim_only={"o.pm": OTU_NEWER["o.pm"], "o.er": OTU_NEWER["o.er"]}),
    "nautilus/py_ws_futures_order_update_new_reduce_only_qty.json": Sample(
        "user:NEW:LIMIT:reduce", sample_only=OTU_TRAILING | OTU_NAUTILUS_W,
        sim_only={"o.pm": OTU_NEWER["o.pm"], "o.er": OTU_NEWER["o.er"]}),
    "nautilus/py_ws_futures_order_update_trade_reduce_only_qty.json": Sample(
        "user:TRADE:MARKET:reduce", sample_only=OTU_TRAILING | OTU_NAUTILUS_W,
        sim_only={"o.pm": OTU_NEWER["o.pm"], "o.er": OTU_NEWER["o.er"]}),
    # Liquidations, ADL and the insurance fund close a position with an autoclose order; the simulator
    # liquidates (check_liquidations) and its autoclose events stand for all of them.
    "nautilus/py_ws_futures_order_update_liquidation.json": Sample(
        "user:CALCULATED:autoclose", sample_only=OTU_TRAILING | OTU_NAUTILUS_W,
        sim_only={"o.pm": OTU_NEWER["o.pm"], "o.er": OTU_NEWER["o.er"]}, same=LIQUIDATION_FILL),
    "nautilus/py_ws_futures_order_update_liquidation_zero_qty.json": Sample(
        "user:CALCULATED:autoclose", sample_only=OTU_TRAILING | OTU_NAUTILUS_W,
        sim_only={"o.pm": OTU_NEWER["o.pm"], "o.er": OTU_NEWER["o.er"]}),
    "nautilus/py_ws_futures_order_update_adl.json": Sample(
        "user:CALCULATED:autoclose", sample_only=OTU_TRAILING | OTU_NAUTILUS_W,
        sim_only={"o.pm": OTU_NEWER["o.pm"], "o.er": OTU_NEWER["o.er"]}),
    "nautilus/py_ws_futures_order_update_adl_filled.json": Sample(
        "user:CALCULATED:autoclose", sample_only=OTU_TRAILING | OTU_NAUTILUS_W,
        sim_only={"o.pm": OTU_NEWER["o.pm"], "o.er": OTU_NEWER["o.er"]}),
    "nautilus/rs_order_update_adl.json": Sample("user:CALCULATED:autoclose", sample_only=OTU_TRAILING,
                                                sim_only=OTU_NEWER),
    "nautilus/rs_order_update_calculated.json": Sample("user:CALCULATED:autoclose", sample_only=OTU_TRAILING,
                                                       sim_only=OTU_NEWER, same=LIQUIDATION_FILL),
    "nautilus/rs_order_update_insurance.json": Sample("user:CALCULATED:autoclose", sample_only=OTU_TRAILING,
                                                      sim_only=OTU_NEWER),
    "nautilus/rs_order_update_calculated_pending.json": Sample("user:CALCULATED:NEW:autoclose", sample_only=OTU_TRAILING,
                                                               sim_only=OTU_NEWER | OTU_NO_N),
    "nautilus/rs_trade_lite.json": Sample("user:TRADE_LITE"),
    "nautilus/py_ws_futures_trade_lite.json": Sample("user:TRADE_LITE"),
    "nautilus/rs_account_update.json": Sample("user:ACCOUNT_UPDATE", sim_only={
        "a.P[].ma": "margin asset, added to the event with multi-assets mode, after this fixture"}),
    "nautilus/rs_account_update_bnfcr.json": Sample("user:ACCOUNT_UPDATE:funding"),
}

# answer key -> how the simulator is made to give it (collect, _drive and test_a_closed_kline_as_recorded).
# "ws:<stream>" is a frame of the combined stream /stream?streams=..., "data:<stream>" its payload, "user:<x>:<kind>"
# the first ORDER_TRADE_UPDATE of execution type x for that kind of order on the listenKey stream.
HOW: dict[str, str] = {
    "depth5": "GET /fapi/v1/depth?symbol=BTCUSDT&limit=5", "depth1000": "GET /fapi/v1/depth?...&limit=1000",
    "klines": "GET /fapi/v1/klines 1m", "continuous_klines": "GET /fapi/v1/continuousKlines PERPETUAL 1m",
    "mark_klines": "GET /fapi/v1/markPriceKlines 1m", "index_klines": "GET /fapi/v1/indexPriceKlines 1m",
    "agg_trades": "GET /fapi/v1/aggTrades", "trades": "GET /fapi/v1/trades",
    "historical_trades": "GET /fapi/v1/historicalTrades fromId=<first recent trade> (API key)",
    "book_ticker": "GET /fapi/v1/ticker/bookTicker?symbol=BTCUSDT", "exchange_info": "GET /fapi/v1/exchangeInfo",
    "funding_rate": "GET /fapi/v1/fundingRate after one funding settlement",
    "open_interest": "GET /fapi/v1/openInterest", "premium_index": "GET /fapi/v1/premiumIndex?symbol=BTCUSDT",
    "ticker_24hr": "GET /fapi/v1/ticker/24hr?symbol=BTCUSDT", "ticker_price": "GET /fapi/v1/ticker/price",
    "order_new": "POST /fapi/v1/order LIMIT GTC below the bid",
    "open_order_gtx": "POST /fapi/v1/order LIMIT GTX below the bid, then GET /fapi/v1/openOrder",
    "batch_new": "POST /fapi/v1/batchOrders, two LIMITs", "batch_amend": "PUT /fapi/v1/batchOrders on those two",
    "open_orders_trailing": "POST a TRAILING_STOP_MARKET, then its entry of GET /fapi/v1/openOrders",
    "user_trades": "GET /fapi/v1/userTrades after a MARKET buy and a reduce-only MARKET sell",
    "account_v2": "GET /fapi/v2/account with a position open", "account_v3": "GET /fapi/v3/account, same",
    "position_risk_v2": "GET /fapi/v2/positionRisk?symbol=BTCUSDT", "position_risk_v3": "GET /fapi/v3/positionRisk",
    "balance": "GET /fapi/v2/balance", "position_side": "GET /fapi/v1/positionSide/dual",
    "symbol_config": "GET /fapi/v1/symbolConfig", "commission_btc": "GET /fapi/v1/commissionRate?symbol=BTCUSDT",
    "commission_eth": "GET /fapi/v1/commissionRate?symbol=ETHUSDT",
    "ws:btcusdt@depth@0ms": "combined frame of btcusdt@depth@0ms", "ws:btcusdt@bookTicker": "combined frame",
    "ws:btcusdt@trade": "combined frame", "data:btcusdt@depth": "btcusdt@depth payload",
    "data:btcusdt@depth5": "btcusdt@depth5 payload", "data:btcusdt@bookTicker": "btcusdt@bookTicker payload",
    "data:btcusdt@aggTrade": "btcusdt@aggTrade payload", "data:btcusdt@trade": "btcusdt@trade payload",
    "data:btcusdt@markPrice@1s": "btcusdt@markPrice@1s payload", "data:btcusdt@ticker": "btcusdt@ticker payload",
    "data:btcusdt@kline_1m": "btcusdt@kline_1m payload (the open candle)",
    "data:ethusdt@forceOrder": "ethusdt@forceOrder payload, of the liquidation below",
    CLOSED_KLINE: "btcusdt@kline_1m on a stepped venue: the candle sent closed when the minute rolls over",
    "user:NEW:TRAILING_STOP_MARKET": "the NEW event of the trailing stop placed above",
    "user:NEW:LIMIT": "the NEW event of the first LIMIT", "user:NEW:STOP": "the NEW event of a STOP above the ask",
    "user:NEW:TAKE_PROFIT": "the NEW event of a TAKE_PROFIT sell above the ask",
    "user:NEW:LIMIT:reduce": "the NEW event of a reduce-only LIMIT sell", "user:TRADE:MARKET": "a MARKET buy's fill",
    "user:TRADE:MARKET:reduce": "a reduce-only MARKET sell's fill",
    "user:CALCULATED:NEW:autoclose": "the pending (CALCULATED, NEW) event of the liquidation order, after /_sim/position set an ETHUSDT long at "
                          "three times the mark",
    "user:CALCULATED:autoclose": "that liquidation order's fill", "user:TRADE_LITE": "the MARKET buy's TRADE_LITE",
    "user:ACCOUNT_UPDATE": "the MARKET buy's ACCOUNT_UPDATE (reason ORDER)",
    "user:ACCOUNT_UPDATE:funding": "a funding settlement's ACCOUNT_UPDATE (FUNDING_FEE, balance only)",
}

ALGO = "algo orders (ALGO_UPDATE, /fapi/v1/openAlgoOrders) are being added by helper simalgo (h-simalgo)"
NOT_SERVED = "the simulator does not serve this endpoint"
SKIPPED: dict[str, str] = {
    "nautilus/rs_algo_update_new.json": ALGO, "nautilus/rs_algo_update_canceled.json": ALGO,
    "nautilus/py_ws_futures_algo_update_finished.json": ALGO,
    "nautilus/py_ws_futures_algo_update_finished_canceled.json": ALGO,
    "nautilus/py_ws_futures_algo_update_triggered.json": ALGO,
    "nautilus/py_ws_futures_algo_update_triggering.json": ALGO, "nautilus/rs_open_algo_orders.json": ALGO,
    "nautilus/py_http_futures_market_asset_index.json": NOT_SERVED + " (multi-assets GET /fapi/v1/assetIndex; "
                                                                     "multiAssetsMargin is helper simwsapi's)",
    "nautilus/py_http_futures_market_index_info.json": NOT_SERVED + " (composite indexes, GET /fapi/v1/indexInfo)",
    "nautilus/py_http_futures_market_blvt_nav_kline.json": NOT_SERVED + " (BLVT NAV klines)",
    "nautilus/py_http_futures_market_open_interest_historical.json": NOT_SERVED + " (/futures/data/openInterestHist)",
    "nautilus/py_http_futures_market_global_long_short_account_ratio.json": NOT_SERVED + " (/futures/data/...)",
    "nautilus/py_http_futures_market_top_long_short_account_ratio.json": NOT_SERVED + " (/futures/data/...)",
    "nautilus/py_http_futures_market_top_long_short_position_ratio.json": NOT_SERVED + " (/futures/data/...)",
    "nautilus/py_http_futures_market_taker_long_short_ratio.json": NOT_SERVED + " (/futures/data/...)",
    "nautilus/py_http_futures_wallet_commission_rate_btcusdt_quarterly.json":
        "a quarterly delivery contract (BTCUSDT_yymmdd); the simulator lists perpetuals only",
    "nautilus/rs_order_update_delivery.json": "a COIN-M delivery contract (BTCUSD_240329); the simulator is USD-M",
    "nautilus/rs_order_update_settlement.json": "settlement of a delisted or delivered contract; the simulator "
                                                "neither delists nor delivers",
    "nautilus/py_ws_futures_order_update_settlement.json": "settlement of a delisted or delivered contract; the "
                                                           "simulator neither delists nor delivers",
}


# -- the comparison ------------------------------------------------------------------------------------
INT_TEXT = re.compile(r"-?\d+")


def _kind(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str", type(None): "null", dict: "object",
            list: "array"}[type(value)]


def _enum_key(path: str) -> str:
    for prefix in ("data.", "[]."):
        path = path.removeprefix(prefix)
    return path


def _discriminator(item: Any) -> Any:
    if isinstance(item, dict):
        for key in ("filterType", "rateLimitType", "asset", "symbol"):
            if key in item:
                return key, item[key], item.get("interval")
    return None


def compare(sample: Any, sim: Any, *, sample_only: dict[str, str] | None = None,
            sim_only: dict[str, str] | None = None, int_text: bool = False, path: str = "",
            enums: dict[str, set[str]] | None = None) -> list[str]:
    """Every difference of key set, JSON type and enum value between a recorded payload and the simulator's."""
    sample_only, sim_only, enums = sample_only or {}, sim_only or {}, enums or ENUMS
    at = path or "<top>"
    problems: list[str] = []
    if sample is None:
        return problems  # a fixture's unset field fixes no type
    want, got = _kind(sample), _kind(sim)
    if int_text and want == "str" and got == "int" and INT_TEXT.fullmatch(sample):
        return problems  # ccxt's recorder wrote this int as a string
    if want != got:
        return [f"{at}: recorded {want} {sample!r}, simulator {got} {sim!r}"]
    if isinstance(sample, dict):
        for key in sample.keys() - sim.keys():
            if _join(path, key) not in sample_only:
                problems.append(f"{at}: key {key!r} recorded, missing from the simulator")
        for key in sim.keys() - sample.keys():
            if _join(path, key) not in sim_only:
                problems.append(f"{at}: key {key!r} from the simulator, not in the recording")
        for key in sample.keys() & sim.keys():
            problems += compare(sample[key], sim[key], sample_only=sample_only, sim_only=sim_only,
                                int_text=int_text, path=_join(path, key), enums=enums)
    elif isinstance(sample, list):
        if not sample:
            return problems
        if not sim:
            return [f"{at}: recorded a non-empty array, the simulator's is empty"]
        items = path + "[]"
        if not isinstance(sample[0], (dict, list)) and len(sample) == len(sim) and len(sample) <= 12:
            pairs = list(zip(sample, sim))  # a fixed row: a kline, a price level
        else:
            by_key = {_discriminator(s): s for s in sample}
            pairs = [(by_key.get(_discriminator(s), sample[0]), s) for s in sim]
            if by_key.keys() != {None}:
                served = {_discriminator(s)[:2] for s in sim}
                problems += [f"{at}: recorded item {k[:2]} missing from the simulator" for k in by_key
                             if k is not None and k[0] == "filterType" and k[:2] not in served]
        for a, b in pairs:
            problems += compare(a, b, sample_only=sample_only, sim_only=sim_only, int_text=int_text, path=items,
                                enums=enums)
    elif isinstance(sim, str):
        if path.rpartition(".")[2] in SAME and sim != sample:
            problems.append(f"{at}: recorded {sample!r}, simulator {sim!r}")
        allowed = enums.get(_enum_key(path))
        if allowed is not None and sim not in allowed:
            problems.append(f"{at}: {sim!r} is not one of the venue's values {sorted(allowed)}")
    return sorted(set(problems))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _at(payload: Any, path: str) -> Any:
    for key in path.split("."):
        payload = payload.get(key) if isinstance(payload, dict) else None
    return payload


def _recorded(name: str) -> Any:
    data = load_sample(name)
    # nautilus wraps user-data fixtures as {"stream": <event type>, "data": ...}, which no venue sends.
    if isinstance(data, dict) and data.get("stream") in ("ORDER_TRADE_UPDATE", "ALGO_UPDATE", "ACCOUNT_UPDATE"):
        return data["data"]
    return data


# -- the simulator's answers -----------------------------------------------------------------------------
class Answers(dict):
    pass


async def _rest(s: aiohttp.ClientSession, venue: Any, method: str, path: str, params: dict | None = None,
                signed: bool = False) -> Any:
    query = signed_query(params or {}) if signed else "&".join(f"{k}={v}" for k, v in (params or {}).items())
    url = URL(f"{venue.base_url}{path}?{query}", encoded=True)  # signed as sent: no re-encoding
    async with s.request(method, url, headers=HEADERS) as resp:
        body = await resp.json()
        assert resp.status == 200, (path, params, body)
        return body


async def _wait(predicate: Any, what: str, timeout: float = 10.0) -> None:
    async def loop() -> None:
        while not predicate():
            await asyncio.sleep(0.02)
    try:
        await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def collect(venue: Any) -> Answers:
    """Drives the simulator to every answer SAMPLES names, over its REST and WebSocket sockets."""
    out = Answers()
    frames: list[dict] = []
    async with aiohttp.ClientSession() as s:
        key = (await _rest(s, venue, "POST", "/fapi/v1/listenKey"))["listenKey"]
        streams = ["btcusdt@depth@0ms", "btcusdt@depth", "btcusdt@depth5", "btcusdt@bookTicker", "btcusdt@trade",
                   "btcusdt@aggTrade", "btcusdt@markPrice@1s", "btcusdt@ticker", "btcusdt@kline_1m", "ethusdt@forceOrder", key]
        async with s.ws_connect(f"{venue.ws_url}/stream?streams={'/'.join(streams)}") as ws:
            async def read() -> None:
                async for msg in ws:
                    frames.append(json.loads(msg.data))
            reader = asyncio.create_task(read())
            try:
                await _drive(s, venue, out)
                kinds = ("ORDER_TRADE_UPDATE", "TRADE_LITE", "ACCOUNT_UPDATE")
                await _wait(lambda: {"btcusdt@trade", "btcusdt@aggTrade", "btcusdt@markPrice@1s", "btcusdt@depth",
                                     "btcusdt@depth@0ms", "btcusdt@depth5", "btcusdt@bookTicker", "btcusdt@ticker",
                                     "btcusdt@kline_1m"}
                            <= {f.get("stream") for f in frames}, "one frame of every market stream")
                await _wait(lambda: any(f.get("stream") == "ethusdt@forceOrder" for f in frames), "a forceOrder")
                await _wait(lambda: "user:ACCOUNT_UPDATE:funding" in (seen := _user_answers(frames, key, venue))
                            and any(k == "user:CALCULATED:autoclose" for k in seen),
                            "the liquidation's fill and a funding payment")
            finally:
                reader.cancel()
    for frame in frames:
        if frame.get("stream") != key:
            out.setdefault(f"ws:{frame['stream']}", frame)
            out.setdefault(f"data:{frame['stream']}", frame["data"])
    out.update(_user_answers(frames, key, venue))
    assert not [f for f in frames if f.get("stream") == key and f["data"]["e"] not in kinds + ("listenKeyExpired",)]
    return out


def _user_answers(frames: list[dict], key: str, venue: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for frame in list(frames):
        if frame.get("stream") != key:
            continue
        event = frame["data"]
        if event["e"] == "ORDER_TRADE_UPDATE":
            o = event["o"]
            if o["c"].startswith("autoclose"):  # a liquidation: pending (NEW), then FILLED, both CALCULATED
                out.setdefault(f"user:{o['x']}:{'NEW:' if o['X'] == 'NEW' else ''}autoclose", event)
            else:
                out.setdefault(f"user:{o['x']}:{o['o']}{':reduce' if o['R'] else ''}", event)
        elif event["e"] == "ACCOUNT_UPDATE":
            out.setdefault("user:ACCOUNT_UPDATE" + (":funding" if event["a"]["m"] == "FUNDING_FEE" else ""), event)
        else:
            out.setdefault(f"user:{event['e']}", event)
    return out


async def _drive(s: aiohttp.ClientSession, venue: Any, out: Answers) -> None:
    book = venue.engine.books["BTCUSDT"]
    fmt = book.instrument.format_price
    await _wait(lambda: book.best(True) and book.recent_trades, "a two-sided book and a trade")
    market = {"depth5": ("/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": 5}),
              "depth1000": ("/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": 1000}),
              "klines": ("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 3}),
              "continuous_klines": ("/fapi/v1/continuousKlines", {"pair": "BTCUSDT", "contractType": "PERPETUAL",
                                                                  "interval": "1m", "limit": 3}),
              "mark_klines": ("/fapi/v1/markPriceKlines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 3}),
              "index_klines": ("/fapi/v1/indexPriceKlines", {"pair": "BTCUSDT", "interval": "1m", "limit": 3}),
              "agg_trades": ("/fapi/v1/aggTrades", {"symbol": "BTCUSDT", "limit": 5}),
              "trades": ("/fapi/v1/trades", {"symbol": "BTCUSDT", "limit": 5}),
              "book_ticker": ("/fapi/v1/ticker/bookTicker", {"symbol": "BTCUSDT"}),
              "exchange_info": ("/fapi/v1/exchangeInfo", {}),
              "open_interest": ("/fapi/v1/openInterest", {"symbol": "BTCUSDT"}),
              "premium_index": ("/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"}),
              "ticker_24hr": ("/fapi/v1/ticker/24hr", {"symbol": "BTCUSDT"}),
              "ticker_price": ("/fapi/v1/ticker/price", {"symbol": "BTCUSDT"})}
    for name, (path, params) in market.items():
        out[name] = await _rest(s, venue, "GET", path, params)
    first = out["trades"][0]["id"]
    out["historical_trades"] = await _rest(s, venue, "GET", "/fapi/v1/historicalTrades",
                                           {"symbol": "BTCUSDT", "fromId": first, "limit": 2})
    assert [t["id"] for t in out["historical_trades"]] == [t["id"] for t in out["trades"][:2]]
    venue.engine.apply_funding("BTCUSDT")  # one settlement for the funding history
    out["funding_rate"] = await _rest(s, venue, "GET", "/fapi/v1/fundingRate", {"symbol": "BTCUSDT"})

    bid = book.best(True)
    below, above = fmt(bid - 500), fmt(bid + 500)
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010"}
    out["order_new"] = await _rest(s, venue, "POST", "/fapi/v1/order", order | {"price": below}, True)
    gtx = await _rest(s, venue, "POST", "/fapi/v1/order", order | {"price": below, "timeInForce": "GTX"}, True)
    out["open_order_gtx"] = await _rest(s, venue, "GET", "/fapi/v1/openOrder",
                                        {"symbol": "BTCUSDT", "orderId": gtx["orderId"]}, True)
    batch = json.dumps([order | {"price": below}, order | {"price": fmt(bid - 600)}], separators=(",", ":"))
    out["batch_new"] = await _rest(s, venue, "POST", "/fapi/v1/batchOrders", {"batchOrders": batch}, True)
    amends = json.dumps([{"symbol": "BTCUSDT", "orderId": o["orderId"], "side": "BUY", "quantity": "0.020",
                          "price": fmt(bid - 700)} for o in out["batch_new"]], separators=(",", ":"))
    out["batch_amend"] = await _rest(s, venue, "PUT", "/fapi/v1/batchOrders", {"batchOrders": amends}, True)
    # The simulator asks a STOP / TAKE_PROFIT for its timeInForce (the docs list it optional, GTC by default).
    for side, kind in (("BUY", "STOP"), ("SELL", "TAKE_PROFIT")):
        await _rest(s, venue, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": side, "type": kind,
                                                         "timeInForce": "GTC", "quantity": "0.010", "price": above,
                                                         "stopPrice": above}, True)
    trailing = await _rest(s, venue, "POST", "/fapi/v1/order", {
        "symbol": "BTCUSDT", "side": "BUY", "type": "TRAILING_STOP_MARKET", "quantity": "0.010",
        "callbackRate": "1", "activationPrice": below}, True)
    out["open_orders_trailing"] = [o for o in await _rest(s, venue, "GET", "/fapi/v1/openOrders",
                                                          {"symbol": "BTCUSDT"}, True)
                                   if o["orderId"] == trailing["orderId"]]
    await _rest(s, venue, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                     "quantity": "0.020"}, True)
    await _rest(s, venue, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT",
                                                     "timeInForce": "GTC", "quantity": "0.010", "price": above,
                                                     "reduceOnly": "true"}, True)
    await _rest(s, venue, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET",
                                                     "quantity": "0.005", "reduceOnly": "true"}, True)
    out["user_trades"] = await _rest(s, venue, "GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"}, True)
    account = {"account_v2": "/fapi/v2/account", "account_v3": "/fapi/v3/account",
               "position_risk_v3": "/fapi/v3/positionRisk", "balance": "/fapi/v2/balance",
               "position_side": "/fapi/v1/positionSide/dual", "symbol_config": "/fapi/v1/symbolConfig"}
    for name, path in account.items():
        out[name] = await _rest(s, venue, "GET", path, {}, True)
    out["position_risk_v2"] = await _rest(s, venue, "GET", "/fapi/v2/positionRisk", {"symbol": "BTCUSDT"}, True)
    out["commission_btc"] = await _rest(s, venue, "GET", "/fapi/v1/commissionRate", {"symbol": "BTCUSDT"}, True)
    out["commission_eth"] = await _rest(s, venue, "GET", "/fapi/v1/commissionRate", {"symbol": "ETHUSDT"}, True)
    venue.engine.apply_funding("BTCUSDT")  # a balance-only ACCOUNT_UPDATE (FUNDING_FEE) for the open position
    # A long far above the mark: the next tick liquidates it with an autoclose order.
    eth = venue.engine.books["ETHUSDT"]
    async with s.post(f"{venue.base_url}/_sim/position", json={
            "symbol": "ETHUSDT", "qty": "400", "price": eth.instrument.format_price(eth.mark_ticks * 3)}) as resp:
        assert resp.status == 200


# -- the tests -------------------------------------------------------------------------------------------
def test_every_sample_file_is_compared_or_skipped_with_a_reason():
    files = {str(p.relative_to(SAMPLE_DIR)) for p in SAMPLE_DIR.rglob("*.json")}
    assert not SAMPLES.keys() & SKIPPED.keys()
    assert files == SAMPLES.keys() | SKIPPED.keys(), (files - SAMPLES.keys() - SKIPPED.keys(),
                                                      (SAMPLES.keys() | SKIPPED.keys()) - files)
    assert all(reason for reason in SKIPPED.values())
    assert {e.answer for e in SAMPLES.values()} == HOW.keys()
    assert all(reason for entry in SAMPLES.values() for reason in (entry.sample_only | entry.sim_only).values())


def _problems(answers: dict[str, Any], entries: dict[str, Sample]) -> list[str]:
    problems = []
    for name, entry in entries.items():
        if entry.answer not in answers:
            problems.append(f"{name}: the simulator produced no {entry.answer}")
            continue
        problems += [f"{name}: {p}" for p in compare(
            _recorded(name), answers[entry.answer], sample_only=entry.sample_only, sim_only=entry.sim_only,
            int_text=name.startswith("ccxt/"), enums=ENUMS | entry.enums)]
        problems += [f"{name}: {path}: recorded {want!r}, simulator {got!r}" for path in sorted(entry.same)
                     if (want := _at(_recorded(name), path)) != (got := _at(answers[entry.answer], path))]
    return problems


async def test_the_simulator_answers_as_the_recordings(live_venue):
    answers = await collect(live_venue)
    problems = _problems(answers, {n: e for n, e in SAMPLES.items() if not e.answer.startswith("stepped:")})
    assert not problems, "\n".join(problems)


async def test_a_closed_kline_as_recorded(stepped_venue):
    """The minute rolls over on a venue clock the test steps: the finished candle comes once more, closed."""
    frames: list[dict] = []
    async with aiohttp.ClientSession() as s:
        ws_url = stepped_venue.base_url.replace("http://", "ws://")
        async with s.ws_connect(f"{ws_url}/ws/btcusdt@kline_1m") as ws:
            async def read() -> None:
                async for msg in ws:
                    frames.append(json.loads(msg.data))
            reader = asyncio.create_task(read())
            try:
                await _wait(lambda: stepped_venue.connections, "the connection")
                stepped_venue.step(61)
                await _wait(lambda: any(f["k"]["x"] for f in frames), "a closed candle")
            finally:
                reader.cancel()
    closed = next(f for f in frames if f["k"]["x"])
    after = frames[frames.index(closed) + 1:]
    assert after and after[0]["k"]["t"] == closed["k"]["T"] + 1 and not after[0]["k"]["x"]
    assert closed["k"]["T"] - closed["k"]["t"] == 59_999 and [f for f in frames if f["k"]["x"]] == [closed]
    problems = _problems({CLOSED_KLINE: closed}, {n: e for n, e in SAMPLES.items() if e.answer == CLOSED_KLINE})
    assert not problems, "\n".join(problems)


# -- the comparison itself, attacked ---------------------------------------------------------------------
ORDER = {"e": "aggTrade", "orderId": 1, "price": "1.0", "reduceOnly": False, "status": "NEW", "fills": [["1.0", "2"]]}


@pytest.mark.parametrize("sim, found", [
    (dict(ORDER, orderId="1"), "recorded int"),
    (dict(ORDER, price=1.0), "recorded str"),
    (dict(ORDER, reduceOnly="false"), "recorded bool"),
    (dict(ORDER, status="OPEN"), "not one of the venue's values"),
    ({k: v for k, v in ORDER.items() if k != "price"}, "missing from the simulator"),
    (dict(ORDER, extra=1), "not in the recording"),
    (dict(ORDER, fills=[["1.0", 2]]), "fills[][]: recorded str"),
    (dict(ORDER, fills=[]), "the simulator's is empty"),
    (dict(ORDER, e="trade"), "recorded 'aggTrade', simulator 'trade'"),
])
def test_compare_finds_each_kind_of_difference(sim, found):
    assert any(found in p for p in compare(ORDER, sim)), compare(ORDER, sim)


def test_compare_allowances_are_narrow():
    assert compare(ORDER, dict(ORDER, extra=1), sim_only={"extra": "why"}) == []
    assert compare(ORDER, dict(ORDER, extra=1), sim_only={"other": "why"}) != []
    assert compare({"orderId": "12"}, {"orderId": 12}, int_text=True) == []
    assert compare({"orderId": "12"}, {"orderId": 12}) != []
    assert compare({"price": "1.0"}, {"price": 1}, int_text=True) != []  # only digit strings stand for ints
    assert compare({"sp": None}, {"sp": "0"}) == []
