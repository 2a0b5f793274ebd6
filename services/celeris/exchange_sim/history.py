"""The simulated venue's market history: one-minute candles of its trades, of its mark and index prices, and
its funding settlements.

Owns what the history endpoints answer from (klines, markPriceKlines, indexPriceKlines, ticker/24hr,
fundingRate): per symbol and bounded, recorded as the venue's own trades, prices and fundings happen, in
integer ticks and steps. Longer intervals are sums of the minutes, aligned as the venue aligns them (epoch
multiples, weeks on Mondays, calendar months); an interval without a trade is a flat candle at the previous
close, as a continuous market prints it.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import deque
from dataclasses import dataclass, replace
from fractions import Fraction

MINUTE_MS = 60_000
DAY_MS = 1_440 * MINUTE_MS
KEEP_MINUTES = 7 * 1_440
"""A week of minutes per series: the memory stays bounded on a venue that runs for months."""
WEEK_OFFSET_MS = 4 * DAY_MS
"""1970-01-01 was a Thursday; weekly candles open on Mondays."""

INTERVALS_MS = {"1m": MINUTE_MS, "3m": 3 * MINUTE_MS, "5m": 5 * MINUTE_MS, "15m": 15 * MINUTE_MS,
                "30m": 30 * MINUTE_MS, "1h": 60 * MINUTE_MS, "2h": 120 * MINUTE_MS, "4h": 240 * MINUTE_MS,
                "6h": 360 * MINUTE_MS, "8h": 480 * MINUTE_MS, "12h": 720 * MINUTE_MS, "1d": DAY_MS,
                "3d": 3 * DAY_MS, "1w": 7 * DAY_MS}
MONTH = "1M"


@dataclass(slots=True)
class Candle:
    """One interval: prices in ticks, volumes in steps, quote volume in ticks x steps."""

    open_ms: int
    open: int
    high: int
    low: int
    close: int
    volume: int = 0
    quote: int = 0
    trades: int = 0
    taker_buy_volume: int = 0
    taker_buy_quote: int = 0
    first_id: int = -1
    last_id: int = -1
    samples: int = 0
    """Prices folded in (the count mark and index klines print)."""

    def add(self, price: int, qty: int, trade_id: int, taker_buy: bool) -> None:
        self.high, self.low, self.close = max(self.high, price), min(self.low, price), price
        self.samples += 1
        if trade_id < 0:
            return
        self.volume += qty
        self.quote += price * qty
        self.trades += 1
        if taker_buy:
            self.taker_buy_volume += qty
            self.taker_buy_quote += price * qty
        if self.first_id < 0:
            self.first_id = trade_id
        self.last_id = trade_id

    def merge(self, later: Candle) -> None:
        self.high, self.low, self.close = max(self.high, later.high), min(self.low, later.low), later.close
        self.volume += later.volume
        self.quote += later.quote
        self.trades += later.trades
        self.taker_buy_volume += later.taker_buy_volume
        self.taker_buy_quote += later.taker_buy_quote
        self.samples += later.samples
        if self.first_id < 0:
            self.first_id = later.first_id
        if later.last_id >= 0:
            self.last_id = later.last_id


def bucket_start(interval: str, t_ms: int) -> int:
    """The open time of the `interval` candle holding `t_ms`."""
    if interval == MONTH:
        day = dt.datetime.fromtimestamp(t_ms // 1000, dt.timezone.utc)
        return calendar.timegm((day.year, day.month, 1, 0, 0, 0)) * 1000
    size = INTERVALS_MS[interval]
    offset = WEEK_OFFSET_MS if interval == "1w" else 0
    return (t_ms - offset) // size * size + offset


def bucket_end(interval: str, open_ms: int) -> int:
    """The next candle's open time."""
    if interval == MONTH:
        day = dt.datetime.fromtimestamp(open_ms // 1000, dt.timezone.utc)
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000
    return open_ms + INTERVALS_MS[interval]


class CandleSeries:
    """The minutes of one price series (trades, mark or index) of one symbol, newest last."""

    def __init__(self, keep: int = KEEP_MINUTES) -> None:
        self.minutes: deque[Candle] = deque(maxlen=keep)

    def record(self, now_ms: int, price: int, qty: int = 0, trade_id: int = -1, taker_buy: bool = False) -> None:
        """A trade (trade_id >= 0) or a price sample at `now_ms`. Time only moves forward on one venue clock;
        a sample stamped before the current minute (skew injected backwards) joins the current minute."""
        if price <= 0:
            return
        start = now_ms - now_ms % MINUTE_MS
        if not self.minutes or self.minutes[-1].open_ms < start:
            self.minutes.append(Candle(start, price, price, price, price))
        self.minutes[-1].add(price, qty, trade_id, taker_buy)

    def candles(self, interval: str, now_ms: int) -> list[Candle]:
        """Every `interval` candle from the first recorded minute to the one holding `now_ms`, gaps flat."""
        out: list[Candle] = []
        for minute in self.minutes:
            start = bucket_start(interval, minute.open_ms)
            if out and out[-1].open_ms == start:
                out[-1].merge(minute)
                continue
            if out:
                self._fill(out, interval, start)
            out.append(replace(minute, open_ms=start))
        if out:
            self._fill(out, interval, bucket_start(interval, now_ms) + 1)
        return out

    @staticmethod
    def _fill(out: list[Candle], interval: str, until_ms: int) -> None:
        """Flat candles at the last close for the intervals before `until_ms` that saw nothing."""
        while (nxt := bucket_end(interval, out[-1].open_ms)) < until_ms:
            close = out[-1].close
            out.append(Candle(nxt, close, close, close, close))

    def window(self, since_ms: int) -> Candle | None:
        """The minutes that opened at or after `since_ms` folded into one candle (None when there are none)."""
        folded: Candle | None = None
        for minute in self.minutes:
            if minute.open_ms < since_ms:
                continue
            if folded is None:
                folded = replace(minute)
            else:
                folded.merge(minute)
        return folded


def select(candles: list[Candle], start_ms: int | None, end_ms: int | None, limit: int) -> list[Candle]:
    """The venue's kline window: open times within [start, end]; from the start when one is given, else the
    latest `limit`."""
    chosen = [c for c in candles if (start_ms is None or c.open_ms >= start_ms)
              and (end_ms is None or c.open_ms <= end_ms)]
    return chosen[:limit] if start_ms is not None else chosen[-limit:]


@dataclass(frozen=True, slots=True)
class FundingSettlement:
    symbol: str
    time_ms: int
    rate: Fraction
    mark_ticks: int


@dataclass
class SymbolHistory:
    """Everything the history endpoints need for one symbol."""

    trades: CandleSeries
    marks: CandleSeries
    indexes: CandleSeries
    fundings: deque[FundingSettlement]

    @classmethod
    def new(cls) -> SymbolHistory:
        return cls(CandleSeries(), CandleSeries(), CandleSeries(), deque(maxlen=1_000))
