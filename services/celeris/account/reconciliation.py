"""Reconciliation of the ledger with the venue's account: what differs, by how much, and the record of it.

Owns the comparison rules (a position differs when its size is off by more than the tolerance in steps,
measured against the larger of the two sizes; the wallet when it is off by more than the tolerance in
money units, measured against the venue's wallet) and `ReconStats`, the counters the APIs and metrics
report. Pure: reading the venue, waiting for in-flight events, adopting its view and halting are the
monitor's (account/engine.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from celeris.account.ledger import AccountLedger, VenueAccount
from celeris.domain.positions import Position
from celeris.domain.ratios import format_ppm_pct, money_decimal, ppm_pct_decimal, ratio_ppm


@dataclass
class ReconStats:
    runs: int = 0
    mismatches: int = 0
    worst_ppm: int = 0
    """The largest discrepancy seen, ppm of the compared figure."""
    last_run_ns: int = 0
    halts: int = 0
    last_discrepancies: list[str] = field(default_factory=list)

    @property
    def worst_pct(self) -> Decimal:
        """The largest discrepancy seen, in percent (exported)."""
        return ppm_pct_decimal(self.worst_ppm)


def _venue_qty(value: object) -> int:
    return value.qty_steps if isinstance(value, Position) else value[0]  # type: ignore[index]


def compare(ledger: AccountLedger, venue: VenueAccount, qty_tolerance_steps: int,
            balance_tolerance: int) -> tuple[list[str], int]:
    """The discrepancies between ours and the venue's (texts for logs and alerts) and the worst, in ppm."""
    found = []
    worst = 0
    for key in sorted(set(ledger.positions) | set(venue.positions)):
        local = ledger.positions[key].qty_steps if key in ledger.positions else 0
        remote = _venue_qty(venue.positions[key]) if key in venue.positions else 0
        diff = abs(local - remote)
        if diff > qty_tolerance_steps:
            ppm = ratio_ppm(diff, max(abs(remote), abs(local), 1))
            worst = max(worst, ppm)
            ins = ledger.instruments[key[0]]
            found.append(f"{key[0]} {key[1]} position: ours {ins.format_qty(local)}, "
                         f"venue {ins.format_qty(remote)} ({format_ppm_pct(ppm)} %)")
    gap = abs(ledger.wallet - venue.wallet)
    if gap > balance_tolerance:
        ppm = ratio_ppm(gap, max(abs(venue.wallet), 1))
        worst = max(worst, ppm)
        found.append(f"USDT wallet: ours {money_decimal(ledger.wallet)}, venue {money_decimal(venue.wallet)} "
                     f"({format_ppm_pct(ppm, 4)} %)")
    return found, worst
