"""Hot reload of an SDK strategy keeps its working orders its own: nothing is cancelled, the new instance
sees them in self.orders(), their fills reach it and count in its position; and typed parameters are
validated at load, refused with one line naming the field (hypothesis for the values)."""

from __future__ import annotations

import os
import textwrap
import time
from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celeris.domain import sdk
from celeris.domain.clock import TestClock
from celeris.domain.modes import Mode
from celeris.domain.sdk_types import param, parse_params
from celeris.domain.values import Side
from celeris.strategy.engine import StrategyConfig, StrategyEngine
from celeris.strategy.plugins import PluginRegistry
from tests.strategy.fakes import ControlledGateway, book, settle

PLUGIN = '''
from dataclasses import dataclass
from celeris.domain import sdk
from celeris.domain.sdk_types import param
from celeris.domain.values import Side


class Quoter(sdk.Strategy):
    name = "quoter"
    VERSION = {version}

    @dataclass(frozen=True)
    class Params:
        offset_ticks: int = param(5, ge=0)

    def __init__(self):
        self.seen_at_start = None
        self.fills = []

    def on_start(self):
        self.seen_at_start = [o.client_order_id for o in self.orders()]
        if not self.orders():
            self.place_ticks(self.symbol, Side.BUY, 600000 - self.params.offset_ticks, 10)

    def on_fill(self, fill):
        self.fills.append(fill.qty_steps)
'''


def write_plugin(path, version):
    path.write_text(textwrap.dedent(PLUGIN.format(version=version)))
    t = time.time() + version  # coarse mtimes: make the change visible
    os.utime(path, (t, t))


async def test_hot_reload_keeps_the_working_orders_owned_by_the_new_instance(tmp_path, btcusdt):
    path = tmp_path / "quoter.py"
    write_plugin(path, 1)
    gateway = ControlledGateway()
    engine = StrategyEngine([StrategyConfig("q", "quoter", "BTCUSDT", "0.010")], {"BTCUSDT": btcusdt},
                            TestClock(10**18), gateway, lambda t, m: None, mode=Mode.LIVE,
                            registry=PluginRegistry(tmp_path))
    engine.on_book(book(1))
    await settle()
    (placed,) = gateway.submitted
    assert placed.price_ticks == 599995
    old = engine.runners["q"].strategy
    write_plugin(path, 2)
    assert engine.reload_changed() == ["q"]
    new = engine.runners["q"].strategy
    assert new is not old and type(new).VERSION == 2
    engine.on_book(book(2))
    await settle()
    assert gateway.canceled == [] and len(gateway.submitted) == 1  # kept, not re-placed
    assert new.seen_at_start == [placed.client_order_id]
    assert [o.client_order_id for o in new.orders()] == [placed.client_order_id]
    gateway.fill(engine, placed.client_order_id, 4)
    assert new.fills == [4] and old.fills == [] and new.position() == 4
    # A changed parameter reloads too (reconfigure): the order stays the strategy's.
    engine.reconfigure([StrategyConfig("q", "quoter", "BTCUSDT", "0.010", {"offset_ticks": 9})])
    engine.on_book(book(3))
    await settle()
    assert gateway.canceled == [] and engine.runners["q"].strategy.params.offset_ticks == 9
    assert [o.remaining_steps for o in engine.runners["q"].strategy.orders()] == [6]
    assert engine.owned.working[placed.client_order_id].owners == ("q",)
    # Disabling it, though, cancels what it owns.
    engine.disable("q")
    await settle()
    assert gateway.canceled == [placed.client_order_id]


async def test_a_version_that_refuses_the_running_configuration_leaves_the_old_one_and_reloads_go_on(tmp_path,
                                                                                                       btcusdt):
    path = tmp_path / "quoter.py"
    write_plugin(path, 1)
    gateway = ControlledGateway()
    engine = StrategyEngine([StrategyConfig("q", "quoter", "BTCUSDT", "0.010", {"offset_ticks": 7})],
                            {"BTCUSDT": btcusdt}, TestClock(10**18), gateway, lambda t, m: None, mode=Mode.LIVE,
                            registry=PluginRegistry(tmp_path))
    engine.on_book(book(1))
    await settle()
    old = engine.runners["q"].strategy
    path.write_text(textwrap.dedent(PLUGIN.format(version=2)).replace("offset_ticks", "edge_ticks"))
    t = time.time() + 2
    os.utime(path, (t, t))
    assert engine.reload_changed() == []  # its Params no longer know offset_ticks: not reloaded
    runner = engine.runners["q"]
    assert runner.strategy is old and runner.enabled and "offset_ticks" in runner.last_error
    assert gateway.canceled == []  # its order still works, still its own
    write_plugin(path, 3)  # the next edit is tried again
    assert engine.reload_changed() == ["q"] and type(engine.runners["q"].strategy).VERSION == 3


async def test_a_strategy_whose_on_start_fails_is_disabled_at_once(btcusdt):
    class Broken(sdk.Strategy):
        name = "broken"

        def on_start(self):
            self.place_ticks(self.symbol, Side.BUY, 599_990, 1)
            raise ValueError("cannot start")

    from tests.strategy.fakes import engine_with

    engine = engine_with(btcusdt, ("b", Broken, {}))
    engine.on_book(book(1))
    await settle()
    runner = engine.runners["b"]
    assert not runner.enabled and "on_start failed" in runner.disabled_reason and "cannot start" in runner.disabled_reason
    assert engine.gateway.submitted == []  # what it queued before failing never went out


async def test_a_strategy_calling_sys_exit_is_contained(btcusdt):
    class Exits(sdk.Strategy):
        name = "exits"

        def on_book(self, book):
            raise SystemExit(3)

    from tests.strategy.fakes import engine_with

    engine = engine_with(btcusdt, ("x", Exits, {}), max_consecutive_errors=2)
    for i in range(3):
        engine.on_book(book(i + 1))
    assert not engine.runners["x"].enabled and "SystemExit" in engine.runners["x"].disabled_reason


@dataclass(frozen=True)
class Typed:
    levels: int = param(3, ge=1, le=20)
    spread: Decimal = param(Decimal("0.5"), gt=0)
    aggressive: bool = False
    tag: str = "x"
    weights: tuple[int, ...] = ()


class TypedStrategy(sdk.Strategy):
    name = "typed"
    Params = Typed


def valid(field: str, value) -> bool:
    if field == "levels":
        return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 20
    if field == "spread":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return False
        try:
            d = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
        except ArithmeticError:
            return False
        return d.is_finite() and d > 0
    if field == "aggressive":
        return isinstance(value, bool)
    if field == "tag":
        return isinstance(value, str)
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


JSON = st.one_of(st.none(), st.booleans(), st.integers(-50, 50), st.floats(allow_nan=True), st.text(max_size=6),
                 st.lists(st.integers(-3, 3), max_size=3), st.lists(st.text(max_size=2), min_size=1, max_size=2),
                 st.sampled_from(["0.1", "-1", "1e3", " 2 ", "NaN", "Infinity", "0"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["levels", "spread", "aggressive", "tag", "weights"]), value=JSON)
def test_params_are_validated_at_load_naming_the_field(btcusdt, field, value):
    registry = PluginRegistry()
    registry.register("typed", TypedStrategy)
    config = StrategyConfig("t", "typed", "BTCUSDT", "0.010", {field: value})

    def load():
        return StrategyEngine([config], {"BTCUSDT": btcusdt}, TestClock(), ControlledGateway(), lambda t, m: None,
                              registry=registry)

    if valid(field, value):
        engine = load()
        got = getattr(engine.runners["t"].strategy.params, field)
        want = {"weights": lambda v: tuple(v), "spread": lambda v: Decimal(repr(v) if isinstance(v, float)
                                                                         else str(v).strip())}
        assert got == want.get(field, lambda v: v)(value) and type(got) is type(getattr(Typed(), field))
    else:
        with pytest.raises(ValueError) as refused:
            load()
        message = str(refused.value)
        assert f"params.{field}:" in message and "\n" not in message
        with pytest.raises(ValueError, match=f"params.{field}"):
            StrategyEngine([], {"BTCUSDT": btcusdt}, TestClock(), ControlledGateway(), lambda t, m: None,
                           registry=registry).check_configs([config])


def test_unknown_and_missing_params_are_refused_by_name():
    with pytest.raises(ValueError, match=r"params\.levles: unknown parameter \(known: levels, spread"):
        parse_params(Typed, {"levles": 3}, "typed")

    @dataclass(frozen=True)
    class Needs:
        window: int

    with pytest.raises(ValueError, match=r"params\.window: required"):
        parse_params(Needs, {}, "s")
    assert parse_params(Typed, {"spread": "0.25", "weights": [1, 2]}, "typed") == \
        Typed(spread=Decimal("0.25"), weights=(1, 2))
