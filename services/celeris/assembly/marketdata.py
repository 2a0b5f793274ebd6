"""Builds market data from MarketDataSettings: synchronised books, trades and marks from the venue,
published on the bus; Redis, PostgreSQL and the shared-memory ring as outputs when configured; its
metrics and its gRPC service."""

from __future__ import annotations

from typing import Any

from celeris.assembly.ports import Built
from celeris.assembly.settings import MarketDataSettings
from celeris.assembly.wiring import Wiring


def build_marketdata(settings: MarketDataSettings, w: Wiring) -> Built:
    from celeris.marketdata import outputs, servicer
    from celeris.marketdata.component import MarketDataComponent
    from celeris.marketdata.service import MarketDataConfig, MarketDataService

    outs: list[Any] = []
    if w.redis is not None:
        outs.append(outputs.RedisOutput(w.redis, settings.redis_interval_ms / 1000))
    if w.pool is not None:
        outs.append(outputs.PostgresOutput(w.pool, settings.db_batch_ms / 1000))
    if settings.shm_ring_name:
        outs.append(outputs.ShmRingOutput(settings.shm_ring_name))
    config = MarketDataConfig(symbols=settings.symbols, depth_levels=settings.depth_levels,
                              snapshot_limit=settings.snapshot_limit, verify_interval_s=settings.verify_interval_s,
                              depth_speed=settings.depth_speed)
    service = MarketDataService(config, w.rest, settings.venue_ws_url, w.clock, w.bus, w.registry,
                                list(w.instruments.values()), outputs=outs)
    component = MarketDataComponent(service)
    return Built(component, [servicer.registrar(service)], component.health, [], {"service": service})
