"""The risk engine: checks, policies, monitoring, alerts and the emergency stop (in-process)."""

from fractions import Fraction

import pytest

from celeris.domain.clock import TestClock
from celeris.domain.positions import Position
from celeris.domain.risk import Approved, Denied, Policy, Scope
from celeris.domain.values import MONEY_SCALE, Side
from celeris.risk.engine import MemoryAudit, MemoryFlag, MemoryPolicyStore, RiskEngine
from celeris.risk.metrics import AccountSnapshot

M = 10**MONEY_SCALE


class Source:
    def __init__(self, snap):
        self.snap = snap

    async def snapshot(self):
        return self.snap


class Actions:
    def __init__(self, execution_answers=True):
        self.calls = []
        self.execution_answers = execution_answers
        self.flat = True

    async def open_order_count(self):
        return 3

    async def halt_execution(self, reason, flatten):
        self.calls.append(("halt", reason, flatten))
        if not self.execution_answers:
            raise ConnectionError("execution is down")
        from celeris.risk.engine import HaltResult
        return HaltResult(3, self.flat)

    async def resume_execution(self, by):
        self.calls.append(("resume", by))

    async def cancel_all_orders(self):
        self.calls.append(("cancel",))
        return 3



def make(btcusdt, qty=0, wallet=10_000, policies=None, clock=None):
    pos = Position(btcusdt, qty, Fraction(abs(qty) * 600_000))
    source = Source(AccountSnapshot(wallet * M, {"BTCUSDT": pos}, {"BTCUSDT": 600_000}, {"BTCUSDT": 20}))
    actions = Actions()
    engine = RiskEngine({"BTCUSDT": btcusdt}, clock or TestClock(), source, MemoryPolicyStore(policies),
                        MemoryAudit(), MemoryFlag(), actions)
    return engine, source, actions


async def test_small_order_approved_and_audited(btcusdt):
    engine, _, _ = make(btcusdt)
    await engine.start()
    result = engine.check_order("r1", "BTCUSDT", Side.BUY, 100, 600_000)  # 0.1 BTC: 6,000 on 10,000
    assert isinstance(result.outcome, Approved)
    # 6,000 notional over the equity minus the taker fee (2.4), in ppm rounded up
    assert result.post_trade.leverage_ppm == -(-6_000 * 10**6 * 10 // (10_000 * 10 - 24))
    import asyncio
    await asyncio.sleep(0)
    assert engine.audit.checks[-1]["approved"] is True and engine.audit.checks[-1]["request_id"] == "r1"
    await engine.stop_tasks()


async def test_leverage_and_margin_denials_with_violations(btcusdt):
    engine, _, _ = make(btcusdt)
    await engine.start()
    result = engine.check_order("r2", "BTCUSDT", Side.BUY, 2000, 600_000)  # 120,000 notional: 12x
    assert isinstance(result.outcome, Denied)
    assert {v.policy for v in result.outcome.violations} == {"max-leverage"}
    await engine.stop_tasks()
    poor, _, _ = make(btcusdt, wallet=5_000)  # initial margin 6,000 at 20x on a 5,000 wallet
    await poor.start()
    names = {v.policy for v in poor.check_order("r3", "BTCUSDT", Side.BUY, 2000, 600_000).outcome.violations}
    assert {"max-leverage", "available-margin"} <= names
    await poor.stop_tasks()


async def test_reduce_only_and_risk_reducing_orders_pass_when_already_over(btcusdt):
    engine, _, _ = make(btcusdt, qty=2000)  # 12x long already
    await engine.start()
    assert isinstance(engine.check_order("r3", "BTCUSDT", Side.BUY, 10, 600_000).outcome, Denied)
    assert isinstance(engine.check_order("r4", "BTCUSDT", Side.SELL, 500, 600_000).outcome, Approved)
    assert isinstance(engine.check_order("r5", "BTCUSDT", Side.SELL, 2000, None, reduce_only=True).outcome, Approved)
    await engine.stop_tasks()


async def test_symbol_and_strategy_scoped_policies(btcusdt):
    policies = [Policy("btc-cap", "position_notional_usdt", "<=", "5000", scope=Scope.SYMBOL, scope_id="BTCUSDT"),
                Policy("mm-rate", "orders_per_minute", "<=", "2", scope=Scope.STRATEGY, scope_id="mm")]
    engine, _, _ = make(btcusdt, policies=policies)
    await engine.start()
    assert isinstance(engine.check_order("a", "BTCUSDT", Side.BUY, 100, 600_000).outcome, Denied)  # 6,000 > 5,000
    assert isinstance(engine.check_order("b", "BTCUSDT", Side.BUY, 50, 600_000, strategy_id="mm").outcome, Approved)
    assert isinstance(engine.check_order("c", "BTCUSDT", Side.BUY, 10, 600_000, strategy_id="mm").outcome, Approved)
    assert isinstance(engine.check_order("d", "BTCUSDT", Side.BUY, 10, 600_000, strategy_id="mm").outcome, Denied)
    assert isinstance(engine.check_order("e", "BTCUSDT", Side.BUY, 10, 600_000, strategy_id="other").outcome, Approved)
    await engine.stop_tasks()


async def test_monitoring_alerts_dedup_and_emergency_trigger(btcusdt):
    clock = TestClock()
    engine, source, actions = make(btcusdt, qty=1000, clock=clock)
    await engine.start()
    # Mark falls 10 %: equity 10,000 -> 4,000, daily drawdown 60 % (emergency at 25 %)
    await engine.monitor_once()
    assert not engine.stop.active
    source.snap.marks["BTCUSDT"] = 540_000
    violations = await engine.monitor_once()
    assert {v.policy for v in violations} >= {"daily-drawdown-emergency"}
    assert engine.stop.active and "daily_drawdown_pct" in engine.stop.reason
    # Execution halts, cancels and flattens through its own order path; nothing goes to the venue from here.
    assert actions.calls == [("halt", engine.stop.reason, True)]
    assert engine.stop.positions_closed == 1
    critical = [a for a in engine.alerts if a.severity == "critical"]
    count = len(engine.alerts)
    await engine.monitor_once()  # the same breach one second later: no new alert
    assert len(engine.alerts) == count
    clock.advance(s=301)
    await engine.monitor_once()
    assert len(engine.alerts) > count and critical
    await engine.stop_tasks()


async def test_emergency_stop_is_idempotent_blocks_checks_and_needs_a_person(btcusdt):
    engine, _, actions = make(btcusdt, qty=100)
    await engine.start()
    import asyncio
    first, second = await asyncio.gather(engine.emergency_stop("manual", "alice"),
                                         engine.emergency_stop("again", "bob"))
    assert first is second and first.reason == "manual" and first.orders_canceled == 3
    assert [c[0] for c in actions.calls] == ["halt"]  # once, although asked twice
    assert await engine.flag.get() == (True, "manual")
    assert isinstance(engine.check_order("x", "BTCUSDT", Side.BUY, 1, 600_000).outcome, Denied)
    with pytest.raises(ValueError):
        await engine.enable_trading("")
    stop = await engine.enable_trading("carol", "checked")
    assert not stop.active and stop.enabled_by == "carol" and ("resume", "carol") in actions.calls
    assert engine.audit.stops[0]["re_enabled_by"] == "carol" and engine.audit.stops[0]["completed"]
    await engine.stop_tasks()


async def test_when_execution_does_not_answer_orders_are_cancelled_at_the_venue_and_a_person_is_alerted(btcusdt):
    engine, _, actions = make(btcusdt, qty=100)
    actions.execution_answers = False
    await engine.start()
    stop = await engine.emergency_stop("manual", "alice")
    assert [c[0] for c in actions.calls] == ["halt", "cancel"]
    assert stop.positions_closed == 0
    assert any(a.severity == "critical" and "did not confirm" in a.message for a in engine.alerts)
    await engine.stop_tasks()


async def test_resume_reaches_execution_even_without_a_stop_of_the_risk_manager(btcusdt):
    engine, _, actions = make(btcusdt)
    await engine.start()
    await engine.enable_trading("dave", "execution came back halted from its state file")
    assert ("resume", "dave") in actions.calls
    await engine.stop_tasks()


async def test_a_stop_survives_a_restart(btcusdt):
    engine, source, actions = make(btcusdt)
    await engine.flag.set(True, "from before")
    await engine.start()
    assert engine.stop.active and isinstance(engine.check_order("x", "BTCUSDT", Side.BUY, 1, 600_000).outcome, Denied)
    await engine.stop_tasks()


async def test_configured_limits_replace_the_defaults_and_a_bad_one_changes_nothing(btcusdt):
    engine, _, _ = make(btcusdt)
    await engine.start()
    assert isinstance(engine.check_order("c1", "BTCUSDT", Side.BUY, 100, 600_000).outcome, Approved)  # 6,000
    names = await engine.apply_limits({"maxPositionUsdt": "5000", "maxLeverage": 3, "maxOrdersPerSecond": 2,
                                       "maxDailyDrawdownPct": 1.5})
    assert set(names) == {"max-position", "max-leverage", "order-velocity", "daily-drawdown"}
    by_name = {p.name: p for p in engine.policies}
    assert by_name["order-velocity"].threshold == "120" and by_name["daily-drawdown"].threshold == "1.5"
    denied = engine.check_order("c2", "BTCUSDT", Side.BUY, 100, 600_000).outcome
    assert isinstance(denied, Denied) and "max-position" in {v.policy for v in denied.violations}
    with pytest.raises(ValueError):
        await engine.apply_limits({"maxLeverage": 5, "maxPositionUsdt": "lots"})
    assert {p.name: p for p in engine.policies}["max-leverage"].threshold == "3"  # unchanged
    await engine.stop_tasks()


async def test_no_flatten_keeps_positions_and_a_later_flatten_still_flattens(btcusdt):
    engine, _, actions = make(btcusdt, qty=100)
    await engine.start()
    await engine.emergency_stop("keep positions", "alice", flatten=False)
    assert actions.calls == [("halt", "keep positions", False)]
    await engine.emergency_stop("now flatten", "bob", flatten=True)  # already stopped: flattens what is left
    assert actions.calls[-1] == ("halt", "keep positions", True) and engine.stop.reason == "keep positions"
    await engine.stop_tasks()


async def test_a_flatten_that_did_not_finish_is_not_reported_as_closed(btcusdt):
    engine, _, actions = make(btcusdt, qty=100)
    actions.flat = False
    await engine.start()
    stop = await engine.emergency_stop("rate limited venue", "alice", flatten=True)
    assert stop.positions_closed == 0
    assert any(a.severity == "critical" and "not flat" in a.message for a in engine.alerts)
    await engine.stop_tasks()


async def test_the_grpc_stop_honours_flatten_false(btcusdt):
    from celeris.api.v1 import risk_pb2
    from celeris.risk.servicer import RiskServicer

    engine, _, actions = make(btcusdt, qty=100)
    await engine.start()
    await RiskServicer(engine).TriggerEmergencyStop(
        risk_pb2.EmergencyStopRequest(reason="r", triggered_by="cli", flatten_positions=False), None)
    assert actions.calls[0] == ("halt", "r", False)
    await engine.stop_tasks()
