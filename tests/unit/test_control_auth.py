"""Control's bearer token over a real socket: every Control method refuses a call that does not present
it (none, a wrong one, one of another length, another scheme, two of them), before any lever moves; the
right token works; health stays open; random metadata never gets a call through nor stops the server."""

from __future__ import annotations

import asyncio
import json
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings, strategies as st

from celeris.api.v1 import common_pb2, control_pb2
from celeris.domain.clock import TestClock
from celeris.domain.modes import Mode
from celeris.runtime import control as control_mod
from celeris.runtime import control_auth, grpc_server

TOKEN = "s3cret-token-of-some-length-0123456789"
GOOD = (("authorization", "Bearer " + TOKEN),)
SERVICE = control_pb2.DESCRIPTOR.services_by_name["Control"]
METHODS = [m.name for m in SERVICE.methods]
"""Every method of the service, read from the proto: a method added later is covered without editing here."""


def request_for(method: str):
    """A request a method would act on if it got through (a halt, a move to simulation, a configuration)."""
    cls = getattr(control_pb2, SERVICE.methods_by_name[method].input_type.name)
    if method == "SetMode":
        return cls(mode=common_pb2.MODE_SIMULATION, requested_by="attacker")
    if method == "Halt":
        return cls(reason="attacker", requested_by="attacker")
    if method == "Resume":
        return cls(requested_by="attacker")
    if method == "Configure":
        return cls(generation=9, settings_json=json.dumps({"risk": {}}), requested_by="attacker")
    return cls()


class Server:
    """A Control server with a token on its own event loop thread, so synchronous clients (and hypothesis)
    can call it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.ctl = control_mod.ComponentControl("execution", TestClock())
        self.bound = grpc_server.create_server([control_mod.registrar(self.ctl)], port=0, control_token=TOKEN)
        self.loop.run_until_complete(self.bound.server.start())
        self.loop.run_until_complete(self.bound.set_serving())
        self.ready.set()
        self.loop.run_forever()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.bound.server.stop(None), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def levers(self) -> tuple:
        """Everything a lever moves: the audit, the halt, draining, the mode and the generation."""
        ctl = self.ctl
        return len(ctl.audit), ctl.halted, ctl.draining, ctl.mode, ctl.config_generation


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def shared():
    s = Server()
    yield s
    s.stop()


def call(channel: grpc.Channel, method: str, metadata=()):
    rpc = channel.unary_unary(f"/{SERVICE.full_name}/{method}",
                              request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=control_pb2.ComponentStatus.FromString)
    return rpc(request_for(method), metadata=metadata, timeout=5)


BAD = {
    "none": (),
    "wrong token, same length": (("authorization", "Bearer " + "x" * len(TOKEN)),),
    "shorter": (("authorization", "Bearer " + TOKEN[:-1]),),
    "longer": (("authorization", "Bearer " + TOKEN + "0"),),
    "empty bearer": (("authorization", "Bearer "),),
    "no scheme": (("authorization", TOKEN),),
    "other scheme": (("authorization", "Basic " + TOKEN),),
    "lower-case scheme": (("authorization", "bearer " + TOKEN),),
    "token in another header": (("x-control-token", TOKEN),),
    "right and wrong": (("authorization", "Bearer " + TOKEN), ("authorization", "Bearer nope")),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(BAD))
def test_every_control_method_refuses_a_call_without_the_token(server, method, case):
    with grpc.insecure_channel(server.bound.target) as channel:
        if method == "Resume":  # something to resume, or a refused resume would prove nothing
            call(channel, "Halt", GOOD)
        before = server.levers()
        with pytest.raises(grpc.RpcError) as refused:
            call(channel, method, BAD[case])
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert refused.value.details() == control_auth.REFUSAL and TOKEN not in refused.value.details()
    assert server.levers() == before, server.ctl.audit


@pytest.mark.parametrize("method", METHODS)
def test_the_right_token_works_for_every_method(server, method):
    with grpc.insecure_channel(server.bound.target) as channel:
        if method == "Resume":
            call(channel, "Halt", GOOD)
        before = server.levers()
        status = call(channel, method, GOOD)
    assert status.component == "execution"
    if method != "GetStatus":
        assert server.levers() != before


def test_health_needs_no_token(shared):
    with grpc.insecure_channel(shared.bound.target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_without_a_token_configured_control_is_open():
    async def go():
        ctl = control_mod.ComponentControl("execution", TestClock())
        bound = grpc_server.create_server([control_mod.registrar(ctl)], port=0)
        await bound.server.start()
        try:
            async with grpc.aio.insecure_channel(bound.target) as channel:
                rpc = channel.unary_unary(f"/{SERVICE.full_name}/GetStatus",
                                          request_serializer=lambda m: m.SerializeToString(),
                                          response_deserializer=control_pb2.ComponentStatus.FromString)
                return await rpc(control_pb2.GetStatusRequest(), timeout=5)
        finally:
            await bound.server.stop(None)

    assert asyncio.run(go()).component == "execution"


def test_control_metadata_is_what_the_server_takes():
    assert control_auth.control_metadata(TOKEN) == GOOD
    assert control_auth.control_metadata("") == ()
    assert control_auth.authorized(GOOD, TOKEN)
    assert not control_auth.authorized((), TOKEN)


def test_a_command_reads_its_token_from_a_file_or_the_environment(tmp_path):
    from celeris.runtime.settings import SettingsError

    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    assert control_auth.read_token(str(path), environ={}) == TOKEN
    assert control_auth.read_token("", environ={"CELERIS_CONTROL_TOKEN": TOKEN}) == TOKEN
    assert control_auth.read_token("", environ={}) == ""
    for bad in (tmp_path / "missing", tmp_path / "empty"):
        if bad.name == "empty":
            bad.write_text("\n")
        with pytest.raises(SettingsError):
            control_auth.read_token(str(bad), environ={"CELERIS_CONTROL_TOKEN": TOKEN})


# Keys a client may send (lower case; no -bin suffix, which takes bytes; none of gRPC's reserved ones).
KEYS = st.one_of(st.just("authorization"), st.from_regex(r"\A[a-z][a-z0-9_.-]{0,15}\Z").filter(
    lambda k: not k.startswith("grpc-") and not k.endswith("-bin")
    and k not in {"te", "content-type", "user-agent", "host", "authority"}))
PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
NEAR = st.sampled_from(["Bearer " + TOKEN, "Bearer " + TOKEN[:-1], "Bearer " + TOKEN + " ", "Bearer  " + TOKEN,
                        "BEARER " + TOKEN, "Bearer " + TOKEN.upper(), "Bearer " + TOKEN[::-1], TOKEN])
VALUES = st.one_of(PRINTABLE, NEAR, PRINTABLE.map(lambda t: "Bearer " + t))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metadata=st.lists(st.tuples(KEYS, VALUES), max_size=4), method=st.sampled_from(METHODS))
def test_random_metadata_never_gets_through_and_never_stops_the_server(shared, metadata, method):
    authorizations = [v for k, v in metadata if k == "authorization"]
    # The oracle: through if and only if there is exactly one authorization entry and it is the right one.
    allowed = authorizations == ["Bearer " + TOKEN]
    before = shared.levers()
    with grpc.insecure_channel(shared.bound.target) as channel:
        try:
            call(channel, method, tuple(metadata))
            got_through = True
        except grpc.RpcError as exc:
            # A call that got through may still be refused by the lever itself (a mode change not allowed).
            got_through = exc.code() is not grpc.StatusCode.UNAUTHENTICATED
        assert got_through is allowed, (metadata, method)
        if not allowed:
            assert shared.levers() == before, "a refused call pulled a lever"
        # The server keeps serving: health without a token, Control with it.
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert call(channel, "GetStatus", GOOD).component == "execution"
