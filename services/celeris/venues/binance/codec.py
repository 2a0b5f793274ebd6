"""Decoding Binance USD-M wire messages into domain values, fast.

Owns the typed shapes of the venue's market and user-data messages (msgspec structs, decoded straight
from bytes without building dicts) and their conversion to domain values: prices to ticks, quantities to
steps, times to nanoseconds. A message that does not fit raises `MalformedMessage`, which callers count
and skip. Price strings repeat constantly on a busy book, so their tick values are memoised.
"""

from __future__ import annotations

from typing import Union

import msgspec

from celeris.domain import book as book_mod
from celeris.domain import values
from celeris.domain.instruments import Instrument

NS_PER_MS = 1_000_000


class MalformedMessage(ValueError):
    """A venue message that cannot be decoded or does not fit its instrument."""


# -- market streams ---------------------------------------------------------------------------
class DepthUpdate(msgspec.Struct, tag_field="e", tag="depthUpdate"):
    E: int
    T: int
    s: str
    U: int
    u: int
    pu: int
    b: list[tuple[str, str]]
    a: list[tuple[str, str]]


class BookTicker(msgspec.Struct, tag_field="e", tag="bookTicker"):
    u: int
    E: int
    T: int
    s: str
    b: str
    B: str
    a: str
    A: str


class Trade(msgspec.Struct, tag_field="e", tag="trade"):
    E: int
    T: int
    s: str
    t: int
    p: str
    q: str
    m: bool
    X: str = "MARKET"


class AggTrade(msgspec.Struct, tag_field="e", tag="aggTrade"):
    E: int
    a: int
    s: str
    p: str
    q: str
    f: int
    l: int  # noqa: E741 - the venue's key
    T: int
    m: bool
    nq: str | None = None


class MarkPriceUpdate(msgspec.Struct, tag_field="e", tag="markPriceUpdate"):
    E: int
    s: str
    p: str
    i: str
    r: str
    T: int
    P: str = "0"


MarketEvent = Union[DepthUpdate, BookTicker, Trade, AggTrade, MarkPriceUpdate]


class CombinedFrame(msgspec.Struct):
    stream: str
    data: MarketEvent


class DepthSnapshot(msgspec.Struct):
    lastUpdateId: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    E: int = 0
    T: int = 0


_combined_decoder = msgspec.json.Decoder(CombinedFrame)
_raw_decoder = msgspec.json.Decoder(MarketEvent)
# Some gateways (and ccxt fixtures) quote the ids; the values are still exact integers.
_snapshot_decoder = msgspec.json.Decoder(DepthSnapshot, strict=False)


def decode_combined(raw: bytes | str) -> CombinedFrame:
    try:
        return _combined_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedMessage(str(exc)) from exc


def decode_raw(raw: bytes | str) -> MarketEvent:
    try:
        return _raw_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedMessage(str(exc)) from exc


def decode_snapshot(raw: bytes | str) -> DepthSnapshot:
    try:
        return _snapshot_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedMessage(str(exc)) from exc


class LevelParser:
    """Price/quantity strings of one instrument -> ticks/steps, memoising the repeated ones."""

    __slots__ = ("instrument", "_prices", "_qtys", "max_cache")

    def __init__(self, instrument: Instrument, max_cache: int = 200_000) -> None:
        self.instrument = instrument
        self._prices: dict[str, int] = {}
        self._qtys: dict[str, int] = {}
        self.max_cache = max_cache

    def price(self, text: str) -> int:
        ticks = self._prices.get(text)
        if ticks is None:
            ticks = self._remember(self._prices, self.instrument.price_grid, text)
        return ticks

    def qty(self, text: str) -> int:
        steps = self._qtys.get(text)
        if steps is None:
            steps = self._remember(self._qtys, self.instrument.qty_grid, text)
        return steps

    def levels(self, pairs: list[tuple[str, str]]) -> list[tuple[int, int]]:
        # The hot loop of market data (an event has 38 levels at the median, 800 at most): plain dict
        # subscripts in a comprehension, a third cheaper than .get in a loop; a string not seen yet
        # raises KeyError once and the slow path parses and remembers it.
        prices, qtys = self._prices, self._qtys
        try:
            return [(prices[p], qtys[q]) for p, q in pairs]
        except KeyError:
            pass
        out = []
        append, price, qty = out.append, self.price, self.qty
        for p, q in pairs:
            ticks = prices.get(p)
            steps = qtys.get(q)
            append((price(p) if ticks is None else ticks, qty(q) if steps is None else steps))
        return out

    def _remember(self, cache: dict[str, int], grid: values.Grid, text: str) -> int:
        try:
            units = grid.parse(text)
        except ValueError as exc:
            raise MalformedMessage(str(exc)) from exc
        if len(cache) >= self.max_cache:
            cache.clear()
        cache[text] = units
        return units


def depth_event(msg: DepthUpdate, parser: LevelParser) -> book_mod.DepthEvent:
    return book_mod.DepthEvent(
        first_id=msg.U, final_id=msg.u, prev_final_id=msg.pu,
        bids=parser.levels(msg.b), asks=parser.levels(msg.a),
        ts_event_ms=msg.E, ts_transact_ms=msg.T,
    )


def snapshot_levels(msg: DepthSnapshot, parser: LevelParser) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    return parser.levels(msg.bids), parser.levels(msg.asks)


# -- user data stream -------------------------------------------------------------------------
class OrderUpdateBody(msgspec.Struct):
    s: str
    c: str
    S: str
    o: str
    f: str
    q: str
    p: str
    ap: str
    x: str
    X: str
    i: int
    l: str  # noqa: E741 - the venue's key
    z: str
    L: str
    T: int
    t: int
    m: bool
    R: bool
    ps: str
    sp: str | None = "0"  # null on liquidation orders (real payloads)
    N: str | None = None
    n: str | None = None
    ot: str = ""
    rp: str = "0"
    wt: str = "CONTRACT_PRICE"
    cp: bool = False
    AP: str | None = None  # activation price (trailing), null elsewhere
    cr: str | None = None  # callback rate (trailing)
    pP: bool = False
    V: str | None = "NONE"  # selfTradePreventionMode (null on some payloads)
    pm: str = "NONE"
    gtd: int = 0


class OrderTradeUpdate(msgspec.Struct, tag_field="e", tag="ORDER_TRADE_UPDATE"):
    E: int
    T: int
    o: OrderUpdateBody


class TradeLite(msgspec.Struct, tag_field="e", tag="TRADE_LITE"):
    E: int
    T: int
    s: str
    q: str
    p: str
    m: bool
    c: str
    S: str
    L: str
    l: str  # noqa: E741
    t: int
    i: int


class BalanceChange(msgspec.Struct):
    a: str
    wb: str
    cw: str
    bc: str = "0"


class PositionChange(msgspec.Struct):
    s: str
    pa: str
    ep: str
    up: str
    mt: str
    ps: str
    cr: str = "0"
    iw: str = "0"
    bep: str = "0"


class AccountUpdateBody(msgspec.Struct):
    m: str
    B: list[BalanceChange]
    P: list[PositionChange]


class AccountUpdate(msgspec.Struct, tag_field="e", tag="ACCOUNT_UPDATE"):
    E: int
    T: int
    a: AccountUpdateBody


class ListenKeyExpired(msgspec.Struct, tag_field="e", tag="listenKeyExpired"):
    E: int
    listenKey: str = ""


class AlgoUpdateBody(msgspec.Struct):
    """An algo (conditional) order's update: its status X (NEW, CANCELED, TRIGGERING, TRIGGERED, FINISHED,
    REJECTED, EXPIRED) and, once triggered, `ai`, the id of the actual order the venue placed."""

    caid: str
    aid: int
    s: str
    S: str
    o: str
    X: str
    q: str = "0"
    ai: str = ""
    tp: str = "0"
    p: str = "0"
    R: bool = False
    cp: bool = False
    tt: int = 0
    rm: str = ""


class AlgoUpdate(msgspec.Struct, tag_field="e", tag="ALGO_UPDATE"):
    E: int
    T: int
    o: AlgoUpdateBody


UserEvent = Union[OrderTradeUpdate, TradeLite, AccountUpdate, ListenKeyExpired, AlgoUpdate]
_user_decoder = msgspec.json.Decoder(UserEvent)


def decode_user_event(raw: bytes | str) -> UserEvent:
    try:
        return _user_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedMessage(str(exc)) from exc
