"""The simulated venue on the wire: Binance USD-M REST, market streams, user data stream and admin.

Owns `SimVenue`, which puts the simulator together: the symbols' exchangeInfo entries and their
contracts, the matching engine and the market driving it, the venue clock (with injected skew), the
aiohttp application and its routes, and the tick loop (market step, triggers, liquidations, funding,
listen-key expiry, stream publishing). Each concern of the protocol lives in its own part, written
independently of the connector: auth_weights.py (keys, signatures, weights, limits), routes_market.py,
routes_history.py (klines, 24-hour tickers, funding history), routes_orders.py, routes_algo.py (the Algo Order
API), routes_account.py (REST), websocket.py (connections and market streams), userstream.py (listen keys
and user data), ws_api.py (the WebSocket API on /ws-fapi/v1), load.py (the load mode) and admin.py (fault
injection).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections import deque
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import web

from celeris.domain.clock import Clock
from celeris.exchange_sim.admin import Admin, Faults
from celeris.exchange_sim.auth_weights import AuthWeights, UnknownStatus, WeightWindow
from celeris.exchange_sim.contract import Contract
from celeris.exchange_sim.engine import EngineConfig, MatchingEngine
from celeris.exchange_sim.load import DepthLoad
from celeris.exchange_sim.market import ReplayMarket, SyntheticMarket
from celeris.exchange_sim.probe import LatencyProbe, ProbeRoutes
from celeris.exchange_sim.routes_algo import AlgoRoutes
from celeris.exchange_sim.routes_account import AccountRoutes
from celeris.exchange_sim.routes_history import HistoryRoutes
from celeris.exchange_sim.routes_market import MarketRoutes
from celeris.exchange_sim.routes_orders import OrderRoutes
from celeris.exchange_sim.userstream import LISTEN_KEY_TTL_MS, UserStream
from celeris.exchange_sim.websocket import DEPTH_SPEEDS_MS, Connection, MarketStreams
from celeris.exchange_sim.ws_api import WsApi

# Names other modules imported from here before the split.
__all__ = ["DEPTH_SPEEDS_MS", "LISTEN_KEY_TTL_MS", "Connection", "Faults", "SimVenue", "UnknownStatus",
           "WeightWindow", "load_instrument_entries", "start"]

log = logging.getLogger(__name__)

SYMBOLS_FILE = Path(__file__).with_name("symbols.json")


def load_instrument_entries(symbols: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """exchangeInfo pieces for `symbols`: real entries where we have them, a derived one otherwise."""
    table = json.loads(SYMBOLS_FILE.read_text())
    known = {s["symbol"]: s for s in table["symbols"]}
    entries = []
    for symbol in symbols:
        if symbol in known:
            entries.append(known[symbol])
        else:
            if not symbol.endswith("USDT"):
                raise ValueError(f"simulator supports USDT-margined symbols only, not {symbol}")
            entry = json.loads(json.dumps(known["ETHUSDT"]))
            entry.update(symbol=symbol, pair=symbol, baseAsset=symbol[:-4])
            entries.append(entry)
    return table, entries


class SimVenue(AuthWeights, MarketRoutes, HistoryRoutes, OrderRoutes, AlgoRoutes, AccountRoutes, MarketStreams,
               UserStream, Admin, ProbeRoutes, WsApi):
    """The simulated exchange: engine, market, streams and the HTTP/WebSocket application."""

    def __init__(self, *, symbols: list[str], api_key: str, api_secret: str, clock: Clock, seed: int = 7,
                 tick_ms: int = 100, replay: Path | None = None, weight_limit: int = 2400,
                 ws_max_age_s: float = 86_400, ping_interval_s: float = 180, mark_interval_ms: int = 1000,
                 funding_interval_s: float = 8 * 3600, config: EngineConfig | None = None,
                 wallet_usdt: int | None = None, latency_probe: bool = False,
                 orders_per_10s: int = 300, reject_legacy_conditional: bool | None = None,
                 load_depth_per_s: int = 0) -> None:
        self.clock = clock
        if reject_legacy_conditional is not None:
            # The venue since 2025-12-09: conditional types only on the Algo Order API, -4120 on /fapi/v1/order.
            config = dataclasses.replace(config or EngineConfig(),
                                         conditional_on_order_endpoint=not reject_legacy_conditional)
        self.probe: LatencyProbe | None = LatencyProbe() if latency_probe else None
        """Set (--latency-probe): the market moves only in probe steps (celeris.exchange_sim.probe)."""
        self.orders_per_10s = orders_per_10s
        """The account's new-order count limit per 10 s (-1015 beyond); the venue's is 300."""
        self.table, entries = load_instrument_entries(symbols)
        self.entries = {e["symbol"]: e for e in entries}
        self.contracts = [Contract.from_entry(e) for e in entries]
        # `instruments` is kept for callers that only format prices and quantities. A client that needs the
        # connector's instruments builds them from the exchangeInfo these entries are served as, as a real
        # client does (tests/sim/conftest.py); the simulator never builds them itself.
        self.instruments: list[Any] = list(self.contracts)
        self.engine = MatchingEngine(self.contracts, self, config)
        self.engine.add_account(api_key, api_secret, wallet_usdt)
        self.engine.on_account_event = self._account_event
        self.market: SyntheticMarket | ReplayMarket
        if replay is not None:
            self.market = ReplayMarket(self.engine, replay, symbols[0], tick_ms)
        else:
            self.market = SyntheticMarket(self.engine, seed=seed)
        self.tick_ms = tick_ms
        self.faults = Faults()
        self.weights = WeightWindow(weight_limit)
        self.order_times: deque[int] = deque()
        self.ws_max_age_ms = int(ws_max_age_s * 1000)
        self.ping_interval_s = ping_interval_s
        self.mark_interval_ms = mark_interval_ms
        self.funding_interval_ms = int(funding_interval_s * 1000)
        self.connections: list[Connection] = []
        self.listen_keys: dict[str, tuple[str, int]] = {}  # key -> (api_key, expires_ms)
        # Per symbol and depth speed: (previous u sent, pending first U, last flush ms).
        self._depth_chain: dict[tuple[str, int], list[int]] = {}
        self._pending_levels: dict[tuple[str, int], dict[tuple[bool, int], None]] = {}
        self._last_top: dict[str, tuple[int | None, int | None, int, int]] = {}
        self._skip_left: dict[tuple[str, int], int] = {}
        self._last_mark_ms = 0
        self._last_ticker_ms = 0
        self._last_kline_ms = 0
        self._kline_open: dict[str, int] = {}  # kline stream -> open time of the candle it last sent
        self._next_funding_ms = self.now_ms() + self.funding_interval_ms
        self._task: asyncio.Task[None] | None = None
        self._users_dirty = asyncio.Event()
        self.stats = {"rest_requests": 0, "ws_messages": 0, "orders": 0}
        self.load: DepthLoad | None = (DepthLoad(self, self.engine.books, load_depth_per_s, seed)
                                       if load_depth_per_s else None)
        """Set (--load-depth-rate): depth events at a fixed rate per symbol (celeris.exchange_sim.load)."""
        self._load_task: asyncio.Task[None] | None = None

    # Clock for the engine: the venue's time includes the injected skew.
    def now_ns(self) -> int:
        return self.clock.now_ns() + self.faults.clock_skew_ms * 1_000_000

    def now_ms(self) -> int:
        return self.now_ns() // 1_000_000

    # -- lifecycle ----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1 << 20)
        r = app.router
        for path, handler in self._rest_routes().items():
            method, _, url = path.partition(" ")
            r.add_route(method, url, handler)
        for prefix in ("", "/public", "/market", "/private"):
            r.add_get(prefix + "/ws", self._ws_handler)
            r.add_get(prefix + "/ws/{tail:.*}", self._ws_handler)
            r.add_get(prefix + "/stream", self._ws_handler)
        r.add_get("/ws-fapi/v1", self._ws_api_handler)  # the WebSocket API (ws_api.py)
        r.add_post("/_sim/faults", self._admin_faults)
        r.add_get("/_sim/state", self._admin_state)
        r.add_post("/_sim/position", self._admin_position)
        r.add_post("/_sim/drop", self._admin_drop)
        r.add_post("/_sim/funding", self._admin_funding)
        r.add_post("/_sim/probe", self._admin_probe)
        app.on_startup.append(self._start_loop)
        app.on_shutdown.append(self._stop)
        return app

    async def _start_loop(self, _: web.Application) -> None:
        self._task = asyncio.create_task(self._run())
        if self.load is not None:
            self._load_task = asyncio.create_task(self.load.run())

    async def _stop(self, _: web.Application) -> None:
        for task in (self._task, self._load_task):
            if task:
                task.cancel()
        for conn in list(self.connections):
            await conn.ws.close()

    async def _run(self) -> None:
        while True:
            try:
                self.tick()
                await self._flush_users()
            except Exception:  # a bug in one tick must not kill the venue
                log.exception("simulator tick failed")
            await asyncio.sleep(self.tick_ms / 1000)

    def tick(self) -> None:
        """One step of venue time: market moves, triggers, liquidations, funding, streams."""
        now = self.now_ms()
        self.engine.check_countdowns()
        self.engine.expire_good_till()
        if self.probe is not None:  # the probe's steps alone move and publish the market
            self._expire_listen_keys(now)
            return
        self.market.step()
        for book in self.engine.books.values():
            book.history.marks.record(now, book.mark_ticks)
            book.history.indexes.record(now, book.index_ticks)
        for symbol in self.engine.books:
            self.engine.check_triggers(symbol)
            self.engine.check_algo_triggers(symbol)
            self.engine.check_liquidations(symbol)
        if self.funding_interval_ms and now >= self._next_funding_ms:
            self._next_funding_ms = now + self.funding_interval_ms
            for symbol in self.engine.books:
                self.engine.apply_funding(symbol)
        self._expire_listen_keys(now)
        self._publish_market(now)
        for conn in list(self.connections):
            if now - conn.opened_ms >= self.ws_max_age_ms:
                asyncio.ensure_future(conn.ws.close(message=b"24h connection limit"))

    # -- routes (handlers in routes_market.py, routes_orders.py, routes_account.py, userstream.py) ---
    def _rest_routes(self) -> dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]:
        return {
            "GET /fapi/v1/ping": self.ping, "GET /fapi/v1/time": self.time,
            "GET /fapi/v1/exchangeInfo": self.exchange_info, "GET /fapi/v1/depth": self.depth,
            "GET /fapi/v1/trades": self.recent_trades, "GET /fapi/v1/aggTrades": self.agg_trades,
            "GET /fapi/v1/historicalTrades": self.historical_trades,
            "GET /fapi/v1/premiumIndex": self.premium_index, "GET /fapi/v1/ticker/bookTicker": self.book_ticker,
            "GET /fapi/v1/ticker/price": self.ticker_price, "GET /fapi/v1/ticker/24hr": self.ticker_24hr,
            "GET /fapi/v2/ticker/price": self.ticker_price,  # python-binance's futures_symbol_ticker; same body
            "GET /fapi/v1/klines": self.klines, "GET /fapi/v1/continuousKlines": self.continuous_klines,
            "GET /fapi/v1/markPriceKlines": self.mark_price_klines,
            "GET /fapi/v1/indexPriceKlines": self.index_price_klines,
            "GET /fapi/v1/fundingRate": self.funding_rate_history, "GET /fapi/v1/openInterest": self.open_interest,
            "POST /fapi/v1/order": self.new_order, "GET /fapi/v1/order": self.query_order,
            "DELETE /fapi/v1/order": self.cancel_order, "PUT /fapi/v1/order": self.amend_order,
            "PUT /fapi/v1/batchOrders": self.batch_amend, "GET /fapi/v1/orderAmendment": self.order_amendments,
            "GET /fapi/v1/openOrders": self.open_orders,
            "GET /fapi/v1/openOrder": self.open_order, "GET /fapi/v1/allOrders": self.all_orders,
            "DELETE /fapi/v1/allOpenOrders": self.cancel_all,
            "POST /fapi/v1/countdownCancelAll": self.countdown_cancel_all,
            "POST /fapi/v1/batchOrders": self.batch_orders, "DELETE /fapi/v1/batchOrders": self.batch_cancel,
            "POST /fapi/v1/algoOrder": self.new_algo_order, "DELETE /fapi/v1/algoOrder": self.cancel_algo_order,
            "GET /fapi/v1/algoOrder": self.query_algo_order, "GET /fapi/v1/openAlgoOrders": self.open_algo_orders,
            "GET /fapi/v1/allAlgoOrders": self.all_algo_orders,
            "DELETE /fapi/v1/algoOpenOrders": self.cancel_all_algo_orders,
            "GET /fapi/v1/userTrades": self.user_trades, "GET /fapi/v1/income": self.income,
            "GET /fapi/v2/positionRisk": self.position_risk_v2, "GET /fapi/v3/positionRisk": self.position_risk_v3,
            "GET /fapi/v2/account": self.account_v2, "GET /fapi/v3/account": self.account_v3,
            "GET /fapi/v2/balance": self.balance, "GET /fapi/v3/balance": self.balance,
            "POST /fapi/v1/leverage": self.leverage, "POST /fapi/v1/marginType": self.margin_type,
            "GET /fapi/v1/positionSide/dual": self.position_side,
            "POST /fapi/v1/positionSide/dual": self.set_position_side,
            "GET /fapi/v1/multiAssetsMargin": self.multi_assets_margin,
            "POST /fapi/v1/multiAssetsMargin": self.set_multi_assets_margin,
            "GET /fapi/v1/leverageBracket": self.leverage_bracket,
            "GET /fapi/v1/commissionRate": self.commission_rate, "GET /fapi/v1/symbolConfig": self.symbol_config,
            "POST /fapi/v1/listenKey": self.listen_key_new, "PUT /fapi/v1/listenKey": self.listen_key_keepalive,
            "DELETE /fapi/v1/listenKey": self.listen_key_close,
        }


async def start(venue: SimVenue, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, int]:
    """Start the venue's HTTP/WebSocket server; returns the runner and the bound port."""
    runner = web.AppRunner(venue.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = site._server.sockets if site._server else []  # aiohttp exposes no public getter
    return runner, sockets[0].getsockname()[1]

