"""One component in its own process (a service, a Kubernetes pod): the same builder `celeris up` uses,
given the remote shape of each port (gRPC clients of the other components), then its gRPC service with
Control over the Component, /metrics and /health, until SIGTERM; then drain and close.

Boot order, so that a restarted pod never acts in a state it was taken out of: the desired-state file
(CELERIS_DESIRED_STATE, celeris.runtime.desired_state) is read before anything is opened, and its mode
is the one the component is built in; once built, and before its market data feed is opened, it is
started or any port is served, its configuration is validated and applied and its halt pulled; a halted
component is halted again once started (what it found open at the venue is cancelled). A file that
cannot be used stops the process before it serves. The file is read at boot only, never watched: at run
time the operator steers through Control. With CELERIS_CONTROL_TOKEN, Control calls must present it
(celeris.runtime.control_auth), and this component's own calls to other components' Control present it.
"""

from __future__ import annotations

import contextlib

from typing import Any

from celeris.assembly.ports import Built, BusFeed, RemoteFeed
from celeris.assembly.wiring import Wiring
from celeris.domain.modes import Mode


def _feed(target: str, w: Wiring) -> Any:
    return RemoteFeed(target, w.instruments) if target else BusFeed(w.bus, ())


def _token(settings: Any) -> str:
    return settings.control_token.get_secret_value()


def _follow_mode(settings: Any, cell: list[Mode], on_change: Any, name: str) -> Any:
    """A mode switched on execution alone must not leave this component judging the other account."""
    if not settings.execution_target:
        return None
    from celeris.assembly.paper_account import follow_execution_mode
    from celeris.transport.tasks import supervised

    return supervised(f"{name}-follow-execution-mode", lambda: follow_execution_mode(
        settings.execution_target, cell, on_change, token=_token(settings)))


def build_remote(name: str, settings: Any, w: Wiring) -> tuple[Built, list[Any], list[Any]]:
    """The component `name` with its ports to the other components over gRPC; tasks to hold; and the
    feeds to open once its desired state is applied (market data reaching the strategy engine is what
    makes it decide, so none arrives before its halt and configuration)."""
    held: list[Any] = []
    feeds: list[Any] = []
    if name == "marketdata":
        from celeris.assembly.marketdata import build_marketdata

        return build_marketdata(settings, w), held, feeds
    if name == "execution":
        from celeris.assembly.execution import build_execution

        risk = None
        if settings.risk_target:
            from celeris.clients.risk import GrpcRiskCheck

            risk = GrpcRiskCheck(settings.risk_target, w.instruments)
        feed = _feed(settings.marketdata_target, w)
        built = build_execution(settings, w, risk, feed)
        feeds.append(feed)
        return built, held, feeds
    if name == "strategy":
        from celeris.assembly.strategy import build_strategy
        from celeris.clients.execution import ExecutionClient

        gateway = ExecutionClient(settings.execution_target, w.instruments)
        feed = _feed(settings.marketdata_target, w)

        def order_events(on_fill: Any, on_order: Any) -> None:
            gateway.stream_fills(on_fill)
            gateway.stream_orders(on_order)

        built = build_strategy(settings, w, gateway, feed, order_events)
        feeds.append(feed)
        built.closers.append(gateway.close)
        return built, held, feeds
    mode_now = [Mode(settings.mode)]
    paper_account = None
    if settings.execution_target:  # the paper account lives in the execution process
        from celeris.assembly.paper_account import ExecutionPaperAccount

        paper_account = ExecutionPaperAccount(settings.execution_target, w.instruments)
    if name == "risk":
        from celeris.assembly.risk import build_risk
        from celeris.clients.execution_control import ExecutionControlClient
        from celeris.risk import adapters

        control = ExecutionControlClient(settings.execution_target, token=_token(settings)) \
            if settings.execution_target else None
        built = build_risk(settings, w, paper_account, adapters.VenueEmergencyActions(w.rest, w.instruments, control),
                           lambda: mode_now[0])
        engine = built.parts["engine"]

        async def refresh(mode: Mode) -> None:
            await engine.refresh()

        built.component.mode_cell = mode_now
        held.append(_follow_mode(settings, mode_now, refresh, "risk"))
        return built, held, feeds
    if name == "account":
        from celeris.clients.halter import GrpcHalter
        from celeris.assembly.account import build_account

        halter = GrpcHalter(settings.risk_target, settings.execution_target, _token(settings)) \
            if settings.risk_target or settings.execution_target else None
        paper_events = None
        fills: list[Any] = []
        if paper_account is not None:
            from celeris.assembly.paper_account import paper_fill_events
            from celeris.clients.execution import ExecutionClient

            def paper_events(deliver: Any) -> None:
                client = ExecutionClient(settings.execution_target, w.instruments)
                client.stream_fills(paper_fill_events(paper_account, w.instruments, deliver))
                fills.append(client)

        built = build_account(settings, w, halter, paper_account, paper_events, lambda: mode_now[0])
        monitor = built.parts["monitor"]

        async def reconcile(mode: Mode) -> None:
            await monitor.reconcile(initial=True)

        built.component.mode_cell = mode_now
        built.closers.extend(client.close for client in fills)
        held.append(_follow_mode(settings, mode_now, reconcile, "account"))
        return built, held, feeds
    raise ValueError(f"no component called {name!r}")


def desired_overlay(settings: Any) -> tuple[Any, Any]:
    """(settings in the desired state's mode, the DesiredState) or (settings, None) when none is named;
    a named file that cannot be used raises DesiredStateError. Call it before opening anything."""
    if not settings.desired_state:
        return settings, None
    from celeris.runtime import desired_state

    desired = desired_state.read_desired_state(settings.desired_state)
    return settings.model_copy(update={"mode": desired.mode.value}), desired


async def serve(name: str, settings: Any) -> None:
    """Run component `name` until SIGTERM/SIGINT, then drain it and close what was opened."""
    from celeris.runtime import control, desired_state, grpc_server, metrics

    settings, desired = desired_overlay(settings)
    if name == "strategy":  # a strategy type no plugin source provides is refused before anything is opened
        from celeris.assembly.strategy import refuse_unknown_strategies

        refuse_unknown_strategies(settings, desired.settings if desired is not None else {})
    options: dict[str, Any] = {}
    if name == "marketdata":
        options["budget_limit"] = settings.weight_limit
    w = await Wiring.open(settings, **options)
    try:
        built, held, feeds = build_remote(name, settings, w)
        component = built.component
        ctl = control.ComponentControl(settings.component, w.clock, mode=Mode(settings.mode), components=[component])
        if desired is not None:  # before any input arrives and any port is served
            await desired_state.apply_at_boot(ctl, desired, f"desired state {settings.desired_state}")
        for feed in feeds:
            feed.start()
        try:
            await component.start()
        except BaseException:
            for close in built.closers:  # its clients (the venue's REST session) are closed, not leaked
                with contextlib.suppress(Exception):
                    await close()
            raise
        if desired is not None and desired.halted:  # again, now that the venue is read: what is open is cancelled
            await ctl.halt(desired.halt_reason or desired_state.DEFAULT_HALT_REASON, desired_state.REQUESTED_BY)
        halted, reason = getattr(component, "halt_state", (False, ""))
        if halted and not ctl.halted:  # a halt the component kept itself across a restart
            ctl.halted, ctl.halt_reason = True, reason
        ctl.mode = getattr(component, "mode", ctl.mode)
        bound = grpc_server.create_server([*built.registrars, control.registrar(ctl)], settings.grpc_host,
                                          settings.grpc_port, control_token=_token(settings))
        runner, _ = await metrics.start_metrics_server(w.registry, settings.grpc_host, settings.metrics_port,
                                                       built.health)

        async def drain() -> None:
            await component.drain()
            await component.stop()
            for close in built.closers:
                await close()

        try:
            await grpc_server.serve_until_signal(bound, drain, settings.drain_timeout_ms / 1000)
        finally:
            await runner.cleanup()
            del held
    finally:
        await w.close()
