"""What every builder is wired from: the venue's REST client and instruments, the stores, the clock, the
metrics registry and the in-process bus, opened once per process (`Wiring.open`).

Also owns the checks a start makes first (`preflight`: the venue answers, the clock is sane, the
credentials are accepted), each failing with one line (`AssemblyError`), and choosing loopback ports.
"""

from __future__ import annotations

import contextlib
import random
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable


class AssemblyError(RuntimeError):
    """A system that cannot be started, with the reason in one line."""


@dataclass
class Wiring:
    """The process's shared parts. In `celeris up --topology inproc` every builder gets the same one."""

    clock: Any
    registry: Any
    bus: Any
    rest: Any
    instruments: dict[str, Any]
    redis: Any = None
    pool: Any = None
    state_dir: Path | None = None
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    @classmethod
    async def open(cls, settings: Any, rest: Any = None, clock: Any = None, budget_limit: int = 0) -> Wiring:
        """From a component's settings: the venue client (clock-synchronised) and its instruments, the
        stores the settings name; everything opened here is closed by `close`. `budget_limit`: this
        process's request-weight budget, shared through Redis (one budget per egress IP) when there is one."""
        from celeris.runtime import metrics
        from celeris.runtime.clock import SystemClock
        from celeris.transport.bus import InProcessBus

        clock = clock or SystemClock()
        redis_client, pool = await open_stores(settings)
        closers = [c for c in store_closers(redis_client, pool) if c is not None]
        if rest is None:
            venue_options: dict[str, Any] = {}
            if budget_limit:
                from celeris.venues.binance.ratelimit import RedisWeightBudget

                venue_options["budget"] = RedisWeightBudget(redis_client, settings.egress_ip, budget_limit) \
                    if redis_client is not None else local_budget(settings, budget_limit)
            rest, instruments = await connect_venue(settings, clock, **venue_options)
            closers.insert(0, rest.close)
        else:
            instruments = await venue_instruments(rest, settings.symbols)
        return cls(clock, metrics.new_registry(), InProcessBus(), rest, instruments, redis_client, pool,
                   Path(settings.state_dir) if settings.state_dir else None, closers)

    async def close(self) -> None:
        for close in reversed(self.closers):
            with contextlib.suppress(Exception):
                await close()
        self.closers = []


MAX_CLOCK_SKEW_MS = 30_000
"""Celeris signs with the venue's time (offset measured at start), so skew is corrected; a clock this far
off is a broken machine clock that would also break logs, daily limits and funding times."""


async def preflight(rest: Any, url: str, check_credentials: bool = True) -> list[str]:
    """The first things that go wrong, checked one by one with one line each: the venue answers, the
    machine's clock is sane, the credentials are accepted. Raises AssemblyError with the line; returns notes."""
    from celeris.venues.binance import errors

    notes = []
    try:
        offset = await rest.sync_clock()
    except errors.VenueError as exc:
        raise AssemblyError(f"the venue at {url} does not answer ({exc.msg}); is the URL right and the venue up?") from None
    except OSError as exc:
        raise AssemblyError(f"the venue at {url} cannot be reached: {exc.strerror or exc}") from None
    if abs(offset) > MAX_CLOCK_SKEW_MS:
        raise AssemblyError(f"this machine's clock is {offset / 1000:+.1f} s off the venue's; fix the clock (NTP) first")
    if abs(offset) > 1000:
        notes.append(f"clock {offset / 1000:+.1f} s off the venue's (requests are signed with the venue's time)")
    if check_credentials:
        try:
            await rest.request("GET", "/fapi/v2/balance", signed=True, weight=5)
        except (errors.AuthenticationFailed, errors.VenueError) as exc:
            if not isinstance(exc, errors.AuthenticationFailed) and exc.code not in (-1022, -2008, -2014, -2015):
                raise AssemblyError(f"the venue refused a signed request ({exc.code}: {exc.msg})") from None
            raise AssemblyError(f"the venue refused the API key ({exc.code}: {exc.msg}); check CELERIS_VENUE_API_KEY "
                          "and CELERIS_VENUE_API_SECRET") from None
        from celeris.venues.binance.orders import check_position_mode

        try:
            await check_position_mode(rest)
        except errors.UnsupportedAccountMode as exc:
            raise AssemblyError(str(exc)) from None
    return notes


def dashboard_port(requested: int) -> tuple[int, str]:
    """The requested dashboard port if it is free, else a free one (two `celeris up` side by side)."""
    if requested == 0:
        return 0, ""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", requested))
            return requested, ""
        except OSError:
            pass
    port = free_port()
    return port, f"dashboard port {requested} is in use; using {port}"


_handed_out: set[int] = set()
"""Ports free_port returned in this process: a port is chosen long before its component binds it, so a
second free_port must not see it as free and give it to another component (which would then answer the
first one's clients: seen as UNIMPLEMENTED from the wrong gRPC server)."""


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range, never one this process handed out before.
    The port is chosen before the component that listens on it starts; one from the ephemeral range could
    meanwhile be taken by any outgoing connection (the components connect to the simulator while their
    neighbours start)."""
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    while True:  # the range below is crowded: fall back to any free port
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
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


async def connect_venue(settings: Any, clock: Any, **options: Any) -> tuple[Any, dict[str, Any]]:
    """A signed REST client for the settings' venue, clock-synchronised, and the instruments it lists."""
    from celeris.venues.binance.rest import BinanceRestClient

    if "budget" not in options and getattr(settings, "state_dir", ""):
        options["budget"] = local_budget(settings)
    rest = BinanceRestClient(settings.venue_rest_url, clock, api_key=settings.venue_api_key.get_secret_value(),
                             api_secret=settings.venue_api_secret.get_secret_value(), **options)
    try:
        await rest.sync_clock()
        return rest, await venue_instruments(rest, settings.symbols)
    except BaseException:
        await rest.close()  # an unreachable venue at start: no session left open behind the error
        raise


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
