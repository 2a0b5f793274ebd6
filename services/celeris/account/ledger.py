"""The account ledger: balances, positions, marks and leverage as the venue's events and REST say.

Owns what the account holds, in integers: the USDT wallet (money units), every other asset's balance the
venue reports (BNB for the fee discount, BNFCR credit, ...) in that asset's units, one domain `Position` per
(symbol, position side) (hedge-mode LONG and SHORT are kept apart, never netted), mark prices in ticks,
and the figures derived from them through celeris.domain.positions (unrealized PnL, notional,
maintenance margin, equity, margin ratio in ppm, liquidation price in ticks), by the venue's leverage
brackets (`brackets`, symbol -> BracketTable) where known and exchangeInfo's flat rate where not, with
isolated-margin positions (`isolated`) on their own wallet. It applies ACCOUNT_UPDATE events (a FUNDING_FEE
one is a funding payment: the wallet's move, on the symbol its position list names, if any) and adopts a
venue snapshot wholesale (the venue wins); PnL statistics and reconciliation live in account/pnl.py and
account/reconciliation.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from celeris.domain.funding import MARGIN_ASSET, asset_units
from celeris.domain.instruments import Instrument
from celeris.domain.margin import BracketTable
from celeris.domain.positions import (Position, liquidation_ticks, margin_ratio_ppm, position_at_entry,
                                      price_to_ticks)
from celeris.domain.values import money
from celeris.venues.binance import codec
from celeris.venues.binance.account import PositionKey

__all__ = ["AccountLedger", "PositionKey", "VenueAccount"]


@dataclass
class VenueAccount:
    """The venue's view, as a VenueReader reads it.

    wallet: money units. positions: (symbol, side) -> a domain Position, or (signed qty in steps, entry
    price) with the entry a decimal string or exact rational (as the paper account and tests give it).
    marks: symbol -> ticks (int), or a price as a decimal string or exact rational. Both are converted once,
    exactly, when the ledger adopts the snapshot.
    """

    wallet: int
    positions: dict[PositionKey, Any]
    marks: dict[str, Any]
    leverage: dict[str, int]
    isolated: dict[PositionKey, int] = field(default_factory=dict)
    """The isolated wallet (money units) of each isolated-margin position; the others are cross."""


class AccountLedger:
    def __init__(self, instruments: dict[str, Instrument]) -> None:
        self.instruments = instruments
        self.wallet = 0
        self.balances: dict[str, int] = {}
        """Wallet balance of each asset other than USDT, in that asset's units (domain.funding.asset_scale)."""
        self.positions: dict[PositionKey, Position] = {}
        self.marks: dict[str, int] = {}
        """Mark prices in ticks."""
        self.leverage: dict[str, int] = {}
        self.brackets: dict[str, BracketTable] = {}
        self.isolated: dict[PositionKey, int] = {}
        """Isolated wallet per isolated-margin position, money units (part of `wallet`, not of the cross wallet)."""
        """The venue's leverage brackets by symbol; a symbol without falls back to exchangeInfo's flat rate."""

    # -- inputs -----------------------------------------------------------------------------------
    def apply_account_update(self, event: codec.AccountUpdate) -> tuple[set[str], list[tuple[str, int]]]:
        """Apply an ACCOUNT_UPDATE; returns the sections it changed and the funding it paid, as (symbol,
        money units) ("" for the symbol when the event names none: cross margin lists no position)."""
        changed = set()
        funding = []
        symbols = sorted({p.s for p in event.a.P})
        for balance in event.a.B:
            if balance.a == MARGIN_ASSET:
                new = money(balance.wb)
                if event.a.m == "FUNDING_FEE":  # the wallet moved by the funding payment alone
                    funding.append((symbols[0] if len(symbols) == 1 else "", new - self.wallet))
                self.wallet = new
            else:
                self.balances[balance.a] = asset_units(balance.wb, balance.a)
            changed.add("balances")
        for p in event.a.P:
            ins = self.instruments.get(p.s)
            if ins is None:
                continue
            self.positions[(p.s, p.ps)] = position_at_entry(ins, ins.qty(p.pa), p.ep)
            if p.mt == "isolated":
                self.isolated[(p.s, p.ps)] = money(p.iw)
            else:
                self.isolated.pop((p.s, p.ps), None)
            changed.add("positions")
        return changed, funding

    def price_of(self, asset: str) -> tuple[int, int] | None:
        """The price of an asset in USDT, (units, scale), from the `{asset}USDT` mark if one is followed."""
        if asset == MARGIN_ASSET:
            return 1, 0
        symbol = asset + MARGIN_ASSET
        ticks = self.marks.get(symbol)
        if ticks is None:
            return None
        grid = self.instruments[symbol].price_grid
        return grid.units(ticks), grid.scale

    def set_mark(self, symbol: str, mark_price: str) -> None:
        ins = self.instruments.get(symbol)
        if ins is not None:
            self.marks[symbol] = price_to_ticks(ins, mark_price)

    def update_marks(self, marks: dict[str, Any]) -> None:
        for symbol, value in marks.items():
            ins = self.instruments.get(symbol)
            if ins is not None:
                self.marks[symbol] = value if isinstance(value, int) else price_to_ticks(ins, value)

    def adopt(self, venue: VenueAccount) -> None:
        """Take the venue's wallet and positions as ours; a position the venue does not list is flat."""
        self.wallet = venue.wallet
        self.isolated = dict(venue.isolated)
        for key in list(self.positions):
            if key not in venue.positions:
                self.positions[key] = Position(self.positions[key].instrument)
        for key, value in venue.positions.items():
            self.positions[key] = self._position(key, value)

    def _position(self, key: PositionKey, value: Any) -> Position:
        if isinstance(value, Position):
            return value
        qty, entry = value
        return position_at_entry(self.instruments[key[0]], qty, entry)

    # -- figures (integers) -----------------------------------------------------------------------
    def unrealized(self, key: PositionKey) -> int:
        """Money units at the mark (0 without a mark)."""
        mark = self.marks.get(key[0])
        return self.positions[key].unrealized_pnl(mark) if mark is not None else 0

    def notional(self, key: PositionKey) -> int:
        """Absolute notional at the mark, money units (0 without a mark)."""
        mark = self.marks.get(key[0])
        return self.positions[key].notional(mark) if mark is not None else 0

    def maint_margin_of(self, key: PositionKey) -> int:
        mark = self.marks.get(key[0])
        return self.positions[key].maint_margin(mark, self.brackets.get(key[0])) if mark is not None else 0

    def unrealized_total(self) -> int:
        return sum(self.unrealized(k) for k in self.positions)

    def equity(self) -> int:
        """Wallet + unrealized PnL (the margin balance), money units."""
        return self.wallet + self.unrealized_total()

    def maint_margin(self) -> int:
        return sum(self.maint_margin_of(k) for k in self.positions)

    def initial_margin(self) -> int:
        """Initial margin of the positions at the mark (notional / leverage, each rounded up), money units; a
        symbol whose leverage the venue has not told counts at 1x, so the figure never overstates room."""
        return sum(-(-self.notional(k) // max(1, self.leverage.get(k[0], 1))) for k in self.positions)

    def available_balance(self) -> int:
        """What new orders can use, as the venue figures it for positions: margin balance less the
        positions' initial margin (open orders' margin is the venue's to add; not known here), never < 0."""
        return max(0, self.equity() - self.initial_margin())

    def cross_wallet(self) -> int:
        """The wallet less the isolated positions' wallets: what every cross position shares."""
        return self.wallet - sum(self.isolated.values())

    def margin_ratio_ppm(self) -> int:
        """Binance's cross margin ratio: the cross positions' maintenance margin over the cross wallet plus
        their unrealized PnL, ppm rounded up (1_000_000 is liquidation). Isolated positions have their own
        (`position_margin_ratio_ppm`)."""
        return margin_ratio_ppm(self.cross_wallet(), ((p, self.marks[k[0]]) for k, p in self.positions.items()
                                                      if k[0] in self.marks and k not in self.isolated), self.brackets)

    def position_margin_ratio_ppm(self, key: PositionKey) -> int:
        """An isolated position's own ratio (maintenance margin / isolated wallet + its PnL); a cross one's
        is the account's."""
        if key not in self.isolated or key[0] not in self.marks:
            return self.margin_ratio_ppm()
        return margin_ratio_ppm(self.isolated[key], [(self.positions[key], self.marks[key[0]])], self.brackets)

    def liquidation_ticks(self, key: PositionKey) -> int | None:
        """The venue's liquidation price of one position, in ticks (None when flat): an isolated position by its
        isolated wallet alone; a cross one by the cross wallet and the other cross positions' maintenance
        margin and unrealized PnL."""
        if key in self.isolated:
            return liquidation_ticks(self.positions[key], self.isolated[key], brackets=self.brackets.get(key[0]))
        others = [k for k in self.positions if k != key and k not in self.isolated]
        return liquidation_ticks(self.positions[key], self.cross_wallet(),
                                 sum(self.maint_margin_of(k) for k in others),
                                 sum(self.unrealized(k) for k in others), self.brackets.get(key[0]))
