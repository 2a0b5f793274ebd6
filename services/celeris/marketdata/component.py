"""Market data as a Component: it originates no orders and trades no account, so mode, halt and resume
are recorded by the Control service and change nothing here."""

from __future__ import annotations

import json
from typing import Any

from celeris.runtime.component import NoOrderLevers
from celeris.marketdata.service import MarketDataService


class MarketDataComponent(NoOrderLevers):
    name = "marketdata"

    def __init__(self, service: MarketDataService) -> None:
        self.service = service

    async def start(self) -> None:
        await self.service.start()

    async def stop(self) -> None:
        await self.service.stop()

    def status(self) -> dict[str, str]:
        return {"books": json.dumps(self.service.health()["books"])}

    def health(self) -> dict[str, Any]:
        return self.service.health()
