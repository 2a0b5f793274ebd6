"""The simulated venue's public market REST endpoints: ping, time, exchangeInfo, depth, trades, tickers.

Owns the MARKET_DATA answers, shaped as the venue shapes them: the exchangeInfo the simulator was built
from, depth snapshots whose lastUpdateId continues the streams' U/u chain, recent, historical (from an id,
with an API key) and aggregate trades, premium index (mark, index, funding), book ticker and last price.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from celeris.domain.values import format_units
from celeris.exchange_sim.engine import MatchingEngine, VenueError
from celeris.exchange_sim.wire import mark_str, rate_str


class MarketRoutes:
    """Part of SimVenue: the unsigned market endpoints."""

    engine: MatchingEngine
    table: dict[str, Any]
    entries: dict[str, dict[str, Any]]
    _next_funding_ms: int

    if TYPE_CHECKING:  # members of SimVenue and its other parts this one uses
        def now_ms(self) -> int: ...
        async def _params(self, request: web.Request) -> dict[str, str]: ...
        def _keyed(self, request: web.Request) -> Any: ...

    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": self.now_ms()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        return web.json_response({
            "timezone": "UTC", "serverTime": self.now_ms(), "futuresType": "U_MARGINED",
            "rateLimits": self.table["rateLimits"], "exchangeFilters": [], "assets": self.table["assets"],
            "symbols": list(self.entries.values())})

    def _book(self, params: dict[str, str]) -> Any:
        symbol = params.get("symbol", "")
        if not symbol:
            raise VenueError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        self.engine.instrument(symbol)
        return self.engine.books[symbol]

    async def depth(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        book = self._book(params)
        limit = int(params.get("limit", "500"))
        if limit not in (5, 10, 20, 50, 100, 500, 1000):
            raise VenueError(-1130, "Data sent for parameter 'limit' is not valid.")
        ins = book.instrument
        # The snapshot id is the last id the streams have reached or will reach.
        bids, asks = book.depth(limit)
        now = self.now_ms()
        return web.json_response({
            "lastUpdateId": book.update_id, "E": now, "T": now,
            "bids": [[ins.format_price(p), ins.format_qty(q)] for p, q in bids],
            "asks": [[ins.format_price(p), ins.format_qty(q)] for p, q in asks]})

    def _recent(self, params: dict[str, str]) -> tuple[Any, list[dict[str, Any]]]:
        book = self._book(params)
        return book, list(book.recent_trades)[-_trade_limit(params):]

    async def recent_trades(self, request: web.Request) -> web.Response:
        book, trades = self._recent(await self._params(request))
        return web.json_response(self._trades_json(book, trades))

    @staticmethod
    def _trades_json(book: Any, trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ins = book.instrument
        return [{"id": t["t"], "price": ins.format_price(t["p"]), "qty": ins.format_qty(t["q"]),
                 "quoteQty": format_units(ins.price_units(t["p"]) * ins.qty_units(t["q"]), ins.notional_scale),
                 "time": t["T"], "isBuyerMaker": t["m"]} for t in trades]

    async def historical_trades(self, request: web.Request) -> web.Response:
        """MARKET_DATA (an API key, no signature): the kept trades from `fromId` on, else the latest."""
        self._keyed(request)
        params = await self._params(request)
        book, trades = self._recent(params)
        if params.get("fromId"):
            try:
                from_id = int(params["fromId"])
            except ValueError:
                raise VenueError(-1100, "Illegal characters found in parameter 'fromId'.") from None
            trades = [t for t in book.recent_trades if t["t"] >= from_id][:_trade_limit(params)]
        return web.json_response(self._trades_json(book, trades))

    async def agg_trades(self, request: web.Request) -> web.Response:
        # Each simulated trade is one taker fill at one price, so it is its own aggregate.
        book, trades = self._recent(await self._params(request))
        ins = book.instrument
        return web.json_response([{"a": t["t"], "p": ins.format_price(t["p"]), "q": ins.format_qty(t["q"]),
                                   "f": t["t"], "l": t["t"], "T": t["T"], "m": t["m"]} for t in trades])

    def _premium(self, book: Any) -> dict[str, Any]:
        ins = book.instrument
        return {"symbol": ins.symbol, "markPrice": mark_str(ins, book.mark_ticks),
                "indexPrice": mark_str(ins, book.index_ticks), "estimatedSettlePrice": mark_str(ins, book.index_ticks),
                "lastFundingRate": rate_str(book.funding_rate), "interestRate": "0.00010000",
                "nextFundingTime": self._next_funding_ms, "time": self.now_ms()}

    async def premium_index(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        if params.get("symbol"):
            return web.json_response(self._premium(self._book(params)))
        return web.json_response([self._premium(b) for b in self.engine.books.values()])

    async def book_ticker(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        books = [self._book(params)] if params.get("symbol") else list(self.engine.books.values())
        out = []
        for book in books:
            ins = book.instrument
            bid, ask = book.best(True) or 0, book.best(False) or 0
            out.append({"symbol": ins.symbol, "bidPrice": ins.format_price(bid),
                        "bidQty": ins.format_qty(book.level_qty(True, bid)), "askPrice": ins.format_price(ask),
                        "askQty": ins.format_qty(book.level_qty(False, ask)), "time": self.now_ms()})
        return web.json_response(out[0] if params.get("symbol") else out)

    async def ticker_price(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        books = [self._book(params)] if params.get("symbol") else list(self.engine.books.values())
        out = [{"symbol": b.instrument.symbol, "price": b.instrument.format_price(b.last_price_ticks),
                "time": self.now_ms()} for b in books]
        return web.json_response(out[0] if params.get("symbol") else out)


def _trade_limit(params: dict[str, str]) -> int:
    try:
        return min(1000, max(1, int(params.get("limit", "500"))))
    except ValueError:
        raise VenueError(-1130, "Data sent for parameter 'limit' is not valid.") from None
