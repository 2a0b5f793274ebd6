"""Builds the dashboard server for the services topology: fed by every component's gRPC streams, its
actions sent to the risk manager and the account monitor (in-process, `celeris up` feeds it directly)."""

from __future__ import annotations

import asyncio
import logging

from celeris.assembly.settings import DashboardSettings

log = logging.getLogger("celeris.dashboard")


async def serve_dashboard(settings: DashboardSettings) -> None:
    import signal
    import time

    from celeris.dashboard.remote import GrpcActions, GrpcSource
    from celeris.dashboard.server import DashboardConfig, DashboardServer
    from celeris.dashboard.state import DashboardState

    state = DashboardState()
    server = DashboardServer(state, GrpcActions(settings), DashboardConfig(
        token=settings.token, auth_disabled=settings.auth_disabled, max_clients=settings.max_clients))
    server.sources.append(GrpcSource(settings, state, time.time_ns))
    port = await server.start(settings.grpc_host, settings.http_port)
    log.warning("dashboard on http://%s:%d/", settings.grpc_host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
