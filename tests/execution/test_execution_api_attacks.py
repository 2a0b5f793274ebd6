"""The Execution API (gRPC over a real socket on 127.0.0.1) fed malformed and extreme submissions,
amendments, batches and algo orders by hypothesis: every call is answered (never a gRPC error), a refusal
carries one clear reason (a code and a one-line message), a batch answers per element -- a malformed
element refuses itself, not its neighbours -- an unknown enum value is refused rather than defaulted, and
the service keeps serving: a good order is accepted afterwards."""

from __future__ import annotations

import grpc
import pytest
from celeris.api.v1 import common_pb2
from celeris.api.v1 import execution_pb2 as pb
from celeris.api.v1 import execution_pb2_grpc
from celeris.execution.servicer import ExecutionServicer
from celeris.transport.bus import InProcessBus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.execution.scripted_venue import ScriptedVenue
from tests.execution.test_safety import make_engine

INT64 = st.integers(-(2**63), 2**63 - 1)
UINT32 = st.integers(0, 2**32 - 1)
ENUM = st.integers(-5, 20)  # proto3 enums are open: a client can send any int32
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)


def _dec(mantissa: int, scale: int) -> common_pb2.Decimal:
    return common_pb2.Decimal(mantissa=mantissa, scale=scale)


DECIMALS = st.one_of(
    st.builds(_dec, INT64, UINT32),
    st.builds(_dec, st.integers(-10**6, 10**9), st.integers(0, 4)),  # near the grid, so some pass parsing
    st.sampled_from([_dec(0, 0), _dec(-1, 3), _dec(2**63 - 1, 0), _dec(-(2**63), 0), _dec(1, 2**32 - 1),
                     _dec(10, 3), _dec(5990000, 2)]),
)


def _good(rid: str, **fields) -> pb.SubmitOrderRequest:
    base = dict(request_id=rid, symbol="BTCUSDT", side=common_pb2.SIDE_BUY, type=pb.ORDER_TYPE_LIMIT,
                time_in_force=pb.TIME_IN_FORCE_GTC, quantity=_dec(1, 3), price=_dec(5000000, 2), strategy_id="api")
    base.update(fields)
    return pb.SubmitOrderRequest(**base)


@st.composite
def submissions(draw, rid: str) -> pb.SubmitOrderRequest:
    fields = dict(
        request_id=rid, symbol=draw(st.sampled_from(["BTCUSDT", "", "NOPEUSDT", "btcusdt"]) | TEXT),
        side=draw(ENUM), type=draw(ENUM), time_in_force=draw(ENUM), reduce_only=draw(st.booleans()),
        strategy_id=draw(st.sampled_from(["api", ""]) | TEXT), client_order_id=draw(st.sampled_from([""]) | TEXT),
        ts_signal_ns=draw(INT64), callback_rate_bps=draw(st.sampled_from([0, 10, 30, 1000, 1001]) | UINT32),
        working_type=draw(ENUM), price_protect=draw(st.booleans()), close_position=draw(st.booleans()),
        stp_mode=draw(ENUM), price_match=draw(ENUM), good_till_ms=draw(INT64))
    for name in ("quantity", "price", "stop_price", "activation_price"):
        if draw(st.booleans()):
            fields[name] = draw(DECIMALS)
    return pb.SubmitOrderRequest(**fields)


@st.composite
def amendments(draw, rid: str, known: list[str]) -> pb.AmendOrderRequest:
    fields = dict(request_id=rid, symbol=draw(st.sampled_from(["BTCUSDT", "", "NOPEUSDT"]) | TEXT),
                  client_order_id=draw(st.sampled_from(known + [""]) | TEXT))
    for name in ("quantity", "price"):
        if draw(st.booleans()):
            fields[name] = draw(DECIMALS)
    return pb.AmendOrderRequest(**fields)


@pytest.fixture
async def api(btcusdt):
    venue = ScriptedVenue(auto_ack=True)
    # the test clock stands still: the rate limits are out of the way (tests/execution/test_safety.py has them)
    engine = make_engine(btcusdt, venue, limit_usdt=10**9, venue_orders_per_10s=10**9,
                         venue_orders_per_minute=10**9)
    await engine.start()
    server = grpc.aio.server()
    execution_pb2_grpc.add_ExecutionServicer_to_server(ExecutionServicer(engine, InProcessBus()), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = execution_pb2_grpc.ExecutionStub(channel)
        stub.counter = iter(range(10**9))
        yield stub
    await server.stop(None)
    await engine.stop()


def _clear(ack: pb.OrderAck) -> None:
    """A refusal is one clear reason: a code and a non-empty, one-line message, no traceback."""
    if not ack.accepted:
        assert ack.error.code and ack.error.message, ack
        assert "\n" not in ack.error.message and "Traceback" not in ack.error.message, ack.error.message


async def _still_serving(stub) -> None:
    ack = await stub.SubmitOrder(_good(f"alive-{next(stub.counter)}"))
    assert ack.accepted, ack.error
    await stub.CancelOrder(pb.CancelOrderRequest(request_id=f"c-{ack.request_id}", symbol="BTCUSDT",
                                                 client_order_id=ack.order.client_order_id))
    listed = await stub.ListOpenOrders(pb.ListOpenOrdersRequest(request_id="l", symbol="BTCUSDT"))
    assert isinstance(listed, pb.ListOpenOrdersResponse)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(data=st.data())
async def test_any_submission_is_answered_with_one_clear_reason_and_the_service_keeps_serving(api, data):
    request = data.draw(submissions("s"))
    request.request_id = f"s-{next(api.counter)}"  # unique (an id seen before answers as before)
    ack = await api.SubmitOrder(request)
    assert ack.request_id == request.request_id
    _clear(ack)
    await _still_serving(api)


@SETTINGS
@given(data=st.data())
async def test_any_amendment_is_answered_with_one_clear_reason(api, data):
    resting = await api.SubmitOrder(_good(f"r-{next(api.counter)}"))
    assert resting.accepted, resting.error
    request = data.draw(amendments("a", ["KNOWN"]))
    if request.client_order_id == "KNOWN":
        request.client_order_id = resting.order.client_order_id
    request.request_id = f"a-{next(api.counter)}"
    ack = await api.AmendOrder(request)
    _clear(ack)
    batch = await api.AmendBatch(pb.AmendBatchRequest(request_id=f"ab-{next(api.counter)}", amendments=[request]))
    assert len(batch.acks) == 1
    _clear(batch.acks[0])
    await _still_serving(api)


@SETTINGS
@given(data=st.data())
async def test_a_batch_answers_each_element_and_a_bad_one_refuses_only_itself(api, data):
    size = data.draw(st.integers(0, 7))
    elements = [data.draw(st.one_of(submissions("b"), st.builds(lambda: _good("g")))) for _ in range(size)]
    for element in elements:
        element.request_id = f"{element.request_id}-{next(api.counter)}"
    batch = await api.SubmitBatch(pb.SubmitBatchRequest(request_id=f"batch-{next(api.counter)}", orders=elements))
    assert [a.request_id for a in batch.acks] == [e.request_id for e in elements]
    for ack in batch.acks:
        _clear(ack)
    await _still_serving(api)


async def test_one_malformed_element_does_not_refuse_its_good_neighbours(api):
    bad = _good("bad-1", quantity=_dec(1, 2**32 - 1))
    good = _good("good-1")
    batch = await api.SubmitBatch(pb.SubmitBatchRequest(request_id="mixed", orders=[good, bad]))
    assert [a.accepted for a in batch.acks] == [True, False], batch
    assert batch.acks[1].error.code == "INVALID_REQUEST"
    amend_bad = pb.AmendOrderRequest(request_id="am-bad", symbol="NOPE", client_order_id="x",
                                     quantity=_dec(2, 3), price=_dec(5000000, 2))
    amend_good = pb.AmendOrderRequest(request_id="am-good", symbol="BTCUSDT",
                                      client_order_id=batch.acks[0].order.client_order_id,
                                      quantity=_dec(2, 3), price=_dec(5000000, 2))
    amended = await api.AmendBatch(pb.AmendBatchRequest(request_id="amix", amendments=[amend_good, amend_bad]))
    assert [a.accepted for a in amended.acks] == [True, False], amended
    assert "NOPE" in amended.acks[1].error.message and "NOPE" not in (amended.acks[0].error.message or "")


@pytest.mark.parametrize("tif", [6, 99, -1])
async def test_an_unknown_time_in_force_is_refused_not_read_as_gtc(api, tif):
    ack = await api.SubmitOrder(_good(f"tif-{tif}", time_in_force=tif))
    assert not ack.accepted and ack.error.code == "INVALID_REQUEST" and "time_in_force" in ack.error.message


@SETTINGS
@given(data=st.data())
async def test_any_cancel_is_answered_with_one_clear_reason(api, data):
    resting = await api.SubmitOrder(_good(f"rc-{next(api.counter)}"))
    ids = data.draw(st.lists(st.sampled_from(["KNOWN", ""]) | TEXT, max_size=15))
    ids = [resting.order.client_order_id if i == "KNOWN" else i for i in ids]
    symbol = data.draw(st.sampled_from(["BTCUSDT", "", "NOPEUSDT"]) | TEXT)
    one = await api.CancelOrder(pb.CancelOrderRequest(request_id=f"co-{next(api.counter)}", symbol=symbol,
                                                      client_order_id=ids[0] if ids else "",
                                                      venue_order_id=data.draw(st.integers(0, 2**64 - 1))))
    _clear(one)
    batch = await api.CancelBatch(pb.CancelBatchRequest(request_id=f"cb-{next(api.counter)}", symbol=symbol,
                                                        client_order_ids=ids))
    assert len(batch.acks) == len(ids)
    for ack in batch.acks:
        _clear(ack)
    every = await api.CancelAll(pb.CancelAllRequest(request_id=f"ca-{next(api.counter)}", symbol=symbol))
    assert all(e.code and e.message for e in every.errors)
    await _still_serving(api)


async def test_an_amendment_of_an_algo_or_market_order_is_refused_in_one_line(api):
    stop = await api.SubmitOrder(_good("algo-1", type=pb.ORDER_TYPE_STOP_MARKET, stop_price=_dec(7000000, 2),
                                       price=None, time_in_force=0))
    assert stop.accepted, stop.error
    ack = await api.AmendOrder(pb.AmendOrderRequest(request_id="algo-am", symbol="BTCUSDT",
                                                    client_order_id=stop.order.client_order_id,
                                                    quantity=_dec(2, 3), price=_dec(5000000, 2)))
    assert not ack.accepted
    _clear(ack)
    await _still_serving(api)
