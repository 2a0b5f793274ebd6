"""The account monitor's VenueReader made real: the venue's REST account through the Binance parser."""

from __future__ import annotations

from typing import Any

from celeris.account.ledger import VenueAccount
from celeris.domain.instruments import Instrument
from celeris.venues.binance.account import read_account


class RestVenueReader:
    def __init__(self, rest: Any, instruments: dict[str, Instrument]) -> None:
        self.rest = rest
        self.instruments = instruments

    async def account(self) -> VenueAccount:
        account, marks = await read_account(self.rest, self.instruments)
        # Flat positions are left out: the ledger takes a position the venue does not list as flat.
        positions = {key: pos for key, pos in account.positions.items() if pos.qty_steps}
        return VenueAccount(account.usdt_wallet, positions, marks, account.leverage)
