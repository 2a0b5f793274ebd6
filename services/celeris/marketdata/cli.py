"""`celeris marketdata`: run the market data service, or check a capture with its sync code."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import Field

from celeris.runtime.service_cli import add_service_command, open_stores, serve_then_close, store_closers
from celeris.runtime.settings import ServiceSettings


class MarketDataSettings(ServiceSettings):
    """Market data settings (CELERIS_* environment variables or --set key=value)."""

    component: str = "marketdata"
    depth_levels: int = Field(20, ge=1, le=1000)
    """Levels per side published in snapshots."""
    snapshot_limit: int = Field(1000, ge=5, le=1000)
    verify_interval_s: float = Field(60.0, ge=0)
    """Checks of every live book against a REST snapshot (0 = never)."""
    depth_speed: str = Field("@100ms", pattern=r"^(|@0ms|@100ms|@250ms|@500ms)$")
    db_batch_ms: int = Field(100, ge=10, le=60_000)
    redis_interval_ms: int = Field(50, ge=1, le=60_000)
    shm_ring_name: str = ""
    """Empty = no shared-memory ring."""
    egress_ip: str = "default"
    """Key of the request-weight budget shared through Redis: one budget per egress IP."""
    weight_limit: int = Field(2400, ge=1)


def register(sub: Any) -> None:
    parser = add_service_command(sub, "marketdata", "market data service: synchronized books, trades, mark prices",
                                 MarketDataSettings, serve)
    verify = parser.actions.add_parser("verify-capture", help="replay a capture through the sync code; print JSON")
    verify.add_argument("file", type=Path)
    verify.add_argument("--symbol", default="BTCUSDT")
    verify.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    from celeris.marketdata.verify import verify_capture

    if not args.file.exists():
        print(f"error: {args.file} does not exist", file=sys.stderr)
        return 2
    result = verify_capture(args.file, args.symbol)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


async def serve(settings: MarketDataSettings) -> None:
    from celeris.domain.modes import Mode
    from celeris.marketdata import outputs, servicer
    from celeris.marketdata.service import MarketDataConfig, MarketDataService
    from celeris.runtime import control, grpc_server, metrics
    from celeris.runtime.clock import SystemClock
    from celeris.transport.bus import InProcessBus
    from celeris.runtime.service_cli import local_budget
    from celeris.venues.binance.ratelimit import RedisWeightBudget
    from celeris.venues.binance.rest import BinanceRestClient

    clock = SystemClock()
    registry = metrics.new_registry()
    redis_client, pool = await open_stores(settings)
    budget: Any = local_budget(settings, settings.weight_limit)
    outs: list[Any] = []
    if redis_client is not None:
        budget = RedisWeightBudget(redis_client, settings.egress_ip, settings.weight_limit)
        outs.append(outputs.RedisOutput(redis_client, settings.redis_interval_ms / 1000))
    if pool is not None:
        outs.append(outputs.PostgresOutput(pool, settings.db_batch_ms / 1000))
    if settings.shm_ring_name:
        outs.append(outputs.ShmRingOutput(settings.shm_ring_name))
    rest = BinanceRestClient(settings.venue_rest_url, clock, api_key=settings.venue_api_key.get_secret_value(),
                             api_secret=settings.venue_api_secret.get_secret_value(), budget=budget)
    await rest.sync_clock()
    config = MarketDataConfig(symbols=settings.symbols, depth_levels=settings.depth_levels,
                              snapshot_limit=settings.snapshot_limit, verify_interval_s=settings.verify_interval_s,
                              depth_speed=settings.depth_speed)
    service = MarketDataService(config, rest, settings.venue_ws_url, clock, InProcessBus(), registry, outputs=outs)
    ctl = control.ComponentControl("marketdata", clock, mode=Mode(settings.mode),
                                   details=lambda: {"books": json.dumps(service.health()["books"])})
    await service.start()
    bound = grpc_server.create_server([servicer.registrar(service), control.registrar(ctl)],
                                      settings.grpc_host, settings.grpc_port)
    runner, _ = await metrics.start_metrics_server(registry, settings.grpc_host, settings.metrics_port,
                                                   service.health)
    await serve_then_close(bound, service.stop, settings, [
        runner.cleanup, rest.close, *store_closers(redis_client, pool)])
