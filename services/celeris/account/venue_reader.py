"""The account monitor's VenueReader (and BracketSource) made real: the venue's REST account and leverage
brackets through the Binance parsers, and its FUNDING_FEE income history (GET /fapi/v1/income) for the
symbol of each funding payment."""

from __future__ import annotations

from typing import Any

from celeris.account.ledger import VenueAccount
from celeris.domain.funding import MARGIN_ASSET
from celeris.domain.instruments import Instrument
from celeris.domain.margin import BracketTable
from celeris.domain.values import money
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

    async def funding_income(self, start_ms: int) -> list[tuple[int, str, int]]:
        body = await self.rest.request("GET", "/fapi/v1/income", {"incomeType": "FUNDING_FEE", "startTime": start_ms,
                                                                   "limit": 1000}, signed=True, weight=30)
        return parse_funding_income(body)


def parse_funding_income(body: Any) -> list[tuple[int, str, int]]:
    """The venue's income records of FUNDING_FEE in USDT, as (tranId, symbol, money units received)."""
    return [(int(r["tranId"]), r["symbol"], money(r["income"])) for r in body
            if r.get("incomeType") == "FUNDING_FEE" and r.get("asset", MARGIN_ASSET) == MARGIN_ASSET]
