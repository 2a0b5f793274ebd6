"""End-to-end scenarios of the seed, against the simulator, with the whole system running.

1) momentum: signals on price moves -> orders -> fills -> positions and PnL equal to the venue's account;
2) emergency stop: open orders cancelled, flat, halted, alert raised, manual resume recorded;
3) reconnection: market and user streams dropped -> reconnect, books resynced, outage fills accounted;
4) execution killed mid-flight and restarted -> tests/execution/test_restart.py (services topology);
5) observation -> simulation -> live at run time through the Control service.
"""

import argparse
import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import grpc

from celeris.runtime.control_auth import control_metadata
import pytest

from celeris.api.v1 import common_pb2, control_pb2, control_pb2_grpc
from celeris.domain.book import BookState
from celeris.domain.modes import Mode
from celeris.assembly.inprocess import InProcessSystem
from celeris.commands.up import Up, register
from tests.sim.conftest import API_KEY, sim_process  # noqa: F401
from tests.support.waits import wait_for

pytestmark = pytest.mark.slow


def make_up(*extra, strategies=None):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = ["up", "--quiet", "--dashboard-port", "0", *extra]
    if strategies is not None:
        args += ["--strategies", json.dumps(strategies)]
    return Up(parser.parse_args(args))


async def started(up):
    system = InProcessSystem(up)
    await system.start()
    return system


def venue_account(system):
    return system.sim.engine.accounts[system.up.api_key]


async def test_1_momentum_trades_and_the_books_agree_with_the_venue():
    momentum = [{"name": "mom-btc", "type": "momentum", "symbol": "BTCUSDT", "order_size": "0.005",
                 "params": {"lookback": 5, "threshold_bps": 0.05, "cooldown": 5}}]
    system = await started(make_up("--symbols", "BTCUSDT", "--seed", "5", strategies=momentum))
    try:
        system.sim.market.volatility = 6  # a market that moves enough to trigger momentum
        assert await wait_for(lambda: system.execution.stats.fills >= 3, timeout=30)
        runner = system.strategy.runners["mom-btc"]
        assert runner.signals >= 3 and runner.errors == 0
        await asyncio.sleep(0.5)
        await system.execution.settle()
        await system.account.reconcile()
        venue = venue_account(system)
        venue_qty = venue.positions["BTCUSDT"].qty_steps
        assert system.execution.positions["BTCUSDT"].qty_steps == venue_qty
        assert system.account.positions[("BTCUSDT", "BOTH")].qty_steps == venue_qty
        assert system.account.wallet == venue.wallet
        assert system.account.realized == venue.positions["BTCUSDT"].realized_pnl
        assert system.account.recon.mismatches == 0
        fills = [o for o in system.execution.orders.values() if o.filled_steps]
        assert all(o.strategy_id == "mom-btc" for o in fills)
    finally:
        await system.stop()


async def test_2_emergency_stop_cancels_flattens_halts_alerts_and_needs_a_person():
    system = await started(make_up("--seed", "9"))
    try:
        assert await wait_for(lambda: len(system.execution.open_orders()) >= 2 and
                              any(p.qty_steps for p in system.execution.positions.values()), timeout=30)
        stop = await system.risk.emergency_stop("e2e drill", "pytest")
        venue = venue_account(system)
        assert stop.active and stop.completed_at_ns
        assert not [o for o in venue.orders.values() if o.is_open]
        assert await wait_for(lambda: all(p.qty_steps == 0 for p in venue.positions.values()))
        assert system.execution.halted
        assert any("EMERGENCY STOP" in a.message and a.severity == "critical" for a in system.risk.alerts)
        orders_before = system.execution.stats.accepted
        await asyncio.sleep(1.5)  # strategies keep deciding; nothing leaves
        assert system.execution.stats.accepted == orders_before
        with pytest.raises(ValueError):
            await system.risk.enable_trading("")
        resumed = await system.risk.enable_trading("alice", "drill over")
        assert not resumed.active and resumed.enabled_by == "alice" and not system.execution.halted
        assert await wait_for(lambda: system.execution.stats.accepted > orders_before, timeout=20)
    finally:
        await system.stop()


async def test_3_dropped_streams_reconnect_resync_and_account_for_outage_fills():
    system = await started(make_up("--seed", "11"))
    try:
        assert await wait_for(lambda: system.execution.stats.fills >= 1, timeout=30)
        md = system.marketdata
        resyncs = {s: st.synced.stats.resyncs for s, st in md.core.symbols.items()}
        connects = md.stream.connects
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{system.venue_url}/_sim/drop", json={"which": "all"}) as r:
                assert (await r.json())["dropped"] >= 3  # market data, execution's and the account's streams
        # Fills can happen while our user streams are down: make one happen on a resting order.
        venue = venue_account(system)
        engine = system.sim.engine
        for order in list(venue.orders.values()):
            if order.is_open:
                from celeris.domain.values import Side
                taker = Side.SELL if order.side is Side.BUY else Side.BUY
                engine.fill_resting_from_flow(order.symbol, taker, order.price_ticks, 10**6)
                break
        assert await wait_for(lambda: md.stream.connects > connects and md.ready, timeout=20)
        assert all(st.synced.stats.resyncs > resyncs[s] for s, st in md.core.symbols.items())
        assert all(st.synced.state is BookState.LIVE for st in md.core.symbols.values())
        await system.execution.settle()
        assert await wait_for(lambda: all(
            system.execution.positions[s].qty_steps == venue.positions[s].qty_steps for s in system.instruments),
            timeout=15)
        fills_after = system.execution.stats.fills
        assert await wait_for(lambda: system.execution.stats.fills > fills_after, timeout=30)  # trading resumed
        await system.account.reconcile()
        assert system.account.wallet == venue.wallet
    finally:
        await system.stop()


async def test_5_mode_switches_at_run_time_through_control():
    system = await started(make_up("--mode", "observation", "--seed", "13"))
    try:
        async with grpc.aio.insecure_channel(system.grpc_target) as channel:
            ctl = control_pb2_grpc.ControlStub(channel)
            auth = control_metadata(system.up.control_token)  # the run's Control token
            # Observation: the strategies decide (signals), nothing is sent.
            assert await wait_for(lambda: system.strategy.stats["signals"] >= 3, timeout=30)
            assert system.execution.stats.accepted == 0
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await ctl.SetMode(control_pb2.SetModeRequest(mode=common_pb2.MODE_LIVE, requested_by="pytest"),
                                  metadata=auth)
            assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION  # no jump over simulation
            await ctl.SetMode(control_pb2.SetModeRequest(mode=common_pb2.MODE_SIMULATION, requested_by="pytest"),
                              metadata=auth)
            assert await wait_for(lambda: system.execution.stats.accepted > 0, timeout=20)
            venue = venue_account(system)
            assert not venue.orders  # simulation: nothing reached the venue
            assert all(system.execution.order_mode[o] is Mode.SIMULATION for o in system.execution.orders)
            status = await ctl.SetMode(control_pb2.SetModeRequest(mode=common_pb2.MODE_LIVE, requested_by="pytest"),
                                       metadata=auth)
            assert status.mode == common_pb2.MODE_LIVE
            assert await wait_for(lambda: len(venue.orders) > 0, timeout=20)  # live: orders at the venue
    finally:
        await system.stop()


@pytest.mark.parametrize("topology", ["inproc", "services"])
def test_celeris_up_runs_and_prints_a_summary(topology):
    """Runs until it has traded (a condition, not a duration: a loaded machine starts slower), then stops."""
    import signal
    import time

    celeris = str(Path(sys.executable).with_name("celeris"))
    proc = subprocess.Popen([celeris, "up", "--topology", topology, "--duration", "110", "--json",
                             "--dashboard-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 100
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            if re.search(r"fills [1-9]", line):  # the progress line: it has traded
                break
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err[-2000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["topology"] == topology and summary["mode"] == "live"
    assert summary["orders"] > 0 and summary["fills"] > 0
    assert isinstance(summary["positions"], dict) and summary["rejects"] >= 0
    assert "total" in summary["pnl"]


def test_ctrl_c_stops_cleanly_and_prints_a_summary_for_a_person():
    import signal
    import time

    celeris = str(Path(sys.executable).with_name("celeris"))
    proc = subprocess.Popen([celeris, "up", "--dashboard-port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        seen = 0
        for line in proc.stdout:  # progress lines once a second
            seen += "books live/live" in line
            if seen >= 3 or time.monotonic() > deadline:
                break
        assert seen >= 3, "celeris up never showed live books"
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest[-2000:]
    assert "stopping: cancelling open orders" in rest
    summary = rest[rest.index("summary:"):]
    assert "orders" in summary and "pnl         total" in summary and "positions" in summary


def _environ_has(proc_dir: Path, text: str) -> bool:
    try:
        return text.encode() in (proc_dir / "environ").read_bytes()
    except OSError:
        return False


def test_a_failed_start_leaves_no_process_behind():
    import os
    import time
    import uuid

    key = f"orphan-check-{uuid.uuid4().hex[:8]}"  # in every child's environment (never on a command line)
    celeris = str(Path(sys.executable).with_name("celeris"))
    env = {**os.environ, "CELERIS_BOGUS_SETTING": "1"}  # every component refuses to start on it
    result = subprocess.run([celeris, "up", "--topology", "services", "--duration", "5", "--quiet", "--api-key", key,
                             "--api-secret", "s3cret-for-the-orphan-check"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1 and "unknown setting CELERIS_BOGUS_SETTING" in result.stderr
    assert "s3cret-for-the-orphan-check" not in result.stderr + result.stdout
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and _environ_has(p, key)]
        if not left:
            break
        time.sleep(0.2)
    assert not left, f"processes left behind: {left}"


async def test_6_simulation_mode_judges_and_flattens_the_paper_account_not_the_venue():
    momentum = [{"name": "mom-btc", "type": "momentum", "symbol": "BTCUSDT", "order_size": "0.005",
                 "params": {"lookback": 3, "threshold_bps": 0.05, "cooldown": 2, "max_hold_updates": 100000}}]
    system = await started(make_up("--symbols", "BTCUSDT", "--seed", "5", "--mode", "simulation",
                                   strategies=momentum))
    try:
        system.sim.market.volatility = 6
        paper = system.paper.account_positions["BTCUSDT"]
        assert await wait_for(lambda: paper.qty_steps != 0, timeout=30)
        await system.risk.refresh()
        await system.account.reconcile()
        # Risk and the account monitor see the paper account; the venue was never traded.
        assert system.risk.snapshot.positions["BTCUSDT"].qty_steps == paper.qty_steps
        assert system.account.positions[("BTCUSDT", "BOTH")].qty_steps == paper.qty_steps
        assert system.account.recon.mismatches == 0
        venue = venue_account(system)
        assert venue.positions["BTCUSDT"].qty_steps == 0 and not venue.orders
        # The kill switch flattens the paper account through execution; nothing goes to the venue.
        stop = await system.risk.emergency_stop("simulation drill", "test")
        assert stop.active and system.execution.halted
        assert await wait_for(lambda: paper.qty_steps == 0, timeout=10)
        flatten = [o for o in system.execution.orders.values() if o.strategy_id == "emergency-flatten"]
        assert flatten and all(system.execution.order_mode[o.client_order_id] is Mode.SIMULATION for o in flatten)
        assert not venue.orders
    finally:
        await system.stop()


def test_the_first_things_that_go_wrong_are_one_line_each(sim_process):
    """A venue that does not answer, a wrong secret, a bad spec: one line, non-zero exit, no traceback."""
    celeris = str(Path(sys.executable).with_name("celeris"))
    down = subprocess.run([celeris, "up", "--venue-rest-url", "http://127.0.0.1:1", "--venue-ws-url",
                           "ws://127.0.0.1:1", "--duration", "3"], capture_output=True, text=True, timeout=60)
    assert down.returncode == 1 and "does not answer" in down.stderr and "Traceback" not in down.stderr
    assert len(down.stderr.strip().splitlines()) == 1, down.stderr
    ws = sim_process["rest_url"].replace("http", "ws")
    wrong = subprocess.run([celeris, "up", "--venue-rest-url", sim_process["rest_url"], "--venue-ws-url", ws,
                            "--api-key", API_KEY, "--api-secret", "not-the-secret", "--mode", "live",
                            "--duration", "3"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 1 and "API key" in wrong.stderr and "Traceback" not in wrong.stderr
    assert "not-the-secret" not in wrong.stderr


async def test_shutdown_stops_everything_and_summarises_even_when_a_component_fails():
    system = await started(make_up("--symbols", "BTCUSDT"))

    async def broken():
        raise RuntimeError("risk tasks would not stop")

    system.risk.stop_tasks = broken
    summary = await system.stop()
    assert summary["shutdown_problems"] and "risk manager" in summary["shutdown_problems"][0]
    assert "orders" in summary and "pnl" in summary
    assert system.execution._worker.done() and system.closers == []  # the rest was still stopped


async def test_refusals_are_alerts_a_person_sees():
    system = await started(make_up("--symbols", "BTCUSDT", strategies=[]))
    try:
        from celeris.domain.instruments import OrderType
        from celeris.domain.values import Side
        from celeris.domain.messages import OrderRequest

        await system.execution.halt("drill", "test")
        outcome = await system.execution.submit(OrderRequest("r-1", "BTCUSDT", Side.BUY, OrderType.MARKET, 1,
                                                             strategy_id="person"))
        assert not outcome.accepted
        assert any(a.category == "orders" and "HALTED" in a.message for a in system.risk.alerts)
    finally:
        await system.stop()


async def test_a_configuration_one_component_refuses_changes_no_component():
    """One Control in front of several components: validated by all before any applies (it was
    half-applied: execution took the new limits, then the strategy engine refused the unknown type)."""
    system = await started(make_up("--symbols", "BTCUSDT", "--seed", "3"))
    try:
        before_limits = system.execution.config.exposure
        before_strategies = sorted(system.strategy.runners)
        before_policies = sorted((p.name, str(p.threshold)) for p in await system.risk.policy_store.load())
        document = {"risk": {"maxPositionUsdt": "1", "maxOrderNotionalUsdt": "1"},
                    "strategies": [{"name": "aaa-new", "type": "momentum", "symbol": "BTCUSDT", "orderSize": "0.001"},
                                   {"name": "zzz-bad", "type": "no_such_type", "symbol": "BTCUSDT", "orderSize": "0.001"}]}
        async with grpc.aio.insecure_channel(system.grpc_target) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await control_pb2_grpc.ControlStub(channel).Configure(control_pb2.ConfigureRequest(
                    generation=2, settings_json=json.dumps(document), requested_by="pytest"),
                    metadata=control_metadata(system.up.control_token))
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT and "no_such_type" in refused.value.details()
        assert system.execution.config.exposure == before_limits
        assert sorted(system.strategy.runners) == before_strategies
        assert sorted((p.name, str(p.threshold)) for p in await system.risk.policy_store.load()) == before_policies
        assert system.control.config_generation == 0
    finally:
        await system.stop()
