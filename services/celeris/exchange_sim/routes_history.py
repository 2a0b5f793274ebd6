"""The simulated venue's market history REST endpoints: klines (trade, continuous, mark and index price),
24-hour tickers, funding rate history and open interest.

Owns the answers shaped as the venue shapes them (12-element kline arrays of decimal strings, the 24-hour
ticker's keys, fundingRate's ascending list), read from each symbol's `SymbolHistory` (history.py), and the
refusals a client gets for a bad interval, symbol or limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from celeris.domain.values import format_units
from celeris.exchange_sim.engine import MatchingEngine, VenueError
from celeris.exchange_sim.history import INTERVALS_MS, MONTH, Candle, CandleSeries, bucket_end, select
from celeris.exchange_sim.wire import mark_str, rate_str

DAY_MS = 86_400_000


class HistoryRoutes:
    """Part of SimVenue: the unsigned history endpoints."""

    engine: MatchingEngine

    if TYPE_CHECKING:  # members of SimVenue and its other parts this one uses
        def now_ms(self) -> int: ...
        async def _params(self, request: web.Request) -> dict[str, str]: ...
        def _book(self, params: dict[str, str]) -> Any: ...

    async def klines(self, request: web.Request) -> web.Response:
        return await self._klines(request, "symbol", "trades")

    async def continuous_klines(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        if params.get("contractType", "PERPETUAL") != "PERPETUAL":
            raise VenueError(-1130, "Data sent for parameter 'contractType' is not valid.")  # perpetuals only
        return await self._klines(request, "pair", "trades")

    async def mark_price_klines(self, request: web.Request) -> web.Response:
        return await self._klines(request, "symbol", "marks")

    async def index_price_klines(self, request: web.Request) -> web.Response:
        return await self._klines(request, "pair", "indexes")

    async def _klines(self, request: web.Request, key: str, series: str) -> web.Response:
        params = await self._params(request)
        interval = params.get("interval", "")
        if not interval:
            raise VenueError(-1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.")
        if interval not in INTERVALS_MS and interval != MONTH:
            raise VenueError(-1120, "Invalid interval.")
        if not params.get(key):
            raise VenueError(-1102, f"Mandatory parameter '{key}' was not sent, was empty/null, or malformed.")
        book = self._book({"symbol": params[key]})
        limit = _limit(params, default=500, most=1500)
        start, end = _optional_ms(params, "startTime"), _optional_ms(params, "endTime")
        history: CandleSeries = getattr(book.history, series)
        candles = select(history.candles(interval, self.now_ms()), start, end, limit)
        ins = book.instrument
        if series == "trades":
            return web.json_response([trade_kline(ins, interval, c) for c in candles])
        return web.json_response([_price_kline(ins, interval, c) for c in candles])

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        books = [self._book(params)] if params.get("symbol") else list(self.engine.books.values())
        now = self.now_ms()
        out = [self._ticker(book, now) for book in books]
        return web.json_response(out[0] if params.get("symbol") else out)

    def _ticker(self, book: Any, now: int) -> dict[str, Any]:
        ins = book.instrument
        day = book.history.trades.window(now - DAY_MS)
        last = book.last_price_ticks
        last_qty = book.recent_trades[-1]["q"] if book.recent_trades else 0
        opened = day.open if day else last
        high, low = (day.high, day.low) if day else (last, last)
        volume, quote = (day.volume, day.quote) if day else (0, 0)
        change = last - opened
        # priceChangePercent has three decimals; truncated toward zero, in integers.
        permille = abs(change) * 100_000 // opened if opened else 0
        vwap = quote * ins.tick_units * 1_000 // volume if volume else 0
        return {"symbol": ins.symbol, "priceChange": ins.format_price(change),
                "priceChangePercent": format_units(-permille if change < 0 else permille, 3),
                "weightedAvgPrice": format_units(vwap, ins.price_scale + 3), "lastPrice": ins.format_price(last),
                "lastQty": ins.format_qty(last_qty), "openPrice": ins.format_price(opened),
                "highPrice": ins.format_price(high), "lowPrice": ins.format_price(low),
                "volume": ins.format_qty(volume), "quoteVolume": _quote(ins, quote),
                "openTime": day.open_ms if day else now - DAY_MS, "closeTime": now,
                "firstId": day.first_id if day else -1, "lastId": day.last_id if day else -1,
                "count": day.trades if day else 0}

    async def funding_rate_history(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        books = [self._book(params)] if params.get("symbol") else list(self.engine.books.values())
        limit = _limit(params, default=100, most=1000)
        start, end = _optional_ms(params, "startTime"), _optional_ms(params, "endTime")
        settled = sorted((f for b in books for f in b.history.fundings), key=lambda f: (f.time_ms, f.symbol))
        chosen = [f for f in settled if (start is None or f.time_ms >= start) and (end is None or f.time_ms <= end)]
        chosen = chosen[:limit] if start is not None else chosen[-limit:]
        instruments = {b.instrument.symbol: b.instrument for b in books}
        return web.json_response([{"symbol": f.symbol, "fundingTime": f.time_ms, "fundingRate": rate_str(f.rate),
                                   "markPrice": mark_str(instruments[f.symbol], f.mark_ticks)} for f in chosen])

    async def open_interest(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        if not params.get("symbol"):
            raise VenueError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        book = self._book(params)
        symbol = book.instrument.symbol
        # Every contract has a long and a short side; the venue's other side is its synthetic liquidity, so
        # the accounts' larger side is the open interest.
        longs = shorts = 0
        for account in self.engine.accounts.values():
            qty = account.positions[symbol].qty_steps
            longs, shorts = longs + max(qty, 0), shorts + max(-qty, 0)
        return web.json_response({"openInterest": book.instrument.format_qty(max(longs, shorts)), "symbol": symbol,
                                  "time": self.now_ms()})


def _limit(params: dict[str, str], default: int, most: int) -> int:
    limit = int(params.get("limit") or default)
    if limit <= 0:
        raise VenueError(-1130, "Data sent for parameter 'limit' is not valid.")
    return min(limit, most)


def _optional_ms(params: dict[str, str], key: str) -> int | None:
    text = params.get(key)
    if not text:
        return None
    value = int(text)
    if value < 0:
        raise VenueError(-1130, f"Data sent for parameter '{key}' is not valid.")
    return value


def _quote(ins: Any, ticks_x_steps: int) -> str:
    return format_units(ticks_x_steps * ins.tick_units * ins.step_units, ins.notional_scale)


def trade_kline(ins: Any, interval: str, c: Candle) -> list[Any]:
    return [c.open_ms, ins.format_price(c.open), ins.format_price(c.high), ins.format_price(c.low),
            ins.format_price(c.close), ins.format_qty(c.volume), bucket_end(interval, c.open_ms) - 1,
            _quote(ins, c.quote), c.trades, ins.format_qty(c.taker_buy_volume), _quote(ins, c.taker_buy_quote), "0"]


def _price_kline(ins: Any, interval: str, c: Candle) -> list[Any]:
    return [c.open_ms, mark_str(ins, c.open), mark_str(ins, c.high), mark_str(ins, c.low), mark_str(ins, c.close),
            "0", bucket_end(interval, c.open_ms) - 1, "0", c.samples, "0", "0", "0"]
