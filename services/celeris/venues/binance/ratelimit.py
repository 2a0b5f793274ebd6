"""The venue's request-weight budget, per egress IP, optionally shared through Redis.

Binance counts weight per IP per minute and bans IPs that keep going after 429s. The budget is fed by
the X-MBX-USED-WEIGHT-1M header of every answer (the venue's own count, which includes other processes
on the same IP), and `acquire` waits for the next minute before a request that would cross the safety
threshold. After a 429/418 every request waits out Retry-After. With Redis, all processes on one IP see
the same numbers.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, Protocol


class WeightBudget(Protocol):
    async def acquire(self, weight: int) -> None: ...

    async def observe(self, used_weight: int) -> None: ...

    async def block_for(self, seconds: float) -> None: ...


class LocalWeightBudget:
    """One process's view of the budget (the default).

    A block longer than `max_block_wait_s` (a 418 ban lasts minutes) is not waited out inside a request:
    the request fails at once with RateLimited, and the caller decides.
    """

    def __init__(self, limit: int = 2400, safety: float = 0.9, wall: Any = time.time,
                 sleep: Any = asyncio.sleep, max_block_wait_s: float = 10.0, ban_file: str | Path | None = None) -> None:
        self.limit = limit
        self.max_block_wait_s = max_block_wait_s
        self.safety = safety
        self._wall = wall
        self._sleep = sleep
        self.used = 0
        self.minute = 0
        self._blocked_until = 0.0
        self.waits = 0
        self.ban = SharedBan(Path(ban_file)) if ban_file else None
        """Processes on one machine share one egress IP: a 429/418 one of them got blocks them all (a
        request during a ban extends it, so one process must not keep another's ban going)."""

    @property
    def blocked_until(self) -> float:
        if self.ban is not None:
            self._blocked_until = max(self._blocked_until, self.ban.read())
        return self._blocked_until

    @blocked_until.setter
    def blocked_until(self, value: float) -> None:
        self._blocked_until = value

    def _roll(self) -> None:
        minute = int(self._wall() // 60)
        if minute != self.minute:
            self.minute, self.used = minute, 0

    async def acquire(self, weight: int) -> None:
        while True:
            now = self._wall()
            if self.blocked_until > now:
                _refuse_long_block(self.blocked_until - now, self.max_block_wait_s)
                self.waits += 1
                await self._sleep(self.blocked_until - now)
                continue
            self._roll()
            if self.used + weight <= self.limit * self.safety:
                self.used += weight
                return
            self.waits += 1
            await self._sleep(60 - now % 60 + 0.05)  # back off until the venue's minute rolls over

    async def observe(self, used_weight: int) -> None:
        self._roll()
        self.used = max(self.used, used_weight)

    async def block_for(self, seconds: float) -> None:
        until = self._wall() + seconds
        self.blocked_until = max(self.blocked_until, until)
        if self.ban is not None:
            self.ban.extend(until)


class SharedBan:
    """The end of a 429/418 block, in a small file every process on the machine reads (re-read only when
    its modification time changes, so a request costs one stat)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime = -1
        self._until = 0.0

    def read(self) -> float:
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except OSError:
            return 0.0
        if mtime != self._mtime:
            try:
                self._until = float(self.path.read_text() or 0)
                self._mtime = mtime
            except (OSError, ValueError):
                pass
        return self._until

    def extend(self, until: float) -> None:
        if until <= self.read():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(repr(until))
        os.replace(tmp, self.path)


class RedisWeightBudget:
    """The budget of one egress IP shared by every process through Redis keys.

    Keys: `celeris:weight:{ip}:{minute}` (used weight, expires after 2 min) and
    `celeris:weight:{ip}:blocked_until` (a 429/418 ban, epoch seconds).
    """

    def __init__(self, redis: Any, egress_ip: str, limit: int = 2400, safety: float = 0.9,
                 wall: Any = time.time, sleep: Any = asyncio.sleep, max_block_wait_s: float = 10.0) -> None:
        self.redis = redis
        self.max_block_wait_s = max_block_wait_s
        self.prefix = f"celeris:weight:{egress_ip}"
        self.limit = limit
        self.safety = safety
        self._wall = wall
        self._sleep = sleep
        self.waits = 0

    def _key(self) -> str:
        return f"{self.prefix}:{int(self._wall() // 60)}"

    async def acquire(self, weight: int) -> None:
        while True:
            now = self._wall()
            blocked = await self.redis.get(f"{self.prefix}:blocked_until")
            if blocked is not None and float(blocked) > now:
                _refuse_long_block(float(blocked) - now, self.max_block_wait_s)
                self.waits += 1
                await self._sleep(float(blocked) - now)
                continue
            key = self._key()
            async with self.redis.pipeline(transaction=True) as pipe:
                used, _ = await pipe.incrby(key, weight).expire(key, 120).execute()
            if used <= self.limit * self.safety:
                return
            await self.redis.decrby(key, weight)
            self.waits += 1
            await self._sleep(60 - now % 60 + 0.05)

    async def observe(self, used_weight: int) -> None:
        key = self._key()
        # Keep the larger of ours and the venue's count (Lua keeps it atomic across processes).
        await self.redis.eval(
            "local v = tonumber(redis.call('GET', KEYS[1]) or '0') "
            "if tonumber(ARGV[1]) > v then redis.call('SET', KEYS[1], ARGV[1], 'EX', 120) end return 1",
            1, key, used_weight)

    async def block_for(self, seconds: float) -> None:
        until = self._wall() + seconds
        await self.redis.eval(
            "local v = tonumber(redis.call('GET', KEYS[1]) or '0') "
            "if tonumber(ARGV[1]) > v then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end return 1",
            1, f"{self.prefix}:blocked_until", until, int(seconds) + 5)

    async def used(self) -> int:
        value = await self.redis.get(self._key())
        return int(value or 0)


def _refuse_long_block(remaining_s: float, max_wait_s: float) -> None:
    if remaining_s > max_wait_s:
        from celeris.venues.binance.errors import RateLimited

        raise RateLimited(-1003, f"request budget blocked for {remaining_s:.0f} s more (429/418)", 418,
                          remaining_s)
