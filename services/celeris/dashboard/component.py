"""The dashboard server as a Component: it originates no orders and trades no account, so mode, halt and
resume are recorded by its Control service and change nothing here (its halt button asks the risk
manager); it answers gRPC health and Control like every component, which is what a pod's probes ask."""

from __future__ import annotations

from typing import Any

from celeris.runtime.component import NoOrderLevers


class DashboardComponent(NoOrderLevers):
    name = "dashboard"

    def __init__(self, server: Any, host: str, http_port: int) -> None:
        self.server, self.host, self.http_port = server, host, http_port
        self.port = 0

    async def start(self) -> None:
        self.port = await self.server.start(self.host, self.http_port)

    async def stop(self) -> None:
        await self.server.stop()

    def status(self) -> dict[str, str]:
        return {"clients": str(len(self.server.clients)), "http_port": str(self.port)}
