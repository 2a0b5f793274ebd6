"""CheckOrders, the stream of pre-trade checks, over a real server on 127.0.0.1, and the client that uses it.

The stream must keep every promise of unary CheckOrder: answers in order with their ids, a stop or a
breach applied from the next check, a malformed check refused with an error answer while the stream goes
on, a client that leaves or never reads does not take the server with it. The client fails closed: a
stalled, broken or confused stream denies, never approves.
"""

from __future__ import annotations

import asyncio
import random
from fractions import Fraction

import grpc
import pytest

from celeris.api.v1 import common_pb2, risk_pb2, risk_pb2_grpc
from celeris.clients.risk import GrpcRiskCheck
from celeris.domain.clock import TestClock
from celeris.domain.messages import OrderRequest
from celeris.domain.positions import Position
from celeris.domain.risk import Approved, Denied
from celeris.domain.instruments import OrderType
from celeris.domain.values import MONEY_SCALE, Side
from celeris.risk import servicer
from celeris.risk.engine import DEFAULT_POLICIES, MemoryAudit, MemoryFlag, MemoryPolicyStore, RiskEngine
from celeris.risk.metrics import AccountSnapshot
from celeris.runtime import grpc_server
from grpc_health.v1 import health_pb2, health_pb2_grpc

MARK = 600_000  # ticks of 0.1: 60,000 USDT
POLICIES = [p for p in DEFAULT_POLICIES if p.name != "order-velocity"]  # checks here are not orders


class Source:
    def __init__(self, snap):
        self.snap = snap

    async def snapshot(self):
        return self.snap


@pytest.fixture
async def served(btcusdt):
    """A risk engine (10,000 USDT, long 0.1 BTC) behind a real server; its address; the engine."""
    pos = Position(btcusdt, 100, Fraction(100 * MARK))
    engine = RiskEngine({"BTCUSDT": btcusdt}, TestClock(), Source(AccountSnapshot(
        10_000 * 10**MONEY_SCALE, {"BTCUSDT": pos}, {"BTCUSDT": MARK}, {"BTCUSDT": 20})), MemoryPolicyStore(POLICIES),
        MemoryAudit(), MemoryFlag(), None)
    await engine.start()
    bound = grpc_server.create_server([servicer.registrar(engine)])
    await bound.server.start()
    yield bound, engine
    await bound.server.stop(None)
    await engine.stop_tasks()


def check(btcusdt, request_id, qty_steps, side=common_pb2.SIDE_BUY, reduce_only=False, price_ticks=MARK):
    return risk_pb2.CheckOrderRequest(
        request_id=request_id, symbol="BTCUSDT", side=side, reduce_only=reduce_only,
        quantity=common_pb2.Decimal(mantissa=btcusdt.qty_grid.units(qty_steps), scale=btcusdt.qty_grid.scale),
        price=common_pb2.Decimal(mantissa=btcusdt.price_grid.units(price_ticks), scale=btcusdt.price_grid.scale))


class Stream:
    """A raw CheckOrders call: send a batch, read its answers."""

    def __init__(self, channel):
        self.call = risk_pb2_grpc.RiskManagerStub(channel).CheckOrders()

    async def ask(self, *checks):
        await self.call.write(risk_pb2.CheckOrdersRequest(checks=checks))
        return list((await self.call.read()).answers)


async def test_answers_come_in_order_with_their_ids_and_agree_with_unary(served, btcusdt):
    bound, _ = served
    rng = random.Random(7)
    # 0.001 .. 2 BTC on 10,000 USDT with 0.1 held: the small ones pass, the large ones breach leverage 10
    checks = [check(btcusdt, f"c{i}", rng.choice([1, 10, 100, 1_000, 1_500, 2_000]),
                    rng.choice([common_pb2.SIDE_BUY, common_pb2.SIDE_SELL])) for i in range(300)]
    async with grpc_server.insecure_channel(bound.target) as channel:
        stub = risk_pb2_grpc.RiskManagerStub(channel)
        stream = Stream(channel)
        answers = []
        i = 0
        while i < len(checks):  # batches of 1 .. 40, several in flight before any is read
            sizes = [rng.randint(1, 40) for _ in range(3)]
            sent = 0
            for size in sizes:
                batch = checks[i + sent:i + sent + size]
                if batch:
                    await stream.call.write(risk_pb2.CheckOrdersRequest(checks=batch))
                    sent += len(batch)
            got = 0
            while got < sent:
                message = await stream.call.read()
                answers += message.answers
                got += len(message.answers)
            i += sent
        await stream.call.done_writing()
        assert [a.request_id for a in answers] == [c.request_id for c in checks]
        unary = [await stub.CheckOrder(c) for c in checks]
        assert [a.approved for a in answers] == [u.approved for u in unary]
        assert [[v.policy for v in a.violations] for a in answers] == [[v.policy for v in u.violations]
                                                                      for u in unary]
        assert {True, False} <= {a.approved for a in answers}  # both outcomes were exercised


async def test_a_stop_mid_stream_refuses_what_comes_after_it_on_the_same_stream(served, btcusdt):
    bound, engine = served
    async with grpc_server.insecure_channel(bound.target) as channel:
        stub = risk_pb2_grpc.RiskManagerStub(channel)
        stream = Stream(channel)
        before, = await stream.ask(check(btcusdt, "before", 10))
        assert before.approved
        await stub.TriggerEmergencyStop(risk_pb2.EmergencyStopRequest(reason="test", triggered_by="alice",
                                                                      flatten_positions=False))
        more, reduce = await stream.ask(check(btcusdt, "more", 10),
                                        check(btcusdt, "reduce", 10, common_pb2.SIDE_SELL, reduce_only=True))
        assert not more.approved and more.violations[0].policy == "emergency-stop"
        # The engine's rule for a stop (reductions go through execution's flatten, not the check) holds on
        # the stream exactly as on CheckOrder.
        unary = await stub.CheckOrder(check(btcusdt, "reduce-unary", 10, common_pb2.SIDE_SELL, reduce_only=True))
        assert (reduce.approved, [v.policy for v in reduce.violations]) == \
            (unary.approved, [v.policy for v in unary.violations])
        await stub.EnableTrading(risk_pb2.EnableTradingRequest(enabled_by="bob", reason="checked"))
        after, = await stream.ask(check(btcusdt, "after", 10))
        assert after.approved


async def test_a_breach_mid_stream_refuses_increases_and_allows_reductions(served, btcusdt):
    bound, _ = served
    async with grpc_server.insecure_channel(bound.target) as channel:
        stub = risk_pb2_grpc.RiskManagerStub(channel)
        stream = Stream(channel)
        first, = await stream.ask(check(btcusdt, "first", 10))
        assert first.approved
        # 0.1 BTC held is 0.6x leverage: a 0.5 limit puts the account in breach, in the middle of the stream
        await stub.UpsertPolicy(risk_pb2.RiskPolicy(name="max-leverage", metric="leverage", operator="<=",
                                                    threshold="0.5", kind="hard", scope="account", enabled=True,
                                                    priority=10))
        more, reduce, plain_reduce = await stream.ask(
            check(btcusdt, "more", 10), check(btcusdt, "reduce", 50, common_pb2.SIDE_SELL, reduce_only=True),
            check(btcusdt, "plain-reduce", 50, common_pb2.SIDE_SELL))
        assert not more.approved and [v.policy for v in more.violations] == ["max-leverage"]
        assert reduce.approved and plain_reduce.approved  # an order that lowers the breach is let through


async def test_post_trade_metrics_are_left_out_only_when_asked(served, btcusdt):
    bound, _ = served
    async with grpc_server.insecure_channel(bound.target) as channel:
        call = risk_pb2_grpc.RiskManagerStub(channel).CheckOrders()
        unary = await risk_pb2_grpc.RiskManagerStub(channel).CheckOrder(check(btcusdt, "u", 2_000))
        await call.write(risk_pb2.CheckOrdersRequest(checks=[check(btcusdt, "full", 2_000)]))
        full, = (await call.read()).answers
        await call.write(risk_pb2.CheckOrdersRequest(checks=[check(btcusdt, "lean", 2_000)], without_post_trade=True))
        lean, = (await call.read()).answers
        assert full.HasField("post_trade") and full.post_trade.leverage == unary.post_trade.leverage
        assert not lean.HasField("post_trade")
        assert (lean.approved, list(lean.violations)) == (full.approved, list(full.violations)) == \
            (unary.approved, list(unary.violations)) and not unary.approved  # the same verdict either way


BAD = [
    ("huge-qty", dict(quantity=common_pb2.Decimal(mantissa=2**63 - 1, scale=0))),
    ("qty-over-max", dict(quantity=common_pb2.Decimal(mantissa=1_001, scale=0))),
    ("huge-price", dict(price=common_pb2.Decimal(mantissa=2**63 - 1, scale=1))),
    ("negative-qty", dict(quantity=common_pb2.Decimal(mantissa=-5, scale=3))),
    ("zero-qty", dict(quantity=common_pb2.Decimal(mantissa=0, scale=3))),
    ("garbage-price-scale", dict(price=common_pb2.Decimal(mantissa=6, scale=2**32 - 1))),
    ("price-scale-19", dict(price=common_pb2.Decimal(mantissa=6, scale=19))),
    ("off-grid-price", dict(price=common_pb2.Decimal(mantissa=6_000_001, scale=2))),
    ("negative-price", dict(price=common_pb2.Decimal(mantissa=-600_000, scale=1))),
    ("unknown-symbol", dict(symbol="NOPEUSDT")),
    ("no-side", dict(side=common_pb2.SIDE_UNSPECIFIED)),
    ("long-strategy", dict(strategy_id="s" * 129)),
    ("oversized-id", dict(request_id="x" * 5_000)),
    ("oversized-symbol", dict(symbol="X" * 100_000)),  # not echoed back in the error
]


@pytest.mark.parametrize("name, fields", BAD, ids=[b[0] for b in BAD])
async def test_a_malformed_check_is_refused_with_an_error_and_the_stream_goes_on(served, btcusdt, name, fields):
    bound, engine = served
    bad = check(btcusdt, name, 10)
    for key, value in fields.items():
        if isinstance(value, common_pb2.Decimal):
            getattr(bad, key).CopyFrom(value)
        else:
            setattr(bad, key, value)
    async with grpc_server.insecure_channel(bound.target) as channel:
        stub = risk_pb2_grpc.RiskManagerStub(channel)
        stream = Stream(channel)
        checked = engine.checks
        ok1, refused, ok2 = await stream.ask(check(btcusdt, "ok1", 10), bad, check(btcusdt, "ok2", 10))
        assert ok1.approved and ok2.approved
        assert refused.request_id == bad.request_id and not refused.approved
        assert refused.error_code and refused.error and engine.checks == checked + 2  # never reached the engine
        assert len(refused.error) <= grpc_server.MAX_STRING + 100
        with pytest.raises(grpc.aio.AioRpcError) as unary:  # what CheckOrder ends with for the same check
            await stub.CheckOrder(bad)
        assert unary.value.code().name == refused.error_code
        later, = await stream.ask(check(btcusdt, "later", 10))
        assert later.approved  # the same stream is still served


async def test_an_oversized_batch_is_refused_check_by_check_and_the_stream_goes_on(served, btcusdt):
    bound, engine = served
    async with grpc_server.insecure_channel(bound.target) as channel:
        stream = Stream(channel)
        answers = await stream.ask(*(check(btcusdt, f"b{i}", 1) for i in range(grpc_server.MAX_REPEATED + 1)))
        assert len(answers) == grpc_server.MAX_REPEATED + 1 and engine.checks == 0
        assert all(not a.approved and a.error_code == "INVALID_ARGUMENT" for a in answers)
        later, = await stream.ask(check(btcusdt, "later", 10))
        assert later.approved


async def test_a_check_that_raises_in_the_engine_is_refused_and_the_stream_goes_on(served, btcusdt, monkeypatch):
    bound, engine = served
    real = engine.check_order

    def flaky(request_id, *args, **kwargs):
        if request_id == "boom":
            raise ZeroDivisionError("engine bug")
        return real(request_id, *args, **kwargs)

    monkeypatch.setattr(engine, "check_order", flaky)
    async with grpc_server.insecure_channel(bound.target) as channel:
        stream = Stream(channel)
        boom, ok = await stream.ask(check(btcusdt, "boom", 10), check(btcusdt, "ok", 10))
        assert not boom.approved and boom.error_code == "INTERNAL" and ok.approved


async def test_the_server_reads_the_next_message_only_once_the_answer_is_taken(served, btcusdt):
    """The memory bound: a client that sends and never reads leaves at most one message in the handler;
    the rest waits in HTTP/2 flow control (the client's writes block), not in a queue of the server."""
    _, engine = served
    pulled = []

    async def requests():
        for i in range(1_000):
            pulled.append(i)
            yield risk_pb2.CheckOrdersRequest(checks=[check(btcusdt, f"m{i}", 1)])

    answers = servicer.RiskServicer(engine).CheckOrders(requests(), None)
    first = await answers.__anext__()
    assert first.answers[0].request_id == "m0"
    assert pulled == [0]  # nothing more was read while the answer was not taken
    second = await answers.__anext__()
    assert second.answers[0].request_id == "m1" and pulled == [0, 1]
    await answers.aclose()


async def test_a_client_that_sends_and_leaves_mid_stream_leaves_the_server_serving(served, btcusdt):
    bound, engine = served
    async with grpc_server.insecure_channel(bound.target) as channel:
        stream = Stream(channel)
        for i in range(50):  # sent, never read
            await stream.call.write(risk_pb2.CheckOrdersRequest(checks=[check(btcusdt, f"gone{i}", 1)] * 20))
        stream.call.cancel()
    async with grpc_server.insecure_channel(bound.target) as channel:
        again, = await Stream(channel).ask(check(btcusdt, "again", 10))
        assert again.approved
        assert (await risk_pb2_grpc.RiskManagerStub(channel).CheckOrder(check(btcusdt, "unary", 10))).approved
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING


# -- the client -----------------------------------------------------------------------------------

def order(btcusdt, request_id, qty_steps, side=Side.BUY, reduce_only=False):
    return OrderRequest(request_id=request_id, strategy_id="s1", symbol="BTCUSDT", side=side,
                        order_type=OrderType.LIMIT, qty_steps=qty_steps, price_ticks=MARK, reduce_only=reduce_only)


async def test_the_client_matches_each_answer_to_its_own_check(served, btcusdt):
    bound, _ = served
    client = GrpcRiskCheck(bound.target, {"BTCUSDT": btcusdt}, timeout_s=30, max_in_flight=16)
    try:
        sizes = [10 if i % 3 else 2_000 for i in range(300)]  # every third breaches leverage 10
        verdicts = await asyncio.gather(*(client.check(order(btcusdt, f"o{i}", q), MARK) for i, q in enumerate(sizes)))
        assert [isinstance(v, Approved) for v in verdicts] == [q == 10 for q in sizes]
        assert client.streams_opened == 1 and client.use_stream and client.failures == 0
    finally:
        await client.close()


class Fake(risk_pb2_grpc.RiskManagerServicer):
    """A risk manager whose stream misbehaves on purpose; unary CheckOrder approves everything."""

    def __init__(self, behaviour="answer"):
        self.behaviour = behaviour
        self.streams = 0
        self.unary = 0
        self.received = asyncio.Event()

    async def CheckOrder(self, request, context):
        self.unary += 1
        return risk_pb2.CheckOrderResponse(request_id=request.request_id, approved=True)

    async def CheckOrders(self, request_iterator, context):
        self.streams += 1
        behaviour = self.behaviour if self.streams == 1 else "answer"  # the first stream only
        async for batch in request_iterator:
            self.received.set()
            if behaviour == "stall":
                await asyncio.Event().wait()  # never answers
            if behaviour == "break":
                await context.abort(grpc.StatusCode.UNAVAILABLE, "going away")
            ids = [c.request_id for c in batch.checks]
            if behaviour == "wrong-id":
                ids = [f"not-{i}" for i in ids]
            yield risk_pb2.CheckOrdersResponse(answers=[risk_pb2.CheckOrderResponse(request_id=i, approved=True)
                                                        for i in ids])


class OnlyUnary(risk_pb2_grpc.RiskManagerServicer):
    def __init__(self):
        self.unary = 0

    async def CheckOrder(self, request, context):
        self.unary += 1
        return risk_pb2.CheckOrderResponse(request_id=request.request_id, approved=request.quantity.mantissa <= 20)


@pytest.fixture
async def fake_server():
    servers = []

    async def start(servicer_):
        bound = grpc_server.create_server([lambda s: risk_pb2_grpc.add_RiskManagerServicer_to_server(servicer_, s)])
        await bound.server.start()
        servers.append(bound)
        return bound

    yield start
    for bound in servers:
        await bound.server.stop(None)


async def test_the_client_falls_back_to_unary_when_the_server_has_no_stream(fake_server, btcusdt):
    fake = OnlyUnary()
    bound = await fake_server(fake)
    client = GrpcRiskCheck(bound.target, {"BTCUSDT": btcusdt})
    try:
        first = await asyncio.gather(*(client.check(order(btcusdt, f"f{i}", 10), MARK) for i in range(5)))
        assert all(isinstance(v, Approved) for v in first)  # the checks on the refused stream were asked again
        assert not client.use_stream and fake.unary == 5
        assert isinstance(await client.check(order(btcusdt, "big", 500), MARK), Denied)
        assert fake.unary == 6 and client.streams_opened == 1
    finally:
        await client.close()


@pytest.mark.parametrize("behaviour", ["stall", "break", "wrong-id"])
async def test_the_client_fails_closed_and_reconnects(fake_server, btcusdt, behaviour):
    fake = Fake(behaviour)
    bound = await fake_server(fake)
    # The deadline is the client's own (a stalled stream is noticed by it); the test waits on conditions.
    client = GrpcRiskCheck(bound.target, {"BTCUSDT": btcusdt}, timeout_s=0.5 if behaviour == "stall" else 30)
    try:
        verdicts = await asyncio.gather(*(client.check(order(btcusdt, f"s{i}", 10), MARK) for i in range(4)))
        assert fake.received.is_set()  # the server had the checks: they were denied, not dropped
        assert all(isinstance(v, Denied) and v.violations[0].policy == "risk-manager-unavailable" for v in verdicts)
        if behaviour != "stall":  # denied for what went wrong, at once, not after waiting out the deadline
            assert not any("DEADLINE_EXCEEDED" in v.reason for v in verdicts)
        assert client.failures == 4 and fake.unary == 0  # never approved by falling back to unary
        again = await client.check(order(btcusdt, "again", 10), MARK)
        assert isinstance(again, Approved) and client.streams_opened == 2 and fake.streams == 2
    finally:
        await client.close()


async def test_the_client_denies_when_the_server_is_gone_and_recovers_when_it_is_back(served, btcusdt):
    bound, engine = served
    client = GrpcRiskCheck(bound.target, {"BTCUSDT": btcusdt}, timeout_s=30)
    try:
        assert isinstance(await client.check(order(btcusdt, "up", 10), MARK), Approved)
        await bound.server.stop(None)
        down = await client.check(order(btcusdt, "down", 10), MARK)
        assert isinstance(down, Denied) and "unreachable" in down.reason
        # the same port again: a new stream on the same channel
        back = grpc_server.create_server([servicer.registrar(engine)], port=bound.port)
        await back.server.start()
        try:
            await asyncio.wait_for(client._channel.channel_ready(), 30)  # the channel's reconnect backoff
            verdict = await client.check(order(btcusdt, "back", 10), MARK)
            assert isinstance(verdict, Approved)
        finally:
            await back.server.stop(None)
    finally:
        await client.close()
