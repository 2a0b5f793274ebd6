"""The execution service as users run it: gRPC Execution + Control over sockets, Redis topics."""

import asyncio
import json

import grpc
import pytest
import redis.asyncio as aioredis

from celeris.api.v1 import common_pb2, control_pb2, control_pb2_grpc, execution_pb2, execution_pb2_grpc
from tests.execution.test_restart import start_execution, wait_ready
from tests.support.servers import free_port
from tests.sim.conftest import sim_process  # noqa: F401


def limit(rid, price_mantissa, qty=10):
    return execution_pb2.SubmitOrderRequest(
        request_id=rid, symbol="BTCUSDT", side=common_pb2.SIDE_BUY, type=execution_pb2.ORDER_TYPE_LIMIT,
        time_in_force=execution_pb2.TIME_IN_FORCE_GTC, quantity=common_pb2.Decimal(mantissa=qty, scale=3),
        price=common_pb2.Decimal(mantissa=price_mantissa, scale=2))


async def test_grpc_service_streams_redis_topics_and_control(sim_process, redis_server, postgres_server):  # noqa: F811
    port = free_port()
    proc = start_execution(sim_process, redis_server.url, postgres_server.dsn, port)
    client = aioredis.from_url(redis_server.url)
    pubsub = client.pubsub()
    await pubsub.subscribe("fills.ETHUSDT", "orders.ETHUSDT")
    try:
        target = f"127.0.0.1:{port}"
        await wait_ready(target)
        async with grpc.aio.insecure_channel(target) as ch:
            ex = execution_pb2_grpc.ExecutionStub(ch)
            ctl = control_pb2_grpc.ControlStub(ch)
            updates = ex.StreamOrderUpdates(execution_pb2.StreamOrdersRequest(symbols=["ETHUSDT"]))
            fills = ex.StreamFills(execution_pb2.StreamFillsRequest(symbols=["ETHUSDT"]))
            assert (await updates.read()).header.snapshot and (await fills.read()).header.snapshot
            market = execution_pb2.SubmitOrderRequest(
                request_id="svc-market-1", symbol="ETHUSDT", side=common_pb2.SIDE_SELL,
                type=execution_pb2.ORDER_TYPE_MARKET, quantity=common_pb2.Decimal(mantissa=50, scale=3))
            ack = await ex.SubmitOrder(market)
            # The fills may overtake the acknowledgement (the order walks more than one level).
            assert ack.accepted and ack.order.status in (execution_pb2.ORDER_STATUS_SUBMITTED,
                                                         execution_pb2.ORDER_STATUS_PARTIALLY_FILLED,
                                                         execution_pb2.ORDER_STATUS_FILLED)
            filled, sequences = 0, []
            while filled < 50:
                fill = await asyncio.wait_for(fills.read(), 5)
                assert fill.symbol == "ETHUSDT"
                filled += fill.quantity.mantissa
                sequences.append(fill.header.sequence)
            assert filled == 50 and sequences == list(range(2, 2 + len(sequences)))
            got = {}
            deadline = asyncio.get_running_loop().time() + 5
            while len(got) < 2 and asyncio.get_running_loop().time() < deadline:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if msg:
                    got[msg["channel"].decode()] = json.loads(msg["data"])
            assert got["fills.ETHUSDT"]["symbol"] == "ETHUSDT" and "orders.ETHUSDT" in got

            bad = await ex.SubmitOrder(limit("svc-bad-1", 600000005))  # 6000000.05: off the 0.10 tick
            assert not bad.accepted and bad.error.code == "INVALID_REQUEST" and "multiple" in bad.error.message
            resting = await ex.SubmitOrder(limit("svc-rest-1", 5000000))
            assert resting.accepted
            got_order = await ex.GetOrder(execution_pb2.GetOrderRequest(
                symbol="BTCUSDT", client_order_id=resting.order.client_order_id))
            assert got_order.status == execution_pb2.ORDER_STATUS_SUBMITTED
            halted = await ctl.Halt(control_pb2.HaltRequest(reason="test halt", requested_by="pytest"))
            assert halted.halted
            open_orders = await ex.ListOpenOrders(execution_pb2.ListOpenOrdersRequest())
            assert not open_orders.orders
            refused = await ex.SubmitOrder(limit("svc-after-halt", 5000000))
            assert refused.error.code == "HALTED"
            await ctl.Resume(control_pb2.ResumeRequest(requested_by="pytest", reason="checked"))
            # A configured order-rate limit applies from the next order, without a restart.
            configured = await ctl.Configure(control_pb2.ConfigureRequest(
                generation=7, settings_json=json.dumps({"risk": {"maxOrdersPerSecond": 1}}), requested_by="pytest"))
            assert configured.config_generation == 7
            await asyncio.sleep(1.1)  # the orders above leave the one-second window
            first = await ex.SubmitOrder(limit("svc-rate-1", 5000000))
            second = await ex.SubmitOrder(limit("svc-rate-2", 5000000))
            assert first.accepted and second.error.code == "RATE_LIMIT", (first.error, second.error)
            await ctl.SetMode(control_pb2.SetModeRequest(mode=common_pb2.MODE_OBSERVATION, requested_by="pytest"))
            observed = await ex.SubmitOrder(limit("svc-observe", 5000000))
            assert observed.error.code == "OBSERVATION_MODE"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await ctl.SetMode(control_pb2.SetModeRequest(mode=common_pb2.MODE_LIVE))
            assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
            updates.cancel()
            fills.cancel()
    finally:
        proc.kill()
        await pubsub.aclose()
        await client.aclose()
