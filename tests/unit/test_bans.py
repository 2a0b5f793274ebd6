"""A 418 ban is honoured by every process on the machine, and a ban never ends the user data stream."""

import asyncio

import pytest

from celeris.venues.binance import errors
from celeris.venues.binance.ratelimit import LocalWeightBudget
from celeris.venues.binance.userstream import UserDataStream


async def test_a_ban_one_process_got_blocks_the_others_without_a_request(tmp_path):
    ban = tmp_path / "venue-ban"
    clock = [1_000_000.0]
    first = LocalWeightBudget(ban_file=ban, wall=lambda: clock[0])
    second = LocalWeightBudget(ban_file=ban, wall=lambda: clock[0])
    await second.acquire(1)  # before the ban: fine
    await first.block_for(120)  # first got a 418 with Retry-After 120
    with pytest.raises(errors.RateLimited) as refused:
        await second.acquire(1)  # refused locally: nothing is sent to extend the ban
    assert 110 < refused.value.retry_after_s <= 120
    clock[0] += 121
    await second.acquire(1)  # over: requests flow again
    await first.acquire(1)


async def test_a_rate_limited_reconcile_after_a_reconnect_is_retried_and_the_stream_goes_on():
    calls = []

    async def reconcile():
        calls.append(len(calls))
        if len(calls) < 3:
            raise errors.RateLimited(-1003, "banned", 418, 0.01)

    stream = UserDataStream(rest=None, ws_url="ws://127.0.0.1:1", on_event=lambda e: None,
                            on_reconnect=reconcile)
    await asyncio.wait_for(stream._reconciled(), 5)
    assert len(calls) == 3
