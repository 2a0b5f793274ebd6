"""The desired state a component boots into: mode, halt and configuration, read once, fail closed.

The operator keeps one document per TradingSystem (ConfigMap `<name>-desired`, key `desired.json`,
mounted into every pod at /etc/celeris/desired) and names it with CELERIS_DESIRED_STATE:

    {"generation": 7, "mode": "observation" | "simulation" | "live", "halted": true,
     "haltReason": "drill", "settings": {"strategies": [...], "risk": {...}}}

`settings` is the document Control.Configure carries. Owns `read_desired_state` (strict: unknown keys,
a missing or unreadable file, bad JSON, an unknown mode or a wrong type each raise DesiredStateError, a
SettingsError, so `celeris NAME run` exits 2 with one line before anything is served) and
`apply_at_boot`, which pulls the levers of a freshly built, not yet started component: validate the
configuration on every component first (a refusal changes nothing and stops the process), then the halt
(so the gate is closed before the configuration or anything else is awaited), then configure with the
document's generation. The mode is not a lever here: the builder builds the component in it (the
process shell puts `mode` into the settings), so it never runs in another for an instant.

A component whose desired state says "not halted" does not resume a halt it kept itself (the risk
manager's emergency stop, execution's persisted halt): only a Resume lifts a halt.

While the process runs the file is NOT watched: the operator pushes every change through Control
(SetMode, Halt, Resume, Configure) and rewrites the file for the next boot; a pod reads it again only
when it restarts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celeris.domain.modes import Mode
from celeris.runtime.settings import SettingsError

KEYS = {"generation", "mode", "halted", "haltReason", "settings"}
REQUIRED = {"generation", "mode", "halted"}
DEFAULT_HALT_REASON = "halted in the desired state"
REQUESTED_BY = "desired-state"
"""Who the audit says pulled the boot levers."""


REFUSALS = (ValueError, KeyError, TypeError, RecursionError, ArithmeticError)
"""What a component's validate/configure raises for a document it refuses (as Control.Configure maps them)."""


class DesiredStateError(SettingsError):
    """A desired-state document that cannot be used; the message is one line naming the file and why."""


@dataclass(frozen=True)
class DesiredState:
    generation: int
    """The configuration generation `settings` is (reported as ComponentStatus.config_generation)."""
    mode: Mode
    halted: bool
    halt_reason: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    """The Control.Configure document: `strategies`, `risk`."""


def parse_desired_state(text: str, source: str = "desired state") -> DesiredState:
    """The document `text` as a DesiredState; anything unexpected raises DesiredStateError."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise DesiredStateError(f"{source}: not JSON ({_one_line(exc)})") from None
    if not isinstance(doc, dict):
        raise DesiredStateError(f"{source}: expected a JSON object, got {type(doc).__name__}")
    unknown = sorted(set(doc) - KEYS)
    if unknown:
        raise DesiredStateError(f"{source}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(KEYS))})")
    missing = sorted(REQUIRED - set(doc))
    if missing:
        raise DesiredStateError(f"{source}: missing {', '.join(missing)}")
    generation, mode, halted = doc["generation"], doc["mode"], doc["halted"]
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
        raise DesiredStateError(f"{source}: generation must be a non-negative integer, got {generation!r:.40}")
    if mode not in {m.value for m in Mode}:
        raise DesiredStateError(f"{source}: mode must be observation, simulation or live, got {mode!r:.40}")
    if not isinstance(halted, bool):
        raise DesiredStateError(f"{source}: halted must be true or false, got {halted!r:.40}")
    reason = doc.get("haltReason", "")
    if not isinstance(reason, str):
        raise DesiredStateError(f"{source}: haltReason must be a string")
    settings = doc.get("settings", {})
    if not isinstance(settings, dict):
        raise DesiredStateError(f"{source}: settings must be an object (the Control.Configure document)")
    return DesiredState(generation, Mode(mode), halted, reason, settings)


def read_desired_state(path: str) -> DesiredState:
    """Read and parse the file at `path`; a missing or unreadable one raises DesiredStateError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DesiredStateError(f"desired state {path}: cannot read it "
                                f"({getattr(exc, 'strerror', None) or _one_line(exc)})") from None
    return parse_desired_state(text, f"desired state {path}")


async def apply_at_boot(control: Any, desired: DesiredState, source: str = "desired state") -> None:
    """Validate, halt, configure: `control` is the process's ComponentControl over components that are
    built but not started and not served. A configuration the components refuse raises DesiredStateError
    before any lever is pulled."""
    try:
        for component in control.components:
            validate = getattr(component, "validate", None)
            if validate is not None:
                validate(desired.settings)
    except REFUSALS as exc:
        raise DesiredStateError(f"{source}: configuration refused: {type(exc).__name__}: {_one_line(exc)}") from None
    if desired.halted:
        await control.halt(desired.halt_reason or DEFAULT_HALT_REASON, REQUESTED_BY)
    try:
        await control.configure(desired.generation, desired.settings, REQUESTED_BY)
    except REFUSALS as exc:
        raise DesiredStateError(f"{source}: configuration refused: {type(exc).__name__}: {_one_line(exc)}") from None


def _one_line(exc: BaseException, limit: int = 200) -> str:
    return " ".join(str(exc).split())[:limit]
