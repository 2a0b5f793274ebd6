"""The real capture through the same engines as `celeris replay`, with latency and a probabilistic queue:
two identical runs give identical results (the wall-clock sleep once made them differ: 55 vs 60 orders).

The runs wire the paper venue the way a backtest must: latency on the event clock (no `sleep`), and
`drain()` when the data ends, before the strategies cancel their quotes at stop (no data will move the
clock for those requests again)."""

from __future__ import annotations

import pytest

from celeris.commands import replay as replay_command
from celeris.execution import paper as paper_module
from celeris.strategy import engine as strategy_engine
from tests.conftest import CAPTURE_60S


def with_latency(monkeypatch, **kw):
    venues: list[paper_module.PaperVenue] = []
    base = paper_module.PaperVenue

    class Backtested(base):  # type: ignore[misc, valid-type]
        def __init__(self, instruments, clock, **given):
            given.update(kw)
            super().__init__(instruments, clock, **given)
            venues.append(self)

    stop = strategy_engine.StrategyEngine.stop

    async def drained_stop(self):
        for venue in venues:
            venue.drain()
        await stop(self)

    monkeypatch.setattr(paper_module, "PaperVenue", Backtested)
    monkeypatch.setattr(strategy_engine.StrategyEngine, "stop", drained_stop)
    return venues


@pytest.mark.parametrize("queue_model", ["risk_averse", "power"])
async def test_the_capture_with_latency_is_deterministic(monkeypatch, queue_model):
    venues = with_latency(monkeypatch, latency_ms=5, queue_model=queue_model, seed=3)
    first = await replay_command.replay(CAPTURE_60S, "BTCUSDT")
    second = await replay_command.replay(CAPTURE_60S, "BTCUSDT")
    assert first == second
    assert first["orders"] > 0 and first["fills"] > 0
    assert len(venues) == 2 and all(v.in_flight == 0 for v in venues)
    fills = [[(f.client_order_id, f.last_qty_steps, f.last_price_ticks, f.ts_event_ns) for f in v.fills]
             for v in venues]
    assert fills[0] == fills[1]
