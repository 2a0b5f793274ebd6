"""The account monitor's VenueReader (and BracketSource) made real: the venue's REST account and leverage
brackets through the Binance parsers."""

from __future__ import annotations

from typing import Any

from celeris.account.ledger import VenueAccount
from celeris.domain.instruments import Instrument
from celeris.domain.margin import BracketTable
from celeris.venues.binance.account import read_account, read_leverage_brackets


class RestVenueReader:
    def __init__(self, rest: Any, instruments: dict[str, Instrument]) -> None:
        self.rest = rest
        self.instruments = instruments

    async def account(self) -> VenueAccount:
        account, marks = await read_account(self.rest, self.instruments)
        # Flat positions are left out: the ledger takes a position the venue does not list as flat.
        positions = {key: pos for key, pos in account.positions.items() if pos.qty_steps}
        isolated = {key: w for key, w in account.isolated_wallets.items() if key in positions}
        return VenueAccount(account.usdt_wallet, positions, marks, account.leverage, isolated)

    async def leverage_brackets(self, symbol: str | None = None) -> dict[str, BracketTable]:
        tables = await read_leverage_brackets(self.rest, symbol)
        return {s: t for s, t in tables.items() if s in self.instruments}
