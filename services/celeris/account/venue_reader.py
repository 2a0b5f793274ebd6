"""The account monitor's VenueReader made real: the venue's REST account through the Binance parser, and
its FUNDING_FEE income history (GET /fapi/v1/income) for the symbol of each funding payment."""

from __future__ import annotations

from typing import Any

from celeris.account.ledger import VenueAccount
from celeris.domain.funding import MARGIN_ASSET
from celeris.domain.instruments import Instrument
from celeris.domain.values import money
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

    async def funding_income(self, start_ms: int) -> list[tuple[int, str, int]]:
        body = await self.rest.request("GET", "/fapi/v1/income", {"incomeType": "FUNDING_FEE", "startTime": start_ms,
                                                                   "limit": 1000}, signed=True, weight=30)
        return parse_funding_income(body)


def parse_funding_income(body: Any) -> list[tuple[int, str, int]]:
    """The venue's income records of FUNDING_FEE in USDT, as (tranId, symbol, money units received)."""
    return [(int(r["tranId"]), r["symbol"], money(r["income"])) for r in body
            if r.get("incomeType") == "FUNDING_FEE" and r.get("asset", MARGIN_ASSET) == MARGIN_ASSET]
