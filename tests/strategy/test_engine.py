"""The strategy engine: isolation of faulty strategies, plugins and hot reload, modes, orders end to end."""

import asyncio
import textwrap
import time

import pytest

from celeris.domain.book import BookState
from celeris.domain.clock import TestClock
from celeris.domain.modes import Mode
from celeris.domain.orders import OrderStatus
from celeris.domain.values import Side
from celeris.execution.engine import ExecutionEngine
from celeris.domain.topics import fill_topic, order_topic
from celeris.execution.model import ExecutionConfig, PositionLimits
from celeris.execution.paper import PaperVenue
from celeris.domain.messages import BookUpdate
from celeris.strategy.engine import StrategyConfig, StrategyEngine
from celeris.domain.topics import signal_topic
from celeris.strategy.plugins import PluginRegistry
from celeris.transport.bus import InProcessBus

PLUGIN = '''
from celeris.domain.signals import Signal, Urgency
from celeris.domain.values import Side

class Echo:
    name = "echo"
    VERSION = {version}

    def __init__(self):
        self.seen = 0

    def initialize(self, config):
        self.symbol = config["symbol"]

    def on_market_data(self, data):
        self.seen += 1
        {behaviour}
        return []

    def on_order_fill(self, fill):
        pass

    def on_position_update(self, position):
        pass

    def get_state(self):
        return {{"seen": self.seen, "version": self.VERSION}}
{restore}
'''


def write_plugin(path, version, behaviour="pass", restore=""):
    path.write_text(textwrap.dedent(PLUGIN.format(version=version, behaviour=behaviour, restore=restore)))
    # Filesystems with coarse timestamps: make sure the change is visible to an mtime check.
    t = time.time() + version
    import os
    os.utime(path, (t, t))


def book(symbol, bid, ask, seq=1, snapshot=True):
    return BookUpdate(symbol, seq, BookState.LIVE, snapshot, [(bid, 5000)], [(ask, 5000)], seq, 0, 0)


class NullGateway:
    def __init__(self):
        self.submitted = []

    async def submit(self, request):
        self.submitted.append(request)
        from celeris.domain.messages import Outcome, RejectCode, Rejection
        return Outcome(request.request_id, False, None, Rejection(RejectCode.OBSERVATION_MODE, "null"))

    async def cancel(self, request_id, symbol, client_order_id="", venue_order_id=0):
        raise AssertionError("no cancels expected")


def test_faulty_strategy_is_isolated_and_disabled(tmp_path, btcusdt):
    write_plugin(tmp_path / "bad.py", 1, behaviour="raise RuntimeError('boom')")
    registry = PluginRegistry(tmp_path)
    published = []
    engine = StrategyEngine([StrategyConfig("bad-1", "echo", "BTCUSDT", "0.001"),
                             StrategyConfig("mom", "momentum", "BTCUSDT", "0.001", {"lookback": 3, "cooldown": 0,
                                                                                   "threshold_bps": 0.1})],
                            {"BTCUSDT": btcusdt}, TestClock(), NullGateway(), lambda t, m: published.append((t, m)),
                            registry=registry, max_consecutive_errors=3)
    for i in range(10):
        engine.on_book(book("BTCUSDT", 600000 + 10 * i, 600001 + 10 * i, i + 1))
    bad = engine.runners["bad-1"]
    assert not bad.enabled and bad.errors == 3 and "boom" in bad.disabled_reason
    assert engine.runners["mom"].signals > 0  # the healthy strategy kept running
    assert any(t == signal_topic("BTCUSDT") and m.action == "observed" for t, m in published)


def test_directory_plugin_hot_reload_with_and_without_state_handover(tmp_path, btcusdt):
    path = tmp_path / "echo.py"
    write_plugin(path, 1)
    registry = PluginRegistry(tmp_path)
    engine = StrategyEngine([StrategyConfig("echo-1", "echo", "BTCUSDT", "0.001")], {"BTCUSDT": btcusdt},
                            TestClock(), NullGateway(), lambda t, m: None, registry=registry)
    for i in range(5):
        engine.on_book(book("BTCUSDT", 600000, 600001, i + 1, i == 0))
    assert engine.runners["echo-1"].strategy.get_state() == {"seen": 5, "version": 1}
    assert engine.reload_changed() == []
    write_plugin(path, 2)  # reset: no restore()
    assert engine.reload_changed() == ["echo-1"]
    assert engine.runners["echo-1"].strategy.get_state() == {"seen": 0, "version": 2}
    write_plugin(path, 3, restore="    def restore(self, state):\n        self.seen = state['seen']\n")
    engine.on_book(book("BTCUSDT", 600000, 600001, 9, False))
    assert engine.reload_changed() == ["echo-1"]
    assert engine.runners["echo-1"].strategy.get_state() == {"seen": 1, "version": 3}  # handed over
    path.write_text("this is not python(")
    import os
    os.utime(path, (time.time() + 10, time.time() + 10))
    assert engine.reload_changed() == []  # a broken file keeps the running version
    assert str(path) in registry.load_errors
    assert engine.runners["echo-1"].strategy.get_state()["version"] == 3


def test_entry_point_plugins_are_discovered(tmp_path, monkeypatch):
    pkg = tmp_path / "acme_strats"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(PLUGIN.format(version=7, behaviour="pass", restore="")))
    dist = tmp_path / "acme_strats-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-strats\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[celeris.strategies]\nacme_echo = acme_strats:Echo\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = PluginRegistry()
    assert registry.sources["acme_echo"].kind == "entry_point"
    assert registry.create("acme_echo").get_state()["version"] == 7
    with pytest.raises(KeyError):
        registry.create("nope")


def test_unknown_type_symbol_or_size_is_refused_at_configuration(btcusdt):
    make = lambda cfg: StrategyEngine([cfg], {"BTCUSDT": btcusdt}, TestClock(), NullGateway(), lambda t, m: None)
    with pytest.raises(KeyError):
        make(StrategyConfig("x", "nope", "BTCUSDT", "0.001"))
    with pytest.raises(ValueError):
        make(StrategyConfig("x", "momentum", "ETHUSDT", "0.001"))
    with pytest.raises(ValueError):
        make(StrategyConfig("x", "momentum", "BTCUSDT", "0.0005"))


async def test_signals_become_orders_fills_and_positions_in_simulation(btcusdt):
    clock = TestClock()
    instruments = {"BTCUSDT": btcusdt}
    bus = InProcessBus()
    paper = PaperVenue(instruments, clock, latency_ms=0)
    execution = ExecutionEngine(ExecutionConfig(("BTCUSDT",), PositionLimits(0, 1000)), instruments, clock,
                                {Mode.SIMULATION: paper}, bus.publish, mode=Mode.SIMULATION)
    strategy = StrategyEngine([StrategyConfig("mm", "market_making", "BTCUSDT", "0.010",
                                              {"requote_every": 1})],
                              instruments, clock, execution, bus.publish, mode=Mode.SIMULATION)
    bus.subscribe(fill_topic("BTCUSDT"), strategy.on_fill)
    bus.subscribe(order_topic("BTCUSDT"), lambda o: None if o.is_open else strategy.on_order_closed(o.client_order_id))
    await execution.start()
    first = book("BTCUSDT", 600000, 600002)
    paper.on_book(first)
    strategy.on_book(first)
    await asyncio.sleep(0.01)
    await execution.settle()
    open_orders = execution.open_orders()
    first_bid = next(o.client_order_id for o in open_orders if o.side is Side.BUY)
    assert {o.side for o in open_orders} == {Side.BUY, Side.SELL}
    assert {o.price_ticks for o in open_orders} == {600000, 600002}
    # The market moves up through our ask: the paper venue fills it; the engine learns the position.
    moved = BookUpdate("BTCUSDT", 2, BookState.LIVE, False, [(600000, 0), (600003, 4000)], [(600002, 0), (600004, 10)],
                       2, 0, 0)
    paper.on_book(moved)
    await execution.settle()
    # Quotes are sized order_size x strength (0.010 x 0.5).
    assert strategy.positions["BTCUSDT"].qty_steps == -5
    assert strategy.runners["mm"].strategy.get_state()["inventory_steps"] == -5
    strategy.on_book(moved)  # requote: the bid moves up, the filled ask is replaced
    await asyncio.sleep(0.01)
    await execution.settle()
    bids = [o for o in execution.open_orders() if o.side is Side.BUY]
    asks = [o for o in execution.open_orders() if o.side is Side.SELL]
    # The market maker is an SDK strategy: its bid is amended in place (the same order at the new price,
    # nothing cancelled; it was cancelled and replaced when it was a signal strategy), the filled ask placed again.
    assert len(bids) == 1 and bids[0].price_ticks == 600003 and bids[0].client_order_id == first_bid
    assert len(asks) == 1 and asks[0].price_ticks == 600004
    assert [o for o in execution.orders.values() if o.status is OrderStatus.CANCELED] == []
    await strategy.stop()


async def test_observation_mode_sends_nothing(btcusdt):
    gateway = NullGateway()
    published = []
    engine = StrategyEngine([StrategyConfig("mm", "market_making", "BTCUSDT", "0.010", {"requote_every": 1})],
                            {"BTCUSDT": btcusdt}, TestClock(), gateway, lambda t, m: published.append(m),
                            mode=Mode.OBSERVATION)
    engine.on_book(book("BTCUSDT", 600000, 600002))
    await asyncio.sleep(0)
    assert gateway.submitted == [] and len(published) == 2 and all(m.action == "observed" for m in published)
    engine.on_book(BookUpdate("BTCUSDT", 2, BookState.STALE, False, [], [], 2, 0, 0))
    engine.decide("BTCUSDT")
    assert len(published) == 2  # no decisions on a stale book


def test_reconfigure_without_restart(btcusdt):
    engine = StrategyEngine([StrategyConfig("mom", "momentum", "BTCUSDT", "0.001", {"lookback": 10})],
                            {"BTCUSDT": btcusdt}, TestClock(), NullGateway(), lambda t, m: None)
    assert engine.reconfigure([StrategyConfig("mom", "momentum", "BTCUSDT", "0.001", {"lookback": 10})]) == []
    changed = engine.reconfigure([StrategyConfig("mom", "momentum", "BTCUSDT", "0.002", {"lookback": 30}),
                                  StrategyConfig("mm", "market_making", "BTCUSDT", "0.001")])
    assert set(changed) == {"mom", "mm"}
    assert engine.runners["mom"].strategy.get_state()["lookback"] == 30
    assert engine.reconfigure([StrategyConfig("mm", "market_making", "BTCUSDT", "0.001")]) == ["mom"]
    assert not engine.runners["mom"].enabled
    with pytest.raises(ValueError):
        engine.reconfigure([StrategyConfig("mm", "market_making", "BTCUSDT", "0.0005")])


def test_running_net_taker_sum_drops_trades_older_than_ten_seconds(btcusdt):
    from celeris.domain.messages import TradeUpdate
    engine = StrategyEngine([], {"BTCUSDT": btcusdt}, TestClock(), NullGateway(), lambda t, m: None)
    for i, (ts_s, qty, maker) in enumerate([(0, 5, False), (5, 2, True), (12, 7, False), (30, 1, False)]):
        engine.on_trade(TradeUpdate("BTCUSDT", i, i, 100, qty, maker, ts_s * 10**9, ts_s * 10**9))
    assert engine.net_taker_sum["BTCUSDT"] == 1
