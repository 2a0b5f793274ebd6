"""In simulation mode the risk manager judges the paper account with the venue's leverage brackets: the
paper account trades the venue's symbols, so its maintenance margin is the venue's tiered one, not
exchangeInfo's flat rate (a large position would otherwise look safer or riskier than the venue says)."""

from __future__ import annotations

from fractions import Fraction

from celeris.assembly.paper_account import ModeRouted, PaperAccountSource
from celeris.domain.book import BookState
from celeris.domain.clock import TestClock
from celeris.domain.messages import BookUpdate
from celeris.domain.modes import Mode
from celeris.domain.positions import Position
from celeris.domain.values import MONEY_SCALE
from celeris.execution.paper import PaperVenue
from celeris.marketdata.verify import bundled_instruments
from celeris.risk import metrics
from celeris.risk.adapters import VenueAccountSource
from celeris.venues.binance.account import parse_leverage_brackets
from tests.support.leverage_brackets import BODY_NUMBERS

INS = bundled_instruments()["BTCUSDT"]
TABLES = parse_leverage_brackets(BODY_NUMBERS)


class Venue:
    """The venue side of ModeRouted: counts bracket reads."""

    def __init__(self) -> None:
        self.reads = 0

    async def leverage_brackets(self):
        self.reads += 1
        return TABLES

    async def snapshot(self):  # pragma: no cover - never asked in simulation mode
        raise AssertionError("the venue's account is not the one traded in simulation mode")


def paper_long(qty_steps: int, mid_ticks: int) -> PaperVenue:
    paper = PaperVenue({"BTCUSDT": INS}, TestClock(), latency_ms=0)
    paper.account_positions["BTCUSDT"] = Position(INS, qty_steps, Fraction(mid_ticks * qty_steps))
    paper.on_book(BookUpdate("BTCUSDT", 1, BookState.LIVE, True, [(mid_ticks - 1, 5_000)],
                             [(mid_ticks + 1, 5_000)], 1, 0, 0))
    return paper


async def test_simulation_mode_snapshots_carry_the_venues_brackets():
    mode = [Mode.SIMULATION]
    venue = Venue()
    routed = ModeRouted(lambda: mode[0], PaperAccountSource(paper_long(10_000, 600_000)), venue)
    snapshot = await routed.snapshot()
    assert snapshot.brackets == TABLES
    tiered = metrics.compute(snapshot, None, None)
    flat = metrics.compute(await PaperAccountSource(paper_long(10_000, 600_000)).snapshot(), None, None)
    # 10 BTC at 60,000 = 600,000 USDT notional: bracket 3 (1 %, cum 1,300) = 4,700, against 2.5 % flat = 15,000.
    assert tiered.margin_ratio_ppm < flat.margin_ratio_ppm
    assert tiered.margin_ratio_ppm == metrics._ratio((600_000 // 100 - 1_300) * 10**MONEY_SCALE, tiered.equity_units)


async def test_venue_brackets_are_read_once_for_the_paper_account(monkeypatch):
    reads = []

    async def read(rest, symbol=None):
        reads.append(symbol)
        return TABLES

    monkeypatch.setattr("celeris.risk.adapters.read_leverage_brackets", read)
    source = VenueAccountSource(rest=None, instruments={"BTCUSDT": INS})
    routed = ModeRouted(lambda: Mode.SIMULATION, PaperAccountSource(paper_long(1_000, 600_000)), source)
    for _ in range(3):
        assert (await routed.snapshot()).brackets == TABLES
    assert reads == [None]
