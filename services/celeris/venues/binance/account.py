"""The venue's account as domain values: the one parser of /fapi/v2/account and /fapi/v1/premiumIndex.

Owns the translation of Binance's account documents into integers: balances and margins are money units
(celeris.domain.values.money, MONEY_SCALE), sizes are steps of the instrument's quantity grid, positions
are domain `Position`s (their exact average entry kept by celeris.domain.positions), mark prices are
ticks of the instrument's price grid (the venue publishes them with 8 decimals, finer than the tick; the
nearest tick is kept). Symbols without an instrument are skipped: we neither trade nor value them.
The account monitor and the risk manager read the account through here, and the leverage brackets
(GET /fapi/v1/leverageBracket) as domain BracketTables (`parse_leverage_brackets`, `read_leverage_brackets`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping

from celeris.domain import margin
from celeris.domain.instruments import Instrument
from celeris.domain.positions import Position, position_at_entry, price_to_ticks
from celeris.domain.values import MONEY_SCALE, money, parse_decimal

PositionKey = tuple[str, str]
"""(symbol, position side: BOTH in one-way mode, LONG | SHORT in hedge mode)."""

DEFAULT_LEVERAGE = 20
"""What a position without a "leverage" field is taken to use (the venue's default for new symbols)."""


@dataclass(frozen=True)
class BinanceAccount:
    """/fapi/v2/account in integers."""

    usdt_wallet: int
    """The USDT asset's walletBalance (totalWalletBalance when the assets list has no USDT)."""
    total_wallet: int
    """totalWalletBalance: every asset's wallet, in USDT."""
    available: int
    """availableBalance."""
    open_order_margin: int
    """totalOpenOrderInitialMargin."""
    positions: dict[PositionKey, Position]
    """Every position the venue lists for a known symbol, flat ones included (qty_steps 0)."""
    leverage: dict[str, int]
    isolated_wallets: dict[PositionKey, int] = field(default_factory=dict)
    """isolatedWallet of each isolated-margin position (money units); cross positions are not listed."""


def parse_account(body: Mapping[str, Any], instruments: Mapping[str, Instrument]) -> BinanceAccount:
    """Parse a /fapi/v2/account (or v3) body; raises DecimalFormatError / OffGridError on a malformed value."""
    total_wallet = money(body["totalWalletBalance"])
    usdt_wallet = next((money(a["walletBalance"]) for a in body.get("assets", ()) if a.get("asset") == "USDT"),
                       total_wallet)
    positions: dict[PositionKey, Position] = {}
    leverage: dict[str, int] = {}
    isolated: dict[PositionKey, int] = {}
    for p in body.get("positions", ()):
        ins = instruments.get(p["symbol"])
        if ins is None:
            continue
        qty = ins.qty(p["positionAmt"])
        key = (p["symbol"], p.get("positionSide", "BOTH"))
        positions[key] = position_at_entry(ins, qty, p.get("entryPrice", "0")) if qty else Position(ins)
        leverage[p["symbol"]] = int(p.get("leverage", DEFAULT_LEVERAGE))
        if p.get("isolated") is True:  # v2's flag (v3 has no flag: its positions read as cross)
            isolated[key] = money(p.get("isolatedWallet", "0"))
    return BinanceAccount(usdt_wallet, total_wallet, money(body.get("availableBalance", "0")),
                          money(body.get("totalOpenOrderInitialMargin", "0")), positions, leverage, isolated)


def parse_marks(body: Any, instruments: Mapping[str, Instrument]) -> dict[str, int]:
    """Mark prices in ticks from /fapi/v1/premiumIndex (a list, or one object when asked for one symbol)."""
    out: dict[str, int] = {}
    for m in body if isinstance(body, list) else [body]:
        ins = instruments.get(m["symbol"])
        if ins is not None:
            out[m["symbol"]] = price_to_ticks(ins, m["markPrice"])
    return out


async def read_account(rest: Any, instruments: Mapping[str, Instrument]) -> tuple[BinanceAccount, dict[str, int]]:
    """The account and every mark, read concurrently (weights 5 + 1) through a BinanceRestClient.

    v2's account flags an isolated position but does not carry its wallet (the recorded real answer has no
    isolatedWallet); when a position is isolated, /fapi/v2/positionRisk (weight 5) gives it."""
    body, marks = await asyncio.gather(
        rest.request("GET", "/fapi/v2/account", signed=True, weight=5),
        rest.request("GET", "/fapi/v1/premiumIndex", weight=1))
    account = parse_account(body, instruments)
    if account.isolated_wallets:
        risk = await rest.request("GET", "/fapi/v2/positionRisk", signed=True, weight=5)
        account.isolated_wallets.update(parse_isolated_wallets(risk, account.isolated_wallets))
    return account, parse_marks(marks, instruments)


def parse_isolated_wallets(body: Any, isolated: Mapping[PositionKey, int]) -> dict[PositionKey, int]:
    """isolatedWallet of the isolated positions named in `isolated`, from a /fapi/v2/positionRisk body."""
    out = {}
    for p in body:
        key = (p["symbol"], p.get("positionSide", "BOTH"))
        if key in isolated:
            out[key] = money(p.get("isolatedWallet", "0"))
    return out


def _scaled(value: Any, scale: int) -> int:
    """A venue number (JSON int, float or decimal string) -> integer units of 10**-scale, half to even.

    Floats are read through their shortest repr (what the venue's JSON said: 0.0065, not its binary
    neighbour) and a rate with more digits than `scale` rounds, as RATE_ONE is finer than any the venue uses.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    text = value if isinstance(value, str) else format(Decimal(repr(value)) if isinstance(value, float)
                                                         else Decimal(int(value)), "f")
    mantissa, digits = parse_decimal(text)
    if digits <= scale:
        return mantissa * 10 ** (scale - digits)
    return margin.div_half_even(mantissa, 10 ** (digits - scale))


def parse_leverage_brackets(body: Any) -> dict[str, margin.BracketTable]:
    """GET /fapi/v1/leverageBracket (a list, or one object when asked for one symbol) -> symbol -> table.

    `notionalCoef` (a user's adjusted tiers) needs no handling: the venue sends the floors and caps already
    multiplied. Raises ValueError on a malformed table (gaps, falling rates): no guessing at risk figures.
    """
    out: dict[str, margin.BracketTable] = {}
    for entry in body if isinstance(body, list) else [body]:
        rows = [margin.LeverageBracket(
            bracket=int(b["bracket"]), initial_leverage=int(b["initialLeverage"]),
            notional_floor=_scaled(b["notionalFloor"], MONEY_SCALE),
            notional_cap=_scaled(b["notionalCap"], MONEY_SCALE),
            maint_rate=_scaled(b["maintMarginRatio"], margin.RATE_SCALE),
            maint_amount=_scaled(b.get("cum", 0), MONEY_SCALE))
            for b in entry["brackets"]]
        symbol = entry.get("symbol") or entry["pair"]
        out[symbol] = margin.BracketTable(symbol, margin.brackets_in_order(rows))
    return out


async def read_leverage_brackets(rest: Any, symbol: str | None = None) -> dict[str, margin.BracketTable]:
    """The account's leverage brackets (USER_DATA, weight 1) through a BinanceRestClient."""
    body = await rest.request("GET", "/fapi/v1/leverageBracket", {"symbol": symbol} if symbol else None,
                              signed=True, weight=1)
    return parse_leverage_brackets(body)
