"""Funding in the paper venue: at the mark price stream's funding time the paper position pays or receives
notional at the mark x rate (positive rate: longs pay shorts), half-even to 1e-8 USDT, once per funding
time, on the event clock (the wall clock and the injected clock say nothing); and the paper venue and the
simulator (the venue's model, exchange_sim/margin.py apply_funding) agree on the payment."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings, strategies as st

from celeris.domain.clock import NS_PER_MS, TestClock
from celeris.domain.funding import funding_payment
from celeris.domain.messages import MarkUpdate
from celeris.domain.positions import Position
from celeris.domain.values import MONEY_SCALE, format_units
from celeris.execution.paper import PaperVenue
from celeris.marketdata.verify import bundled_instruments

INS = bundled_instruments()["BTCUSDT"]
FUNDING_MS = 1_723_190_400_000  # 2024-08-09 08:00 UTC

qtys = st.integers(-5_000_000, 5_000_000).filter(bool)  # steps of 0.001 BTC, never flat
marks = st.integers(1, 10**15)  # the mark with 8 decimals: up to 10 million USDT
rates = st.integers(-3_000_000, 3_000_000)  # 8 decimals: up to +-3 %


def dec8(units: int) -> str:
    return format_units(units, 8)


def reference(qty_steps: int, mark_units: int, rate_units: int) -> int:
    """The oracle, in exact rationals: -qty x mark x rate, Python's round (half to even) at 1e-8."""
    value = -INS.qty_fraction(qty_steps) * Fraction(mark_units, 10**8) * Fraction(rate_units, 10**8)
    return round(value * 10**MONEY_SCALE)


@given(qtys, marks, rates)
def test_payment_is_notional_times_rate_rounded_half_even(qty, mark, rate):
    amount = funding_payment(INS, qty, dec8(mark), dec8(rate))
    assert isinstance(amount, int)
    assert amount == reference(qty, mark, rate)
    # Positive rate: longs pay, shorts receive; negative: the other way round; the two sides mirror.
    if rate > 0:
        assert (amount <= 0) if qty > 0 else (amount >= 0)
    elif rate < 0:
        assert (amount >= 0) if qty > 0 else (amount <= 0)
    else:
        assert amount == 0
    assert funding_payment(INS, -qty, dec8(mark), dec8(rate)) == -amount


def test_half_a_unit_rounds_to_even():
    # 0.001 BTC x 1 USDT x 0.000015 = 1.5e-8 -> 2e-8; x 0.000025 = 2.5e-8 -> 2e-8; x 0.000035 -> 4e-8.
    assert funding_payment(INS, -1, "1.00000000", "0.00001500") == 2
    assert funding_payment(INS, -1, "1.00000000", "0.00002500") == 2
    assert funding_payment(INS, -1, "1.00000000", "0.00003500") == 4
    assert funding_payment(INS, 1, "1.00000000", "0.00002500") == -2


def mark(ts_ms: int, price: str, rate: str, next_ms: int = FUNDING_MS) -> MarkUpdate:
    return MarkUpdate("BTCUSDT", price, price, rate, next_ms, ts_ms * NS_PER_MS)


def paper_with(qty_steps: int, entry_ticks: int = 600_000) -> PaperVenue:
    # The injected clock is far from the events' time: funding must follow the events, not the clock.
    paper = PaperVenue({"BTCUSDT": INS}, TestClock(start_ns=0), latency_ms=0)
    paper.account_positions["BTCUSDT"] = Position(INS, qty_steps, Fraction(entry_ticks * abs(qty_steps)))
    return paper


@settings(max_examples=60)
@given(qtys, marks, rates)
def test_paper_settles_once_at_the_funding_time_with_the_mark_then(qty, mark_units, rate):
    paper = paper_with(qty)
    wallet = paper.wallet
    paper.on_mark(mark(FUNDING_MS - 3000, "1.00000000", "0.00090000"))  # an earlier estimate of the rate
    paper.on_mark(mark(FUNDING_MS - 1000, dec8(mark_units), dec8(rate)))  # the last before the time
    assert paper.wallet == wallet and not paper.fundings  # not yet: the time has not come
    paper.on_mark(mark(FUNDING_MS + 1000, "99999.00000000", "0.00050000", FUNDING_MS + 8 * 3_600_000))
    expected = reference(qty, mark_units, rate)
    assert paper.wallet == wallet + expected
    assert paper.funding_paid["BTCUSDT"] == expected == paper.funding_total
    # Later events past the same time never settle it again.
    paper.on_mark(mark(FUNDING_MS + 4000, "99999.00000000", "0.00050000", FUNDING_MS + 8 * 3_600_000))
    assert paper.wallet == wallet + expected
    assert len(paper.fundings) == 1


def test_a_mark_exactly_at_the_funding_time_is_the_mark_used():
    paper = paper_with(1000)  # long 1 BTC
    paper.on_mark(mark(FUNDING_MS - 1000, "60000.00000000", "0.00010000"))
    paper.on_mark(mark(FUNDING_MS, "61000.00000000", "0.00010000", FUNDING_MS + 8 * 3_600_000))
    assert paper.funding_total == -610_000_000  # 61000 x 0.0001 = 6.1 USDT paid by the long


def test_a_book_or_trade_event_past_the_time_settles_it_too():
    from celeris.domain.book import BookState
    from celeris.domain.messages import BookUpdate

    paper = paper_with(-2000)  # short 2 BTC receives at a positive rate
    paper.on_mark(mark(FUNDING_MS - 1000, "60000.00000000", "0.00010000"))
    paper.on_book(BookUpdate("BTCUSDT", 1, BookState.STALE, False, [], [], 1, (FUNDING_MS + 5) * NS_PER_MS, 0))
    assert paper.funding_total == 1_200_000_000  # 2 x 60000 x 0.0001 = 12 USDT received


def test_no_funding_on_a_flat_position_or_before_any_mark():
    paper = paper_with(0)
    paper.on_mark(mark(FUNDING_MS - 1000, "60000.00000000", "0.00010000"))
    paper.on_mark(mark(FUNDING_MS + 1000, "60000.00000000", "0.00010000", FUNDING_MS + 8 * 3_600_000))
    assert paper.funding_total == 0 and not paper.fundings


def test_observers_are_told_of_each_payment():
    paper = paper_with(1000)
    told = []
    paper.funding_observers.append(told.append)
    paper.on_mark(mark(FUNDING_MS - 1000, "60000.00000000", "-0.00020000"))
    paper.on_mark(mark(FUNDING_MS + 1000, "60000.00000000", "0.00010000", FUNDING_MS + 8 * 3_600_000))
    assert [(p.symbol, p.qty_steps, p.amount, p.funding_time_ms) for p in told] == [
        ("BTCUSDT", 1000, 1_200_000_000, FUNDING_MS)]  # negative rate: the long receives 12 USDT


# -- paper = venue -----------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(qtys, st.integers(100_000, 2_000_000), rates)
def test_paper_and_the_simulator_agree_on_a_funding_payment(qty, mark_ticks, rate):
    from celeris.exchange_sim.positions import SimPosition
    from celeris.exchange_sim.server import SimVenue
    from celeris.exchange_sim.wire import mark_str, rate_str
    from tests.sim.conftest import API_KEY, API_SECRET

    sim = SimVenue(symbols=["BTCUSDT"], api_key=API_KEY, api_secret=API_SECRET,
                   clock=TestClock(start_ns=FUNDING_MS * NS_PER_MS), seed=1)
    book = sim.engine.books["BTCUSDT"]
    account = sim.engine.accounts[API_KEY]
    sim_ins = book.instrument
    assert (sim_ins.format_price(1), sim_ins.format_qty(1)) == (INS.format_price(1), INS.format_qty(1))
    book.mark_ticks = mark_ticks
    book.funding_rate = Fraction(rate, 10**8)
    account.positions["BTCUSDT"] = SimPosition(sim_ins, qty, Fraction(mark_ticks * abs(qty)))
    before = account.wallet
    sim.engine.apply_funding("BTCUSDT")
    venue_paid = account.wallet - before

    # The paper venue hears what the venue's mark price stream says, and settles at the funding time.
    paper = paper_with(qty)
    price, r = mark_str(sim_ins, mark_ticks), rate_str(book.funding_rate)
    paper.on_mark(mark(FUNDING_MS - 1000, price, r))
    paper.on_mark(mark(FUNDING_MS + 1000, price, r, FUNDING_MS + 8 * 3_600_000))
    assert paper.funding_total == venue_paid


def test_a_stream_that_still_announces_the_past_time_does_not_settle_it_twice():
    paper = paper_with(1000)
    paper.on_mark(mark(FUNDING_MS - 1000, "60000.00000000", "0.00010000"))
    for late_ms in (1000, 2000, 3000):  # the stream rolls `T` a little after the funding time
        paper.on_mark(mark(FUNDING_MS + late_ms, "60000.00000000", "0.00010000", FUNDING_MS))
    assert paper.funding_total == -600_000_000 and len(paper.fundings) == 1


async def test_the_paper_accounts_monitor_sees_funding_as_the_venue_would_report_it():
    """Simulation mode: the account monitor follows the paper venue; a funding payment reaches it as an
    ACCOUNT_UPDATE FUNDING_FEE naming the symbol, so its wallet, funding and realized PnL agree."""
    from celeris.account.engine import AccountConfig, AccountMonitor, VenueAccount
    from celeris.assembly.paper_account import paper_user_events

    paper = paper_with(-3000, entry_ticks=600_000)  # short 3 BTC at 60,000

    class Reader:
        async def account(self):
            return VenueAccount(paper.wallet, {("BTCUSDT", "BOTH"): (paper.account_positions["BTCUSDT"].qty_steps,
                                                                    "60000")}, {"BTCUSDT": "60000"}, {})

    monitor = AccountMonitor({"BTCUSDT": INS}, TestClock(), Reader(), None, AccountConfig(confirm_delay_s=0))
    await monitor.start()
    paper.observers.append(paper_user_events(paper, monitor.on_user_event))
    paper.on_mark(mark(FUNDING_MS - 1000, "60000.00000000", "0.00010000"))
    paper.on_mark(mark(FUNDING_MS + 1000, "60000.00000000", "0.00010000", FUNDING_MS + 8 * 3_600_000))
    assert paper.funding_total == 1_800_000_000  # 3 x 60,000 x 0.01 %: the short receives 18 USDT
    assert monitor.funding_by_symbol == {"BTCUSDT": paper.funding_total}
    assert monitor.wallet == paper.wallet and monitor.realized == paper.funding_total
    assert await monitor.reconcile() == []
    await monitor.stop()


async def test_a_paper_venue_in_another_process_reports_its_funding_through_the_paper_account():
    """The services topology: no user stream carries the paper venue's funding; the account monitor reads
    it with the paper account (GetPaperAccount's fundings) every round, counts each payment once, on its
    symbol, and the wallet's move is explained (no discrepancy). Payments before it started are not its."""
    from celeris.account.engine import AccountConfig, AccountMonitor
    from celeris.assembly.paper_account import ExecutionPaperAccount, ModeRouted
    from celeris.clients.execution_pb import paper_account_pb
    from celeris.domain.modes import Mode

    paper = paper_with(1000)

    class OverTheWire(ExecutionPaperAccount):
        async def _fetch(self, wait_s: float = 30.0):
            return paper_account_pb(paper)  # what GetPaperAccount answers, without the socket

    def settle(at_ms: int, rate: str) -> None:
        paper.on_mark(mark(at_ms - 1000, "60000.00000000", rate, at_ms))
        paper.on_mark(mark(at_ms + 1000, "60000.00000000", rate, at_ms + 8 * 3_600_000))

    settle(FUNDING_MS, "0.00010000")  # before the monitor starts: -6 USDT, in the wallet it adopts
    reader = ModeRouted(lambda: Mode.SIMULATION, OverTheWire("unused:0", {"BTCUSDT": INS}), None)
    monitor = AccountMonitor({"BTCUSDT": INS}, TestClock(), reader, None, AccountConfig(confirm_delay_s=0))
    await monitor.start()
    assert monitor.funding == 0 and monitor.wallet == paper.wallet
    settle(FUNDING_MS + 8 * 3_600_000, "-0.00020000")  # the long receives 12 USDT
    assert await monitor.reconcile() == []  # the wallet's move is the funding: no discrepancy
    assert monitor.funding_by_symbol == {"BTCUSDT": 1_200_000_000} and monitor.wallet == paper.wallet
    assert await monitor.reconcile() == [] and monitor.funding == 1_200_000_000  # once
    await monitor.stop()


def test_a_funding_time_that_passed_before_the_first_mark_is_not_charged():
    paper = paper_with(1000)
    paper.on_mark(mark(FUNDING_MS + 500, "60000.00000000", "0.00010000", FUNDING_MS))  # T not rolled yet
    paper.on_mark(mark(FUNDING_MS + 1500, "60000.00000000", "0.00010000", FUNDING_MS + 8 * 3_600_000))
    assert paper.funding_total == 0 and not paper.fundings
