"""The account monitor as a Component. It originates no orders, so a halt changes nothing here; a mode
change means another account is traded from now on (paper or venue), so the monitor starts from it."""

from __future__ import annotations

from typing import Any

from celeris.domain.modes import Mode


class AccountComponent:
    name = "account"

    def __init__(self, monitor: Any, mode: Mode, stream: Any = None) -> None:
        self.monitor = monitor
        self.mode_cell = [mode]
        """The account judged follows this (the paper account in simulation mode); shared with whatever
        else learns the mode (a follower of execution's)."""
        self.stream = stream

    async def start(self) -> None:
        await self.monitor.start()
        if self.stream is not None:
            await self.stream.start()

    async def stop(self) -> None:
        if self.stream is not None:
            await self.stream.stop()
        await self.monitor.stop()

    @property
    def mode(self) -> Mode:
        return self.mode_cell[0]

    async def set_mode(self, mode: Mode) -> None:
        self.mode_cell[0] = mode
        await self.monitor.reconcile(initial=True)

    async def halt(self, reason: str, requested_by: str, flatten: bool) -> None:
        return None

    async def resume(self, requested_by: str) -> None:
        return None

    async def configure(self, config: dict[str, Any]) -> None:
        return None

    async def drain(self) -> None:
        return None

    def status(self) -> dict[str, str]:
        return {"reconciliations": str(self.monitor.recon.runs), "mismatches": str(self.monitor.recon.mismatches),
                "critical_alerts": str(self.monitor.alert_log.raised["critical"])}

    def health(self) -> dict[str, Any]:
        connected = self.stream.connected if self.stream is not None else True
        return {"status": "ok" if connected else "degraded", "service": "account",
                "user_stream_connected": connected, "reconciliations": self.monitor.recon.runs,
                "mismatches": self.monitor.recon.mismatches}
