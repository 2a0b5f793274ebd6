"""Funding in the paper venue: the mark price stream's funding times settled on the paper positions.

Owns, per symbol, the funding time the mark price stream announces (`T`) with its rate (`r`, the latest
estimate before that time), the last mark seen, and the payments made: when the event clock (the
timestamps of the market data, never the wall clock, so a replay is deterministic) reaches a funding
time, the position pays or receives notional at the mark x rate (celeris.domain.funding: positive rate,
longs pay shorts; half-even to 1e-8 USDT), the paper wallet moves by it, and observers are told
(`FundingPaid`), as the venue's ACCOUNT_UPDATE with reason FUNDING_FEE would tell the account.
A funding time is settled once, however many events cross it.
"""

from __future__ import annotations

from typing import Callable

from celeris.domain.clock import NS_PER_MS
from celeris.domain.funding import funding_payment
from celeris.domain.instruments import Instrument
from celeris.domain.messages import FundingPaid, MarkUpdate
from celeris.domain.positions import Position


class PaperFunding:
    """Mixin of PaperVenue: funding on the event clock."""

    # Provided by PaperVenue.
    instruments: dict[str, Instrument]
    account_positions: dict[str, Position]
    wallet: int

    advance_before_event: Callable[[], None]
    """PaperTiming's: what was in flight before this event happens first."""

    def _init_funding(self) -> None:
        self.funding_paid: dict[str, int] = {s: 0 for s in self.instruments}
        """Money units received per symbol (negative: paid) since the start."""
        self.fundings: list[FundingPaid] = []
        self.funding_observers: list[Callable[[FundingPaid], None]] = []
        self._funding_due: dict[str, tuple[int, str]] = {}
        """symbol -> (next funding time ms, the rate announced for it)."""
        self._last_mark: dict[str, tuple[int, str]] = {}
        """symbol -> (event time ms, mark price) of the last mark update."""
        self._settled_ms: dict[str, int] = {}

    @property
    def funding_total(self) -> int:
        return sum(self.funding_paid.values())

    def on_mark(self, update: MarkUpdate) -> None:
        symbol = update.symbol
        if symbol not in self.instruments:
            return
        self.advance_before_event()
        now_ms = update.ts_event_ns // NS_PER_MS
        due = self._funding_due.get(symbol)
        if due is not None and now_ms == due[0]:  # this mark is the mark at the funding time
            self._last_mark[symbol] = (now_ms, update.mark_price)
        self.settle_funding_due(symbol, update.ts_event_ns)
        self._last_mark[symbol] = (now_ms, update.mark_price)
        # A time already past (the stream rolls `T` a little late) is not announced again: it was settled,
        # or it passed before this venue knew of it, when its position was not this venue's to charge.
        if update.next_funding_ms > max(now_ms, self._settled_ms.get(symbol, -1)):
            self._funding_due[symbol] = (update.next_funding_ms, update.funding_rate)

    def settle_funding_due(self, symbol: str, ts_event_ns: int) -> FundingPaid | None:
        """Settle the announced funding time of `symbol` if the event clock has reached it."""
        due = self._funding_due.get(symbol)
        if due is None or ts_event_ns // NS_PER_MS < due[0]:
            return None
        funding_ms, rate = due
        del self._funding_due[symbol]
        self._settled_ms[symbol] = funding_ms
        mark = self._last_mark.get(symbol)
        pos = self.account_positions[symbol]
        if mark is None or not pos.qty_steps:
            return None
        amount = funding_payment(self.instruments[symbol], pos.qty_steps, mark[1], rate)
        self.wallet += amount
        self.funding_paid[symbol] += amount
        paid = FundingPaid(symbol, pos.qty_steps, mark[1], rate, amount, funding_ms, ts_event_ns)
        self.fundings.append(paid)
        for observer in self.funding_observers:
            observer(paid)
        return paid
