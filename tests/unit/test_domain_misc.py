from fractions import Fraction

import pytest

from celeris.domain.clock import NS_PER_DAY, TestClock, utc_day_start_ns
from celeris.domain.modes import IllegalModeChange, Mode, change_mode
from celeris.domain.risk import Approved, Denied, Policy, PolicyKind, Scope, decide, evaluate
from celeris.domain.signals import BookTop, Signal, Strategy, Urgency
from celeris.domain.values import Side


def test_modes_advance_one_stage_at_a_time():
    assert change_mode(Mode.OBSERVATION, Mode.SIMULATION) is Mode.SIMULATION
    assert change_mode(Mode.LIVE, Mode.OBSERVATION) is Mode.OBSERVATION
    with pytest.raises(IllegalModeChange):
        change_mode(Mode.OBSERVATION, Mode.LIVE)


def test_policies_state_the_allowed_condition():
    lev = Policy("max-leverage", "leverage", "<=", "10")
    dd = Policy("dd", "daily_drawdown_pct", "<", "25", kind=PolicyKind.EMERGENCY)
    warn = Policy("conc", "concentration_pct", "<=", "40", kind=PolicyKind.SOFT, scope=Scope.SYMBOL,
                  scope_id="BTCUSDT")
    metrics = {(Scope.ACCOUNT, "", "leverage"): Fraction(5), (Scope.ACCOUNT, "", "daily_drawdown_pct"): Fraction(3),
               (Scope.SYMBOL, "BTCUSDT", "concentration_pct"): Fraction(55)}
    violations = evaluate([lev, dd, warn], metrics)
    assert [v.policy for v in violations] == ["conc"]
    assert isinstance(decide(violations), Approved) and decide(violations).warnings
    metrics[(Scope.ACCOUNT, "", "leverage")] = Fraction(12)
    outcome = decide(evaluate([lev, dd, warn], metrics))
    assert isinstance(outcome, Denied) and "max-leverage" in outcome.reason


@pytest.mark.parametrize("kwargs", [dict(operator="=<"), dict(metric="vibes"), dict(threshold="ten"),
                                    dict(scope=Scope.SYMBOL)])
def test_bad_policies_are_refused(kwargs):
    base = dict(name="p", metric="leverage", operator="<=", threshold="10")
    base.update(kwargs)
    with pytest.raises(ValueError):
        Policy(**base)


def test_test_clock_and_utc_day():
    clock = TestClock(start_ns=NS_PER_DAY * 3 + 5)
    assert utc_day_start_ns(clock.now_ns()) == NS_PER_DAY * 3
    clock.advance(ms=2)
    assert clock.now_ns() == NS_PER_DAY * 3 + 5 + 2_000_000
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_signal_validation_and_strategy_protocol():
    with pytest.raises(ValueError):
        Signal("BTCUSDT", Side.BUY, 1.5, "s", 0)

    class Echo:
        name = "echo"

        def initialize(self, config):
            self.size = config["size"]

        def on_market_data(self, data):
            return [Signal(data.symbol, Side.BUY, 0.7, self.name, data.ts_event_ns, Urgency.PASSIVE,
                           data.bid_ticks)]

        def on_order_fill(self, fill):
            pass

        def on_position_update(self, position):
            pass

        def get_state(self):
            return {"size": self.size}

    strategy = Echo()
    assert isinstance(strategy, Strategy)
    strategy.initialize({"size": 1})
    (signal,) = strategy.on_market_data(BookTop("BTCUSDT", 1, 100, 1, 101, 1))
    assert signal.price_hint_ticks == 100 and signal.urgency is Urgency.PASSIVE
