"""The distributed topology: simulator, market data, execution (simulation) and strategy as processes on gRPC."""

import asyncio
import json
import subprocess
import sys
import urllib.request

import grpc
import pytest

from celeris.api.v1 import (common_pb2, control_pb2, control_pb2_grpc, execution_pb2, execution_pb2_grpc, strategy_pb2,
                            strategy_pb2_grpc)
from tests.support.servers import free_port
from tests.sim.conftest import API_KEY, API_SECRET, sim_process  # noqa: F401
from tests.support.waits import until


def spawn(component, sim, **settings):
    """`python -m celeris COMPONENT run` (as `celeris up --topology services` and a pod start one)."""
    args = [sys.executable, "-m", "celeris", component, "run", "--set", f"venue_rest_url={sim['rest_url']}",
            "--set", f"venue_ws_url={sim['ws_url']}", "--set", f"venue_api_key={API_KEY}",
            "--set", f"venue_api_secret={API_SECRET}", "--set", "symbols=BTCUSDT,ETHUSDT", "--set", "log_level=WARNING"]
    for key, value in settings.items():
        args += ["--set", f"{key}={value}"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)


async def test_strategy_engine_trades_through_services(sim_process):  # noqa: F811
    md_port, ex_port, st_port = free_port(), free_port(), free_port()
    strategies = json.dumps([{"name": "mm-btc", "type": "market_making", "symbol": "BTCUSDT", "order_size": "0.010",
                              "params": {"requote_every": 5}},
                             {"name": "mom-eth", "type": "momentum", "symbol": "ETHUSDT", "order_size": "0.100",
                              "params": {"lookback": 10, "threshold_bps": 0.5}}])
    st_metrics = free_port()
    procs = [
        spawn("marketdata", sim_process, grpc_port=md_port, metrics_port=free_port()),
        spawn("execution", sim_process, grpc_port=ex_port, metrics_port=free_port(), mode="simulation",
              marketdata_target=f"127.0.0.1:{md_port}", paper_latency_ms=1),
        spawn("strategy", sim_process, grpc_port=st_port, metrics_port=st_metrics, mode="simulation",
              marketdata_target=f"127.0.0.1:{md_port}", execution_target=f"127.0.0.1:{ex_port}",
              strategies=strategies),
    ]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{st_port}") as st_ch, \
                grpc.aio.insecure_channel(f"127.0.0.1:{ex_port}") as ex_ch:
            st = strategy_pb2_grpc.StrategyEngineStub(st_ch)
            ex = execution_pb2_grpc.ExecutionStub(ex_ch)
            listed = await until(lambda: st.ListStrategies(strategy_pb2.ListStrategiesRequest(), timeout=1))
            assert {s.name for s in listed.strategies} == {"mm-btc", "mom-eth"}

            async def quotes():
                reply = await ex.ListOpenOrders(execution_pb2.ListOpenOrdersRequest(symbol="BTCUSDT"), timeout=1)
                return reply if {o.side for o in reply.orders} == {common_pb2.SIDE_BUY, common_pb2.SIDE_SELL} else None

            open_orders = await until(quotes)
            assert open_orders, "the market maker's quotes never reached execution"
            assert all(o.mode == common_pb2.MODE_SIMULATION for o in open_orders.orders)
            signals = st.StreamSignals(strategy_pb2.StreamSignalsRequest(symbols=["BTCUSDT"]))
            assert (await signals.read()).header.snapshot
            update = await asyncio.wait_for(signals.read(), 10)
            assert update.signal.strategy == "mm-btc" and update.signal.price_hint.scale == 2
            signals.cancel()
            state = await st.GetStrategyState(strategy_pb2.StrategyRequest(name="mm-btc"))
            assert "inventory_steps" in json.loads(state.state_json)
            disabled = await st.DisableStrategy(strategy_pb2.StrategyRequest(name="mm-btc"))
            assert not disabled.enabled
            ctl = control_pb2_grpc.ControlStub(st_ch)
            status = await ctl.GetStatus(control_pb2.GetStatusRequest())
            assert status.component == "strategy" and status.mode == common_pb2.MODE_SIMULATION

            # The operator's Configure (the TradingSystem's shape): mm-btc back on, mom-eth dropped.
            settings = {"strategies": [{"name": "mm-btc", "type": "market_making", "symbol": "BTCUSDT",
                                        "orderSize": "0.020", "params": {"requote_every": 5}}],
                        "risk": {"maxPositionUsdt": "20000"}}
            configured = await ctl.Configure(control_pb2.ConfigureRequest(
                generation=2, settings_json=json.dumps(settings), requested_by="test"))
            assert configured.config_generation == 2
            listed = {s.name: s for s in (await st.ListStrategies(strategy_pb2.ListStrategiesRequest())).strategies}
            assert listed["mm-btc"].enabled and not listed["mom-eth"].enabled
            with pytest.raises(grpc.aio.AioRpcError) as bad_limit:  # money is a decimal string, or refused
                await ctl.Configure(control_pb2.ConfigureRequest(generation=3, settings_json=json.dumps(
                    {"risk": {"maxPositionUsdt": "plenty"}})))
            assert bad_limit.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            with pytest.raises(grpc.aio.AioRpcError) as refused:  # an off-step size changes nothing
                await ctl.Configure(control_pb2.ConfigureRequest(generation=3, settings_json=json.dumps(
                    {"strategies": [{**settings["strategies"][0], "orderSize": "0.0001"}]})))
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert (await ctl.GetStatus(control_pb2.GetStatusRequest())).config_generation == 2
        with urllib.request.urlopen(f"http://127.0.0.1:{st_metrics}/metrics", timeout=2) as resp:
            text = resp.read().decode()
        assert 'strategy_signals_total{strategy="mm-btc"}' in text and "strategy_decision_latency_us" in text
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
