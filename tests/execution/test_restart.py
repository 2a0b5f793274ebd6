"""Kill the execution process mid-flight, restart it on the same Redis/PostgreSQL: nothing lost, nothing twice."""

import asyncio
import os
import signal
import subprocess
import sys
import time

import asyncpg
import grpc
import pytest

from celeris.api.v1 import common_pb2, execution_pb2, execution_pb2_grpc
from tests.support.servers import free_port
from tests.sim.conftest import API_KEY, API_SECRET, sim_process  # noqa: F401

N = 24


def start_execution(sim, redis_url, pg_dsn, port):
    args = [sys.executable, "-m", "celeris", "execution", "run", "--set", f"venue_rest_url={sim['rest_url']}",
            "--set", f"venue_ws_url={sim['ws_url']}", "--set", f"venue_api_key={API_KEY}",
            "--set", f"venue_api_secret={API_SECRET}", "--set", "symbols=BTCUSDT,ETHUSDT", "--set", "mode=live",
            "--set", f"grpc_port={port}", "--set", f"metrics_port={free_port()}", "--set", f"redis_url={redis_url}",
            "--set", f"postgres_url={pg_dsn}", "--set", "max_orders_per_second=1000", "--set", "log_level=WARNING"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)


async def wait_ready(target, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with grpc.aio.insecure_channel(target) as ch:
                stub = execution_pb2_grpc.ExecutionStub(ch)
                await stub.ListOpenOrders(execution_pb2.ListOpenOrdersRequest(), timeout=1)
                return
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.2)
    raise TimeoutError("execution did not start")


def submit_request(i):
    # Far below the touch: the orders rest, so every one of them stays visible at the venue.
    return execution_pb2.SubmitOrderRequest(
        request_id=f"restart-{os.getpid()}-{i}", symbol="BTCUSDT", side=common_pb2.SIDE_BUY,
        type=execution_pb2.ORDER_TYPE_LIMIT, time_in_force=execution_pb2.TIME_IN_FORCE_GTC,
        quantity=common_pb2.Decimal(mantissa=10, scale=3), price=common_pb2.Decimal(mantissa=5500000 + i * 10, scale=2))


@pytest.mark.slow
async def test_kill_mid_flight_and_restart(sim_process, redis_server, postgres_server):  # noqa: F811
    from binance.um_futures import UMFutures

    venue = UMFutures(key=API_KEY, secret=API_SECRET, base_url=sim_process["rest_url"])
    venue.cancel_open_orders(symbol="BTCUSDT")
    port = free_port()
    target = f"127.0.0.1:{port}"
    proc = start_execution(sim_process, redis_server.url, postgres_server.dsn, port)
    try:
        await wait_ready(target)
        acked = []
        async with grpc.aio.insecure_channel(target) as ch:
            stub = execution_pb2_grpc.ExecutionStub(ch)
            calls = [asyncio.ensure_future(stub.SubmitOrder(submit_request(i), timeout=10)) for i in range(N)]
            while sum(1 for c in calls if c.done()) < N // 3:
                await asyncio.sleep(0.001)
            proc.send_signal(signal.SIGKILL)  # mid-flight: some answered, some sent, some not yet
            for call in calls:
                try:
                    acked.append((await call).request_id)
                except grpc.aio.AioRpcError:
                    pass
        proc.wait(10)
        print(f"acknowledged before the kill: {len(acked)} of {N}")
        assert len(acked) < N, "the kill landed after every answer; the test did not test a crash"
        proc = start_execution(sim_process, redis_server.url, postgres_server.dsn, port)
        await wait_ready(target)
        async with grpc.aio.insecure_channel(target) as ch:
            stub = execution_pb2_grpc.ExecutionStub(ch)
            answers = [await stub.SubmitOrder(submit_request(i), timeout=10) for i in range(N)]
            open_orders = await stub.ListOpenOrders(execution_pb2.ListOpenOrdersRequest(symbol="BTCUSDT"))
        venue_open = venue.get_orders(symbol="BTCUSDT")
        venue_ids = [o["clientOrderId"] for o in venue_open]
        assert len(venue_ids) == len(set(venue_ids)), "an order was duplicated at the venue"
        accepted = {a.order.client_order_id for a in answers if a.accepted}
        assert accepted == set(venue_ids), "the engine and the venue disagree about what is open"
        for a in answers:
            assert a.accepted or a.error.code == "SUBMIT_FAILED", a
        assert {o.client_order_id for o in open_orders.orders} == set(venue_ids)
        for rid in acked:  # what was acknowledged before the kill is still there
            assert any(a.request_id == rid and a.accepted for a in answers)
        conn = await asyncpg.connect(postgres_server.dsn)
        try:
            journaled = await conn.fetchval("SELECT count(DISTINCT client_order_id) FROM order_events "
                                            "WHERE client_order_id = ANY($1::text[])", list(accepted))
        finally:
            await conn.close()
        assert journaled == len(accepted)
    finally:
        proc.kill()
        venue.cancel_open_orders(symbol="BTCUSDT")


@pytest.mark.slow
async def test_a_halted_execution_killed_and_restarted_comes_back_halted(sim_process, tmp_path):  # noqa: F811
    """No Redis: the halt is kept in the state file. SIGKILL, restart: still halted until a person resumes."""
    from celeris.api.v1 import control_pb2, control_pb2_grpc

    def start(port):
        args = [sys.executable, "-m", "celeris", "execution", "run", "--set", f"venue_rest_url={sim_process['rest_url']}",
                "--set", f"venue_ws_url={sim_process['ws_url']}", "--set", f"venue_api_key={API_KEY}",
                "--set", f"venue_api_secret={API_SECRET}", "--set", "symbols=BTCUSDT", "--set", "mode=live",
                "--set", f"grpc_port={port}", "--set", f"metrics_port={free_port()}",
                "--set", f"state_dir={tmp_path}", "--set", "log_level=WARNING"]
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)

    port = free_port()
    target = f"127.0.0.1:{port}"
    proc = start(port)
    try:
        await wait_ready(target)
        async with grpc.aio.insecure_channel(target) as ch:
            status = await control_pb2_grpc.ControlStub(ch).Halt(
                control_pb2.HaltRequest(reason="drill", requested_by="test"), timeout=10)
            assert status.halted
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        port = free_port()
        target = f"127.0.0.1:{port}"
        proc = start(port)
        await wait_ready(target)
        async with grpc.aio.insecure_channel(target) as ch:
            status = await control_pb2_grpc.ControlStub(ch).GetStatus(control_pb2.GetStatusRequest(), timeout=5)
            assert status.halted and "drill" in status.halt_reason
            ack = await execution_pb2_grpc.ExecutionStub(ch).SubmitOrder(submit_request(900), timeout=5)
            assert not ack.accepted and ack.error.code == "HALTED"
            await control_pb2_grpc.ControlStub(ch).Resume(
                control_pb2.ResumeRequest(requested_by="alice", reason="reviewed"), timeout=5)
            ack = await execution_pb2_grpc.ExecutionStub(ch).SubmitOrder(submit_request(901), timeout=5)
            assert ack.accepted, ack.error
            await execution_pb2_grpc.ExecutionStub(ch).CancelAll(execution_pb2.CancelAllRequest(request_id="c"),
                                                                 timeout=5)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
