"""The shell every service command shares: `celeris <service> run --set key=value`.

Owns adding the command to the CLI, reading and validating the settings once, setting up logs and
uvloop, and running the service's `serve(settings)` coroutine; serving until a signal and then closing
what the service opened; and reading the venue's instruments, which every trading service needs at start.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, Awaitable, Callable

from celeris.runtime.settings import ServiceSettings


def add_service_command(sub: Any, name: str, help_text: str, settings_cls: type[ServiceSettings],
                        serve: Callable[[Any], Awaitable[None]]) -> argparse.ArgumentParser:
    """`celeris NAME run [--set KEY=VALUE ...]`; returns the NAME parser so callers can add actions."""
    parser = sub.add_parser(name, help=help_text)
    actions = parser.add_subparsers(dest=f"{name}_action", metavar="ACTION")
    run = actions.add_parser("run", help="run the service")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    run.set_defaults(func=lambda args: run_service(settings_cls, serve, args.overrides))
    parser.set_defaults(func=lambda args: (parser.print_help(), 0)[1])
    parser.actions = actions  # type: ignore[attr-defined]
    return parser


def run_service(settings_cls: type[ServiceSettings], serve: Callable[[Any], Awaitable[None]],
                overrides: list[str]) -> int:
    from celeris.runtime import grpc_server, logs
    from celeris.runtime.settings import load_settings, parse_overrides

    settings = load_settings(settings_cls, parse_overrides(overrides))
    logs.setup(settings.component, settings.log_level, settings.log_format)
    grpc_server.install_uvloop()
    asyncio.run(serve(settings))
    return 0


async def open_stores(settings: Any) -> tuple[Any, Any]:
    """The Redis client and the migrated PostgreSQL pool the settings name; None for each one not set."""
    redis_client = pool = None
    if settings.redis_url.get_secret_value():
        import redis.asyncio as aioredis

        redis_client = aioredis.from_url(settings.redis_url.get_secret_value())
    if settings.postgres_url.get_secret_value():
        from celeris.storage import postgres

        pool = await postgres.connect_pool(settings.postgres_url.get_secret_value())
        await postgres.migrate(pool)
    return redis_client, pool


def store_closers(redis_client: Any, pool: Any) -> list[Callable[[], Awaitable[Any]] | None]:
    return [redis_client.aclose if redis_client is not None else None, pool.close if pool is not None else None]


async def serve_then_close(bound: Any, drain: Callable[[], Awaitable[None]], settings: ServiceSettings,
                           closers: list[Callable[[], Awaitable[Any]] | None]) -> None:
    """Serve until SIGTERM/SIGINT, drain, then close (in order) what the service opened; None is skipped."""
    from celeris.runtime import grpc_server

    try:
        await grpc_server.serve_until_signal(bound, drain, settings.drain_timeout_ms / 1000)
    finally:
        for close in closers:
            if close is not None:
                await close()


async def connect_venue(settings: Any, clock: Any, **options: Any) -> tuple[Any, dict[str, Any]]:
    """A signed REST client for the settings' venue, clock-synchronised, and the instruments it lists."""
    from celeris.venues.binance.rest import BinanceRestClient

    if "budget" not in options and getattr(settings, "state_dir", ""):
        options["budget"] = local_budget(settings)
    rest = BinanceRestClient(settings.venue_rest_url, clock, api_key=settings.venue_api_key.get_secret_value(),
                             api_secret=settings.venue_api_secret.get_secret_value(), **options)
    await rest.sync_clock()
    return rest, await venue_instruments(rest, settings.symbols)


def local_budget(settings: Any, limit: int = 2400) -> Any:
    """This process's weight budget; with a state directory, a 429/418 ban is shared with every process
    on the machine that uses the same directory (one egress IP)."""
    from pathlib import Path

    from celeris.venues.binance.ratelimit import LocalWeightBudget

    ban_file = Path(settings.state_dir) / "venue-ban" if getattr(settings, "state_dir", "") else None
    return LocalWeightBudget(limit, ban_file=ban_file)


async def venue_instruments(rest: Any, symbols: tuple[str, ...]) -> dict[str, Any]:
    """The venue's instruments for `symbols` (from exchangeInfo); unknown symbols are an error."""
    from celeris.domain.instruments import Instrument

    info = await rest.exchange_info()
    by_symbol = {s["symbol"]: s for s in info["symbols"]}
    missing = [s for s in symbols if s not in by_symbol]
    if missing:
        raise ValueError(f"the venue does not list {', '.join(missing)}")
    return {s: Instrument.from_exchange_info(by_symbol[s]) for s in symbols}
