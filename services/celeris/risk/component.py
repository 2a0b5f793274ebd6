"""The risk manager as a Component: a halt is its emergency stop (execution halted first, then orders
cancelled and positions flattened through execution); resume re-enables trading; a configuration's `risk`
section replaces its policies whole or not at all, and is what a later start applies (the settings' limits
are only the first configuration)."""

from __future__ import annotations

import json
from typing import Any

from celeris.domain.modes import Mode
from celeris.risk.engine import RiskEngine, metrics_json, policies_from_limits


class RiskComponent:
    name = "risk"

    def __init__(self, engine: RiskEngine, mode: Mode, limits: dict[str, Any] | None = None) -> None:
        self.engine = engine
        self.mode_cell = [mode]
        """The account risk judges follows this (the paper account in simulation mode); shared with whatever
        else learns the mode (a follower of execution's)."""
        self.limits = limits

    @property
    def halt_state(self) -> tuple[bool, str]:
        return self.engine.stop.active, self.engine.stop.reason

    async def start(self) -> None:
        await self.engine.start()
        if self.limits:
            await self.engine.apply_limits(self.limits)

    async def stop(self) -> None:
        await self.engine.stop_tasks()

    @property
    def mode(self) -> Mode:
        return self.mode_cell[0]

    async def set_mode(self, mode: Mode) -> None:
        self.mode_cell[0] = mode
        await self.engine.refresh()

    async def halt(self, reason: str, requested_by: str, flatten: bool) -> None:
        await self.engine.emergency_stop(reason, requested_by or "control", flatten)

    async def resume(self, requested_by: str) -> None:
        await self.engine.enable_trading(requested_by)

    def validate(self, config: dict[str, Any]) -> None:
        """Raise if `config`'s risk section could not be applied whole; changes nothing."""
        policies_from_limits(config.get("risk") or {})

    async def configure(self, config: dict[str, Any]) -> None:
        await self.engine.apply_limits(config.get("risk") or {})
        if config.get("risk"):  # a configuration applied before start (the desired state at boot) stands
            self.limits = config["risk"]

    async def drain(self) -> None:
        return None

    def status(self) -> dict[str, str]:
        metrics = self.engine.metrics
        return {"metrics": json.dumps(metrics_json(metrics)) if metrics else "{}",
                "emergency_stop": str(self.engine.stop.active).lower(),
                "critical_alerts": str(self.engine.alert_log.raised["critical"])}

    def health(self) -> dict[str, Any]:
        return {"status": "ok" if self.engine.metrics is not None else "degraded", "service": "risk",
                "emergency_stop": self.engine.stop.active, "checks": self.engine.checks}
