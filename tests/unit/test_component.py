"""Every engine implements the one Component protocol, and one Control drives any set of them alike."""

from __future__ import annotations

import inspect

import pytest

from celeris.account.component import AccountComponent
from celeris.domain.clock import TestClock
from celeris.domain.modes import IllegalModeChange, Mode
from celeris.execution.component import ExecutionComponent
from celeris.marketdata.component import MarketDataComponent
from celeris.risk.component import RiskComponent
from celeris.runtime.component import Component
from celeris.runtime.control import ComponentControl
from celeris.strategy.component import StrategyComponent
from celeris.dashboard.component import DashboardComponent

COMPONENTS = [ExecutionComponent, RiskComponent, StrategyComponent, AccountComponent, MarketDataComponent,
              DashboardComponent]
LEVERS = ["start", "stop", "set_mode", "halt", "resume", "configure", "drain"]


@pytest.mark.parametrize("cls", COMPONENTS, ids=lambda c: c.__name__)
def test_each_engine_implements_the_protocol_with_its_signatures(cls):
    for lever in LEVERS:
        method = getattr(cls, lever)
        assert inspect.iscoroutinefunction(method), f"{cls.__name__}.{lever} must be async"
        expected = inspect.signature(getattr(Component, lever)).parameters
        assert list(inspect.signature(method).parameters) == list(expected), (cls.__name__, lever)
    assert callable(cls.status) and not inspect.iscoroutinefunction(cls.status)
    assert isinstance(cls.name, str) and cls.name


class Recorder:
    """A component that records the levers pulled on it (and can refuse a configuration)."""

    def __init__(self, name: str, journal: list[tuple[str, str]], refuse: bool = False) -> None:
        self.name, self.journal, self.refuse = name, journal, refuse
        self.halt_state = (False, "")

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def set_mode(self, mode: Mode) -> None:
        self.journal.append((self.name, f"mode {mode.value}"))

    async def halt(self, reason: str, requested_by: str, flatten: bool) -> None:
        self.journal.append((self.name, f"halt {reason} {requested_by} {flatten}"))

    async def resume(self, requested_by: str) -> None:
        self.journal.append((self.name, f"resume {requested_by}"))

    async def configure(self, config: dict) -> None:
        if self.refuse:
            raise ValueError("refused")
        self.journal.append((self.name, f"configure {sorted(config)}"))

    async def drain(self) -> None:
        self.journal.append((self.name, "drain"))

    def status(self) -> dict[str, str]:
        return {"open_orders": "0"}


async def test_one_control_pulls_each_lever_on_every_component_in_order():
    journal: list[tuple[str, str]] = []
    parts = [Recorder("execution", journal), Recorder("strategy", journal)]
    ctl = ComponentControl("both", TestClock(), mode=Mode.OBSERVATION, components=parts)
    assert isinstance(parts[0], Component)
    await ctl.set_mode(Mode.SIMULATION, "op")
    await ctl.halt("drill", "op", flatten=True)
    await ctl.resume("op")
    await ctl.configure(1, {"risk": {}})
    await ctl.drain()
    assert journal == [(n, e) for e in ("mode simulation", "halt drill op True", "resume op", "configure ['risk']",
                                        "drain") for n in ("execution", "strategy")]
    assert ctl.status().details == {"execution.open_orders": "0", "strategy.open_orders": "0"}


async def test_an_illegal_mode_change_reaches_no_component_and_a_refused_configuration_keeps_the_generation():
    journal: list[tuple[str, str]] = []
    ctl = ComponentControl("x", TestClock(), mode=Mode.OBSERVATION, components=[Recorder("a", journal, refuse=True)])
    with pytest.raises(IllegalModeChange):
        await ctl.set_mode(Mode.LIVE)  # observation -> live skips simulation
    with pytest.raises(ValueError):
        await ctl.configure(5, {"risk": {}})
    assert journal == [] and ctl.config_generation == 0 and ctl.mode is Mode.OBSERVATION


async def test_a_component_halted_on_its_own_account_makes_the_status_halted():
    part = Recorder("risk", [])
    ctl = ComponentControl("risk", TestClock(), components=[part])
    assert not ctl.status().halted
    part.halt_state = (True, "emergency stop: drill")
    status = ctl.status()
    assert status.halted and status.halt_reason == "emergency stop: drill"
