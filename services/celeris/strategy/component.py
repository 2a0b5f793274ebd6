"""The strategy engine as a Component: a halt stops new orders, stops every execution algorithm's parent and
cancels the engine's own quotes (their children among them); stop stops the parents too (the engine's stop);
a configuration's `strategies` replaces the running set (enabled, disabled, reloaded by name) and its
`risk` section the pre-trade filter's limits (decimal strings parsed exactly, all or nothing)."""

from __future__ import annotations

import json
from typing import Any

from celeris.config.spec import RiskSpec
from celeris.domain.modes import Mode
from celeris.strategy.engine import StrategyConfig, StrategyEngine
from celeris.strategy.filters import filter_limits


def parse_strategies(text: str) -> list[StrategyConfig]:
    """A JSON list of {name, type, symbol, order_size (or orderSize), params, enabled}."""
    out = []
    for item in json.loads(text):
        out.append(StrategyConfig(name=item["name"], type=item["type"], symbol=item["symbol"],
                                  order_size=str(item.get("order_size", item.get("orderSize"))),
                                  params=item.get("params", {}), enabled=item.get("enabled", True)))
    return out


class StrategyComponent:
    name = "strategy"

    def __init__(self, engine: StrategyEngine) -> None:
        self.engine = engine

    @property
    def mode(self) -> Mode:
        return self.engine.mode

    async def start(self) -> None:
        self.engine.start()  # leases with execution's orphan reaper, time-to-live of orders

    async def stop(self) -> None:
        await self.engine.stop()

    async def set_mode(self, mode: Mode) -> None:
        self.engine.mode = mode

    async def halt(self, reason: str, requested_by: str, flatten: bool) -> None:
        self.engine.halted = True
        self.engine.algos.halt(reason)  # every parent stops for good and cancels its working child
        await self.engine.cancel_quotes()

    async def resume(self, requested_by: str) -> None:
        self.engine.halted = False
        self.engine.algos.resume()  # new parents may start; the halted ones stay stopped

    def validate(self, config: dict[str, Any]) -> None:
        """Raise if `config` could not be applied whole; changes nothing."""
        if "strategies" in config:
            self.engine.check_configs(parse_strategies(json.dumps(config["strategies"])))
        if config.get("risk"):
            RiskSpec.model_validate(config["risk"])

    async def configure(self, config: dict[str, Any]) -> None:
        self.validate(config)  # both halves checked before either is applied
        strategies = parse_strategies(json.dumps(config["strategies"])) if "strategies" in config else None
        spec = RiskSpec.model_validate(config["risk"]) if config.get("risk") else None
        if strategies is not None:
            self.engine.reconfigure(strategies)
        if spec is not None:
            self.engine.limits = filter_limits(spec.exposure_limits(), spec.maxOrdersPerSecond, self.engine.limits)

    async def drain(self) -> None:
        self.engine.mode = Mode.OBSERVATION  # no new orders while the process winds down

    def status(self) -> dict[str, str]:
        return {"strategies": str(len(self.engine.runners)), "stats": json.dumps(self.engine.stats)}

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "service": "strategy", "mode": self.engine.mode.value, "stats": self.engine.stats}
