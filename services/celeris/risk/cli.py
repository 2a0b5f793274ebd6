"""`celeris risk run` (the risk manager); the kill switch commands are in celeris.killswitch."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from celeris.runtime.service_cli import (add_service_command, connect_venue, open_stores, serve_then_close,
                                         store_closers)
from celeris.runtime.settings import ServiceSettings


class RiskSettings(ServiceSettings):
    """Risk manager settings (CELERIS_* environment variables or --set key=value)."""

    component: str = "risk"
    execution_target: str = ""
    """host:port of execution's gRPC server, halted by an emergency stop (empty = venue-side actions only)."""
    monitor_interval_s: float = Field(1.0, gt=0)
    flatten_on_emergency: bool = True


def register(sub: Any) -> None:
    add_service_command(sub, "risk", "risk manager: pre-trade checks, policies, the emergency stop", RiskSettings, serve)

    from celeris import killswitch

    killswitch.register(sub)


async def serve(settings: RiskSettings) -> None:
    from celeris.domain.modes import Mode
    from celeris.risk import adapters, servicer
    from celeris.risk.engine import (DEFAULT_POLICIES, MemoryAudit, MemoryFlag, MemoryPolicyStore, RiskConfig,
                                     RiskEngine, metrics_json)
    from celeris.runtime import control, grpc_server, metrics
    from celeris.runtime.clock import SystemClock

    clock = SystemClock()
    registry = metrics.new_registry()
    rest, instruments = await connect_venue(settings, clock)
    redis_client, pool = await open_stores(settings)
    flag: Any = adapters.RedisTradingFlag(redis_client) if redis_client is not None else MemoryFlag()
    policies: Any = adapters.PostgresPolicyStore(pool, DEFAULT_POLICIES) if pool is not None else MemoryPolicyStore()
    audit: Any = adapters.PostgresAudit(pool) if pool is not None else MemoryAudit()
    # The account being traded: the paper one (in the execution process) while in simulation mode.
    mode_now = [Mode(settings.mode)]
    source: Any = adapters.VenueAccountSource(rest, instruments)
    if settings.execution_target:
        from celeris.paper_account import ExecutionPaperAccount, ModeRouted
        source = ModeRouted(lambda: mode_now[0], ExecutionPaperAccount(settings.execution_target, instruments),
                            source)
    engine = RiskEngine(instruments, clock, source, policies, audit, flag,
                        adapters.VenueEmergencyActions(rest, instruments, settings.execution_target),
                        RiskConfig(settings.monitor_interval_s, settings.flatten_on_emergency))
    from celeris.risk.metrics_export import RiskCollector

    registry.register(RiskCollector(engine))
    await engine.start()
    if settings.risk_spec() is not None:
        await engine.apply_limits(settings.risk_spec().as_json())
    ctl = control.ComponentControl("risk", clock, mode=Mode(settings.mode), halted=engine.stop.active,
                                   halt_reason=engine.stop.reason,
                                   details=lambda: {"metrics": json.dumps(metrics_json(engine.metrics))
                                                    if engine.metrics else "{}"})

    async def on_halt(reason: str, flatten: bool) -> None:
        await engine.emergency_stop(reason, "control", flatten)

    async def on_resume(requested_by: str) -> None:
        await engine.enable_trading(requested_by)

    async def on_configure(config: dict[str, Any]) -> None:
        await engine.apply_limits(config.get("risk") or {})

    async def on_mode(mode: Mode) -> None:
        mode_now[0] = mode
        await engine.refresh()

    follower: Any = None  # held: the event loop keeps only weak references to tasks
    if settings.execution_target:
        from celeris.paper_account import follow_execution_mode
        from celeris.transport.tasks import supervised

        async def refresh_for(mode: Mode) -> None:
            await engine.refresh()

        follower = supervised("risk-follow-execution-mode", lambda: follow_execution_mode(
            settings.execution_target, mode_now, refresh_for))

    ctl.on_mode.append(on_mode)
    ctl.on_halt.append(on_halt)
    ctl.on_resume.append(on_resume)
    ctl.on_configure.append(on_configure)
    bound = grpc_server.create_server([servicer.registrar(engine), control.registrar(ctl)], settings.grpc_host,
                                      settings.grpc_port)
    runner, _ = await metrics.start_metrics_server(
        registry, settings.grpc_host, settings.metrics_port,
        lambda: {"status": "ok" if engine.metrics is not None else "degraded", "service": "risk",
                 "emergency_stop": engine.stop.active, "checks": engine.checks})
    await serve_then_close(bound, engine.stop_tasks, settings, [
        runner.cleanup, rest.close, *store_closers(redis_client, pool)])
