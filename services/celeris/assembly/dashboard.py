"""Builds the dashboard server for the services topology: fed by every component's gRPC streams, its
actions sent to the risk manager and the account monitor (in-process, `celeris up` feeds it directly). Like
every component it boots into its desired state (celeris.assembly.service: mode, halt, generation) and
requires the Control token on its Control service when it has one."""

from __future__ import annotations

import logging

from celeris.assembly.settings import DashboardSettings
from celeris.domain.modes import Mode

log = logging.getLogger("celeris.dashboard")


async def serve_dashboard(settings: DashboardSettings) -> None:
    """Serve the dashboard (HTTP, WebSocket) and its gRPC health and Control until SIGTERM/SIGINT."""
    import time

    from celeris.dashboard.component import DashboardComponent
    from celeris.dashboard.remote import GrpcActions, GrpcSource
    from celeris.dashboard.server import DashboardConfig, DashboardServer
    from celeris.dashboard.state import DashboardState
    from celeris.assembly.service import desired_overlay
    from celeris.runtime import control, desired_state, grpc_server
    from celeris.runtime.clock import SystemClock

    settings, desired = desired_overlay(settings)
    state = DashboardState()
    server = DashboardServer(state, GrpcActions(settings), DashboardConfig(
        token=settings.token, auth_disabled=settings.auth_disabled, max_clients=settings.max_clients))
    server.sources.append(GrpcSource(settings, state, time.time_ns))
    component = DashboardComponent(server, settings.grpc_host, settings.http_port)
    ctl = control.ComponentControl("dashboard", SystemClock(), mode=Mode(settings.mode), components=[component])
    if desired is not None:
        await desired_state.apply_at_boot(ctl, desired, f"desired state {settings.desired_state}")
    await component.start()
    log.warning("dashboard on http://%s:%d/", settings.grpc_host, component.port)
    bound = grpc_server.create_server([control.registrar(ctl)], settings.grpc_host, settings.grpc_port,
                                      control_token=settings.control_token.get_secret_value())
    await grpc_server.serve_until_signal(bound, component.stop, settings.drain_timeout_ms / 1000)
