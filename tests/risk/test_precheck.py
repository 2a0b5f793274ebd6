"""The integer pre-trade check against an independent Decimal reference of the same rules.

The reference works in real units with Decimal at 100 digits: money rounded half-even to 1e-8 per position,
ratios rounded up to 1 ppm, initial margin rounded up, policies compared with their decimal thresholds.
Thresholds are drawn AT the reference's own post-trade value and one unit either side, so every operator is
tried exactly at the limit boundary.
"""

from __future__ import annotations

import asyncio
import decimal
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

from hypothesis import HealthCheck, given, settings, strategies as st

from celeris.domain.clock import TestClock
from celeris.domain.instruments import Instrument
from celeris.domain.positions import position_at_entry
from celeris.domain.risk import Approved, Policy, PolicyKind, Scope
from celeris.domain.values import MONEY_SCALE, Side, format_units
from celeris.risk.engine import MemoryAudit, MemoryFlag, MemoryPolicyStore, RiskEngine
from celeris.risk.metrics import AccountSnapshot
from tests.conftest import load_sample

CTX = decimal.Context(prec=100)
E8, E6 = Decimal("1e-8"), Decimal("1e-6")
INF = Decimal(10**9)
ENTRY_EXTRA = 3
"""Entry prices are drawn with 3 decimals finer than the tick (an average entry is off the grid)."""


def _btc() -> Instrument:
    info = load_sample("nautilus/py_http_futures_market_exchange_info.json")
    return Instrument.from_exchange_info(next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT"))


BTC = _btc()
TICK = Decimal(BTC.price_grid.step_units).scaleb(-BTC.price_grid.scale)
STEP = Decimal(BTC.qty_grid.step_units).scaleb(-BTC.qty_grid.scale)
RATE = Decimal(BTC.maint_margin_rate.numerator) / Decimal(BTC.maint_margin_rate.denominator)
FEE = Decimal("0.0004")
UNITS = {"leverage": E6, "margin_ratio": E6, "concentration_pct": Decimal("1e-4"), "equity_usdt": E8,
         "available_margin_usdt": E8, "position_notional_usdt": E8, "total_exposure_usdt": E8}
WORSENING = {"leverage", "margin_ratio", "concentration_pct", "position_notional_usdt", "total_exposure_usdt"}


def q8(x: Decimal) -> Decimal:
    return x.quantize(E8, rounding=ROUND_HALF_EVEN, context=CTX)


def up(x: Decimal, unit: Decimal) -> Decimal:
    return x.quantize(unit, rounding=ROUND_CEILING, context=CTX)


def reference(wallet: Decimal, qty: Decimal, entry: Decimal, mark: Decimal, order: tuple[int, Decimal, Decimal] | None
              ) -> dict[str, Decimal | None]:
    """The account metrics in real units, after `order` = (sign, size, price) filled as taker (None: before)."""
    with decimal.localcontext(CTX):
        cost = abs(qty) * entry
        if order is not None:
            sign, size, price = order
            wallet -= q8(price * size * FEE)
            if qty == 0 or (qty > 0) == (sign > 0):
                qty, cost = qty + sign * size, cost + size * price
            else:
                closed = min(size, abs(qty))
                wallet += q8((1 if qty > 0 else -1) * (price - entry) * closed)
                rest = abs(qty) - closed
                qty, cost = (qty + sign * closed, rest * entry) if rest else (sign * (size - closed), (size - closed) * price)
        notional = q8(abs(qty) * mark) if qty else None
        upnl = q8((1 if qty > 0 else -1) * (mark * abs(qty) - cost)) if qty else Decimal(0)
        maint = max(q8((notional or Decimal(0)) * RATE), Decimal(0))
        initial = up((notional or Decimal(0)) / 20, E8)
        equity = wallet + upnl
        gross = notional or Decimal(0)

        def ratio(x: Decimal | None) -> Decimal | None:
            if x is None:
                return None
            return up(x / equity, E6) if equity > 0 else (INF if x else Decimal(0))

        conc = ratio(notional)
        return {"equity_usdt": equity, "margin_ratio": ratio(maint), "leverage": ratio(gross),
                "available_margin_usdt": equity - initial, "total_exposure_usdt": gross,
                "position_notional_usdt": notional, "concentration_pct": None if conc is None else conc * 100}


OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
       "==": lambda a, b: a == b, "!=": lambda a, b: a != b}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wallet=st.integers(-1_000, 200_000), qty_steps=st.integers(-3_000, 3_000),
       entry=st.integers(400_000 * 10**ENTRY_EXTRA, 800_000 * 10**ENTRY_EXTRA), mark=st.integers(400_000, 800_000),
       side=st.sampled_from([Side.BUY, Side.SELL]), size=st.integers(1, 4_000),
       price=st.one_of(st.none(), st.integers(400_000, 800_000)), reduce_only=st.booleans(),
       rules=st.lists(st.tuples(st.sampled_from(sorted(UNITS)), st.sampled_from(sorted(OPS)), st.integers(-1, 1),
                                st.sampled_from([Scope.ACCOUNT, Scope.SYMBOL]),
                                st.sampled_from([PolicyKind.HARD, PolicyKind.SOFT])), min_size=1, max_size=6))
def test_integer_check_agrees_with_a_decimal_reference_at_the_boundaries(wallet, qty_steps, entry, mark, side, size,
                                                                        price, reduce_only, rules):
    entry_text = format_units(entry, BTC.price_grid.scale + ENTRY_EXTRA)
    position = position_at_entry(BTC, qty_steps, entry_text)
    snapshot = AccountSnapshot(wallet * 10**MONEY_SCALE, {"BTCUSDT": position}, {"BTCUSDT": mark}, {"BTCUSDT": 20})
    real = (Decimal(wallet), qty_steps * STEP, Decimal(entry_text), mark * TICK)
    order = (side.sign, size * STEP, (price or mark) * TICK)
    after, before = reference(*real, order), reference(*real, None)

    policies, expected = [], []
    for i, (metric, op, offset, scope, kind) in enumerate(rules):
        if scope is Scope.SYMBOL and metric not in ("position_notional_usdt", "concentration_pct"):
            scope = Scope.ACCOUNT  # the only symbol-scoped metrics of a position
        value = after[metric]
        anchor = value if value is not None else Decimal(0)
        threshold = anchor + offset * UNITS[metric]
        policies.append(Policy(f"p{i}", metric, op, format(threshold, "f"), kind, scope,
                               "BTCUSDT" if scope is Scope.SYMBOL else "", priority=i))
        if value is None or OPS[op](value, threshold):
            continue
        if reduce_only and kind is not PolicyKind.SOFT:
            continue
        old = before[metric]
        if not reduce_only and metric in WORSENING and old is not None and value < old:
            continue
        expected.append(f"p{i}")

    async def run():
        engine = RiskEngine({"BTCUSDT": BTC}, TestClock(), _Source(snapshot), MemoryPolicyStore(policies),
                            MemoryAudit(), MemoryFlag(), None)
        await engine.start()
        try:
            return engine.check_order("h", "BTCUSDT", side, size, price, reduce_only)
        finally:
            await engine.stop_tasks()

    result = asyncio.run(run())
    outcome = result.outcome
    got = [v.policy for v in (outcome.warnings if isinstance(outcome, Approved) else outcome.violations)]
    blocking = [name for name, r in zip([p.name for p in policies], rules) if name in expected and r[4] is not PolicyKind.SOFT]
    assert isinstance(outcome, Approved) == (not blocking)
    assert got == (blocking if blocking else expected)
    m = result.post_trade
    assert Decimal(m.equity_units) * E8 == after["equity_usdt"]
    assert Decimal(m.leverage_ppm) * E6 == after["leverage"]
    assert Decimal(m.margin_ratio_ppm) * E6 == after["margin_ratio"]
    assert Decimal(m.available_margin_units) * E8 == after["available_margin_usdt"]


class _Source:
    def __init__(self, snap: AccountSnapshot) -> None:
        self.snap = snap

    async def snapshot(self) -> AccountSnapshot:
        return self.snap


@given(ints=st.lists(st.integers(-10**13, 10**13), min_size=6, max_size=6))  # int64 mantissas at scale 8
def test_grpc_metrics_from_integers_equal_the_decimal_edge(ints):
    """The servicer encodes the integers directly; the mantissas must be those of the Decimal edge."""
    from celeris.risk.metrics import RiskMetrics
    from celeris.risk.servicer import dec, metrics_pb

    m = RiskMetrics(ints[0], ints[1], ints[2], ints[3], ints[4], 0, {"BTCUSDT": 1}, {"BTCUSDT": ints[5]}, {}, 0)
    pb = metrics_pb(m, 1)
    for field in ("equity", "margin_ratio", "leverage", "daily_drawdown_pct", "peak_drawdown_pct"):
        assert getattr(pb, field) == dec(getattr(m, field)), field
    assert pb.concentration_pct["BTCUSDT"] == dec(m.concentration_pct["BTCUSDT"])
