"""Execution modes and the only moves between them (a table; anything else raises).

Modes advance observation -> simulation -> live one stage at a time; falling back to observation is
always allowed (that is what an emergency stop or a failed gate does); simulation may also step back
from live. Jumping from observation straight to live is refused here, in the operator's CRD rules and
at the Control service alike.
"""

from __future__ import annotations

import enum


class Mode(enum.Enum):
    OBSERVATION = "observation"
    SIMULATION = "simulation"
    LIVE = "live"


class IllegalModeChange(RuntimeError):
    def __init__(self, current: Mode, target: Mode) -> None:
        super().__init__(f"mode {current.value} -> {target.value} is not allowed; "
                         f"modes advance observation -> simulation -> live one stage at a time")
        self.current = current
        self.target = target


ALLOWED_MODE_CHANGES: frozenset[tuple[Mode, Mode]] = frozenset({
    (Mode.OBSERVATION, Mode.OBSERVATION),
    (Mode.OBSERVATION, Mode.SIMULATION),
    (Mode.SIMULATION, Mode.SIMULATION),
    (Mode.SIMULATION, Mode.LIVE),
    (Mode.SIMULATION, Mode.OBSERVATION),
    (Mode.LIVE, Mode.LIVE),
    (Mode.LIVE, Mode.SIMULATION),
    (Mode.LIVE, Mode.OBSERVATION),
})


def change_mode(current: Mode, target: Mode) -> Mode:
    if (current, target) not in ALLOWED_MODE_CHANGES:
        raise IllegalModeChange(current, target)
    return target
