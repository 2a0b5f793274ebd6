"""gRPC server boot shared by every service: health, correlation ids, port 0, graceful drain.

`create_server` builds a grpc.aio server with the standard grpc.health.v1 service, the correlation-id
interceptor and, given a token, the Control service's bearer check (celeris.runtime.control_auth), binds
it (port 0 picks a free port and the bound port is returned), and leaves starting to the caller, so
tests run the real server in-process. `serve_until_signal` is the process shell's loop: on SIGTERM/SIGINT
it reports NOT_SERVING, lets the component drain, then stops with a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from celeris.runtime import control_auth, logs

log = logging.getLogger(__name__)

CORRELATION_KEY = "x-correlation-id"

Registrar = Callable[[grpc.aio.Server], None]


class CorrelationServerInterceptor(grpc.aio.ServerInterceptor):
    """Takes the caller's correlation id from metadata (or makes one) for the handler's logs."""

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        metadata = dict(details.invocation_metadata or ())
        cid = metadata.get(CORRELATION_KEY) or logs.new_correlation_id()
        return _wrap_handler(handler, cid)


MAX_REPEATED = 1000
MAX_STRING = 1024
"""Characters in a string field; an error that echoes it must still fit gRPC's 8 KiB of trailing metadata."""
LONG_STRINGS = {"settings_json": 256 * 1024}
"""Fields that carry documents (a configuration): their own bound."""
MAX_DEPTH = 8


def oversized(message: Any, depth: int = 0) -> str:
    """Why a request is too large to serve ('' when it is not): every repeated field holds at most 1,000
    items, every string at most 1,024 characters (documents such as settings_json 256 KiB), nesting at most 8
    deep. One message must not stall a service."""
    if depth > MAX_DEPTH:
        return "messages nested too deep"
    for field, value in message.ListFields():
        if field.is_repeated:
            if len(value) > MAX_REPEATED:
                return f"{field.name}: {len(value)} items (at most {MAX_REPEATED})"
            items = value
        else:
            items = (value,)
        limit = LONG_STRINGS.get(field.name, MAX_STRING)
        for item in items:
            if isinstance(item, (str, bytes)) and len(item) > limit:
                return f"{field.name}: longer than {limit} characters"
            if hasattr(item, "ListFields"):
                problem = oversized(item, depth + 1)
                if problem:
                    return f"{field.name}.{problem}"
    return ""


def _wrap_handler(handler: grpc.RpcMethodHandler, cid: str) -> grpc.RpcMethodHandler:
    if handler.unary_unary:
        inner = handler.unary_unary

        async def unary_unary(request: Any, context: Any) -> Any:
            logs.correlation_id.set(cid)
            problem = oversized(request)
            if problem:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request refused: {problem}")
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, handler.request_deserializer,
                                                   handler.response_serializer)
    if handler.unary_stream:
        inner_stream = handler.unary_stream

        async def unary_stream(request: Any, context: Any) -> Any:
            logs.correlation_id.set(cid)
            problem = oversized(request)
            if problem:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request refused: {problem}")
            async for item in inner_stream(request, context):
                yield item

        return grpc.unary_stream_rpc_method_handler(unary_stream, handler.request_deserializer,
                                                    handler.response_serializer)
    if handler.stream_stream:
        inner_bidi = handler.stream_stream

        async def stream_stream(request_iterator: Any, context: Any) -> Any:
            # The handler bounds each message itself (risk's CheckOrders answers an oversized one with an
            # error and serves the next): aborting here would end the whole stream for one message.
            logs.correlation_id.set(cid)
            async for item in inner_bidi(request_iterator, context):
                yield item

        return grpc.stream_stream_rpc_method_handler(stream_stream, handler.request_deserializer,
                                                     handler.response_serializer)
    return handler  # client-streaming calls: none in our contracts


class CorrelationClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """Sends the current correlation id with every outgoing call."""

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_correlation(details), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_correlation(details), request)


def _with_correlation(details: Any) -> Any:
    cid = logs.correlation_id.get() or logs.new_correlation_id()
    metadata = list(details.metadata or ())
    if not any(k == CORRELATION_KEY for k, _ in metadata):
        metadata.append((CORRELATION_KEY, cid))
    return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                      details.wait_for_ready)


def insecure_channel(target: str) -> grpc.aio.Channel:
    """A client channel that carries correlation ids."""
    return grpc.aio.insecure_channel(target, interceptors=[CorrelationClientInterceptor()])


@dataclass
class BoundServer:
    server: grpc.aio.Server
    port: int
    health: HealthServicer

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def set_serving(self, service: str = "") -> None:
        await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)

    async def set_not_serving(self, service: str = "") -> None:
        await self.health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)


def create_server(registrars: Iterable[Registrar], host: str = "127.0.0.1", port: int = 0,
                  control_token: str = "") -> BoundServer:
    """Build and bind (not start) a server with health and the given services; with `control_token`,
    every Control call must present it (celeris.runtime.control_auth), health and the rest stay open."""
    interceptors: list[grpc.aio.ServerInterceptor] = [CorrelationServerInterceptor()]
    if control_token:  # first: a refused call is not decoded, logged or size-checked
        interceptors.insert(0, control_auth.ControlAuthInterceptor(control_token))
    server = grpc.aio.server(interceptors=interceptors, options=[("grpc.so_reuseport", 0)])
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    for register in registrars:
        register(server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind gRPC server on {host}:{port}")
    return BoundServer(server, bound, health)


async def serve_until_signal(bound: BoundServer, drain: Callable[[], Awaitable[None]] | None = None,
                             drain_timeout_s: float = 10.0) -> None:
    """Start, report SERVING, and on SIGTERM/SIGINT drain and stop gracefully."""
    await bound.server.start()
    await bound.set_serving()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    log.info("serving", extra={"port": bound.port})
    await stop.wait()
    log.info("draining", extra={"timeout_s": drain_timeout_s})
    await bound.health.enter_graceful_shutdown()
    if drain is not None:
        try:
            await asyncio.wait_for(drain(), drain_timeout_s)
        except asyncio.TimeoutError:
            log.warning("drain timed out; stopping anyway")
    await bound.server.stop(grace=min(drain_timeout_s, 5.0))
    log.info("stopped")


def install_uvloop() -> bool:
    """Use uvloop when it is installed (it is, except on platforms without wheels)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - optional speed-up
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
