"""A fill's commission asset through execution: a BNB commission (Binance's fee discount) is carried on the
Fill with its asset and does not reduce the position's USDT PnL; a USDT commission does."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings, strategies as st

from celeris.domain.clock import TestClock
from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.messages import Execution, Fill, OrderRequest, VenueOrderEvent
from celeris.domain.modes import Mode
from celeris.domain.values import Side
from celeris.execution.engine import ExecutionEngine
from celeris.execution.model import ExecutionConfig, PositionLimits
from celeris.execution.store import MemoryHotState
from tests.execution.scripted_venue import ScriptedVenue

PRICE = 600000


async def fill_with(btcusdt, commission: int, asset: str) -> tuple[ExecutionEngine, list[Fill]]:
    venue = ScriptedVenue(auto_ack=True)
    fills: list[Fill] = []

    async def no_sleep(_s):
        await asyncio.sleep(0)

    engine = ExecutionEngine(ExecutionConfig(("BTCUSDT",), PositionLimits(0, 10_000)), {"BTCUSDT": btcusdt},
                             TestClock(1_700_000_000 * 10**9), {Mode.LIVE: venue},
                             lambda topic, m: fills.append(m) if isinstance(m, Fill) else None, MemoryHotState(),
                             mode=Mode.LIVE, sleep=no_sleep)
    engine.on_mark("BTCUSDT", PRICE)
    await engine.start()
    outcome = await engine.submit(OrderRequest("r1", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, PRICE,
                                               TimeInForce.GTC))
    assert outcome.accepted
    placed = venue.placed[0]
    venue._on_event(VenueOrderEvent("BTCUSDT", placed.order.client_order_id, placed.venue_id, Execution.TRADE,
                                    Side.BUY, 10, PRICE, 77, commission, False, 0, 1, "LIMIT", 10, PRICE,
                                    commission_asset=asset))
    await engine.settle()
    await engine.stop()
    return engine, fills


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 10**8), st.sampled_from(["BNB", "USDT"]))
def test_the_commission_asset_decides_whether_the_usdt_pnl_pays_it(btcusdt, commission, asset):
    engine, fills = asyncio.run(fill_with(btcusdt, commission, asset))
    assert [(f.commission, f.commission_asset) for f in fills] == [(commission, asset)]
    assert engine.positions["BTCUSDT"].fees_paid == (commission if asset == "USDT" else 0)
