"""Execution as a Component (celeris.runtime.component): the operator's levers on the order manager.

A halt closes execution's gate, cancels what is open and, asked to, flattens; it runs to its end even
when the caller gives up waiting (shielded). A configuration's `risk` section replaces the exposure
limits whole, or is refused and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from celeris.config.spec import RiskSpec
from celeris.domain.modes import Mode
from celeris.domain.stats import percentile
from celeris.execution.engine import ExecutionEngine


class ExecutionComponent:
    name = "execution"

    def __init__(self, engine: ExecutionEngine) -> None:
        self.engine = engine

    @property
    def mode(self) -> Mode:
        return self.engine.mode

    @property
    def halt_state(self) -> tuple[bool, str]:
        return self.engine.halted, self.engine.halt_reason

    async def start(self) -> None:
        await self.engine.start()

    async def stop(self) -> None:
        self.engine.draining = True
        await self.engine.stop()

    async def set_mode(self, mode: Mode) -> None:
        await self.engine.set_mode(mode)

    async def halt(self, reason: str, requested_by: str, flatten: bool) -> None:
        # A caller whose deadline passes cancels this coroutine, not the halt: it runs to the end.
        await asyncio.shield(asyncio.ensure_future(self.engine.halt(reason, requested_by or "control", flatten)))

    async def resume(self, requested_by: str) -> None:
        await self.engine.resume(requested_by)

    def validate(self, config: dict[str, Any]) -> None:
        """Raise if `config` could not be applied whole; changes nothing."""
        if config.get("risk"):
            RiskSpec.model_validate(config["risk"])

    async def configure(self, config: dict[str, Any]) -> None:
        if config.get("risk"):  # validated whole before anything changes (a bad limit changes nothing)
            spec = RiskSpec.model_validate(config["risk"])
            self.engine.set_limits(spec.exposure_limits(), spec.maxOrdersPerSecond, spec.maxLeverage)

    async def drain(self) -> None:
        self.engine.draining = True

    def status(self) -> dict[str, str]:
        engine = self.engine
        samples = list(engine.tick_to_order_ns)
        tick_to_order: dict[str, float] = {"count": len(samples)}
        if samples:
            tick_to_order.update(p50_us=percentile(samples, 0.5) / 1000, p99_us=percentile(samples, 0.99) / 1000)
        return {"open_orders": str(len(engine.open_orders())), "halt_canceled": str(engine.last_halt_canceled),
                "halt_flat": str(engine.last_halt_flat).lower(), "stats": json.dumps(engine.stats.__dict__),
                "tick_to_order": json.dumps(tick_to_order)}

    def health(self) -> dict[str, Any]:
        engine = self.engine
        return {"status": "ok" if not engine.breaker.is_open else "degraded", "service": "execution",
                "mode": engine.mode.value, "halted": engine.halted, "open_orders": len(engine.open_orders()),
                "breaker": engine.breaker.state.value, "stats": engine.stats.__dict__}
