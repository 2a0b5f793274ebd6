"""Every RPC of every service, fed random and malformed messages built from the protobuf descriptors, over
the real gRPC socket of a running system (the in-process topology serves every service on one port).
Each call answers within a second or two (a stream: its first message or its end), with OK or a client error,
and afterwards every service still serves a valid call."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celeris.api.v1 import (account_pb2, control_pb2, execution_pb2, marketdata_pb2,  # noqa: F401 - registers
                            risk_pb2, strategy_pb2)
from tests.e2e.test_scenarios import make_up, started

pytestmark = pytest.mark.slow

SERVICES = ["celeris.v1.MarketData", "celeris.v1.Execution", "celeris.v1.StrategyEngine", "celeris.v1.RiskManager",
            "celeris.v1.AccountMonitor", "celeris.v1.Control"]
ANSWER_WITHIN_S = 2.0  # the promise is 1 s; CI shares 2 cores with the system under test
CLIENT_ERRORS = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                 grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNIMPLEMENTED,
                 grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.PERMISSION_DENIED}
NOT_FUZZED = {"celeris.v1.RiskManager.TriggerEmergencyStop", "celeris.v1.Control.Halt",
              "celeris.v1.Control.Drain", "celeris.v1.Control.SetMode", "celeris.v1.Execution.CancelAll"}
"""Levers whose valid random calls stop the system: they get malformed input only, in their own test."""

_SCALARS = {
    FieldDescriptor.TYPE_STRING: st.one_of(st.text(max_size=30), st.text(min_size=300, max_size=2000),
                                           st.sampled_from(["BTCUSDT", "ETHUSDT", "", "mom-btcusdt"])),
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=64),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_INT64: st.integers(-2**63, 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: st.integers(-2**63, 2**63 - 1),
    FieldDescriptor.TYPE_INT32: st.integers(-2**31, 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_DOUBLE: st.floats(allow_nan=True, allow_infinity=True),
    FieldDescriptor.TYPE_FLOAT: st.floats(width=32, allow_nan=True, allow_infinity=True),
}


def message_strategy(descriptor, depth=0):
    cls = GetMessageClass(descriptor)
    fields = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth > 2 or field.message_type.GetOptions().map_entry:
                continue
            value = message_strategy(field.message_type, depth + 1)
        elif field.type == FieldDescriptor.TYPE_ENUM:
            value = st.integers(-3, 40)
        else:
            value = _SCALARS.get(field.type)
            if value is None:
                continue
        if field.is_repeated:
            value = st.lists(value, max_size=3)
        fields[field.name] = st.one_of(st.none(), value)

    @st.composite
    def build(draw):
        message = cls()
        for name, strategy in fields.items():
            value = draw(strategy)
            if value is None:
                continue
            field = descriptor.fields_by_name[name]
            try:
                if field.is_repeated:
                    target = getattr(message, name)
                    for item in value:
                        target.add().CopyFrom(item) if field.type == FieldDescriptor.TYPE_MESSAGE else target.append(item)
                elif field.type == FieldDescriptor.TYPE_MESSAGE:
                    getattr(message, name).CopyFrom(value)
                else:
                    setattr(message, name, value)
            except (ValueError, TypeError):
                pass  # an enum value the runtime refuses to even set: skip the field
        return message

    return build()


def methods():
    pool = descriptor_pool.Default()
    for service in SERVICES:
        for method in pool.FindServiceByName(service).methods:
            yield service, method


AUTH: list = []
"""The system's Control metadata (set by the fixture): the fuzz reaches past authentication, into each
method's own input handling."""


async def call(channel, service, method, request):
    path = f"/{service}/{method.name}"
    metadata = tuple(AUTH)
    if method.server_streaming:
        stream = channel.unary_stream(path, request_serializer=lambda m: m.SerializeToString(),
                                      response_deserializer=lambda b: b)(request, timeout=ANSWER_WITHIN_S,
                                                                                         metadata=metadata)
        try:
            async for _ in stream:
                break
        finally:
            stream.cancel()
    else:
        await channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=lambda b: b)(request, timeout=ANSWER_WITHIN_S,
                                                                     metadata=metadata)


async def timed(channel, service, method, request):
    started_at = time.monotonic()
    try:
        await call(channel, service, method, request)
        code = grpc.StatusCode.OK
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
        if method.server_streaming and code is grpc.StatusCode.DEADLINE_EXCEEDED:
            code = grpc.StatusCode.OK  # an open stream with nothing to say yet is a healthy stream
        if code is grpc.StatusCode.CANCELLED:
            code = grpc.StatusCode.OK
    elapsed = time.monotonic() - started_at
    assert code in CLIENT_ERRORS, (f"{service}/{method.name}", code, request)
    assert elapsed < ANSWER_WITHIN_S + 0.5, (f"{service}/{method.name}", elapsed)


@pytest.fixture(scope="module")
def system_target():
    loop = asyncio.new_event_loop()
    system = loop.run_until_complete(started(make_up("--symbols", "BTCUSDT,ETHUSDT", "--mode", "simulation")))
    from celeris.runtime.control_auth import control_metadata

    AUTH[:] = control_metadata(system.up.control_token)
    yield loop, system
    loop.run_until_complete(system.stop())
    loop.close()


_ALL = [(s, m) for s, m in methods() if f"{s}.{m.name}" not in NOT_FUZZED]


@pytest.mark.parametrize("service,method", _ALL, ids=[f"{s.split('.')[-1]}.{m.name}" for s, m in _ALL])
def test_every_rpc_answers_random_input_promptly_and_the_system_keeps_serving(system_target, service, method):
    loop, system = system_target

    # A quiet stream waits out its deadline: fewer examples there keep the run short.
    @settings(max_examples=4 if method.server_streaming else 12, deadline=None,
              suppress_health_check=list(HealthCheck), database=None)
    @given(request=message_strategy(method.input_type))
    def fuzz(request):
        async def go():
            async with grpc.aio.insecure_channel(system.grpc_target) as channel:
                await timed(channel, service, method, request)
        loop.run_until_complete(go())

    fuzz()

    async def still_serving():
        from celeris.api.v1 import control_pb2_grpc, execution_pb2_grpc

        async with grpc.aio.insecure_channel(system.grpc_target) as channel:
            status = await control_pb2_grpc.ControlStub(channel).GetStatus(control_pb2.GetStatusRequest(), timeout=2,
                                                                           metadata=tuple(AUTH))
            assert status.component
            await execution_pb2_grpc.ExecutionStub(channel).ListOpenOrders(execution_pb2.ListOpenOrdersRequest(),
                                                                            timeout=2)
    loop.run_until_complete(still_serving())
