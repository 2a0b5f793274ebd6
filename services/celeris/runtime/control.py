"""The Control service every component exposes: status, mode, halt/resume, drain.

Owns `ComponentControl`, the per-process state behind the operator's levers (current mode through the
domain's mode table, the halt flag with who/why, draining, the configuration generation), which pulls
each lever on every component the process runs through the one Component protocol
(celeris.runtime.component): one in a service process, all of them in `celeris up --topology inproc`.
`ControlServicer` is the gRPC shell over it that only translates.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import grpc

from celeris import __version__
from celeris.api.v1 import common_pb2, control_pb2, control_pb2_grpc
from celeris.domain.clock import Clock
from celeris.domain.modes import IllegalModeChange, Mode, change_mode

log = logging.getLogger(__name__)

MODE_TO_PB = {Mode.OBSERVATION: common_pb2.MODE_OBSERVATION, Mode.SIMULATION: common_pb2.MODE_SIMULATION,
              Mode.LIVE: common_pb2.MODE_LIVE}
PB_TO_MODE = {v: k for k, v in MODE_TO_PB.items()}

Hook = Callable[[], Awaitable[None]]


@dataclass
class ComponentControl:
    component: str
    clock: Clock
    mode: Mode = Mode.OBSERVATION
    halted: bool = False
    halt_reason: str = ""
    halted_by: str = ""
    draining: bool = False
    ready: bool = True
    started_at_ns: int = 0
    audit: list[tuple[int, str, str]] = field(default_factory=list)
    """(ts_ns, action, detail) of every lever pulled."""
    on_mode: list[Callable[[Mode], Awaitable[None]]] = field(default_factory=list)
    on_halt: list[Callable[[str, bool], Awaitable[None]]] = field(default_factory=list)
    on_resume: list[Callable[[str], Awaitable[None]]] = field(default_factory=list)
    """Called with who resumed (recorded by the component)."""
    on_drain: list[Hook] = field(default_factory=list)
    details: Callable[[], dict[str, str]] = field(default=lambda: {})
    components: list[Any] = field(default_factory=list)
    """The Components (celeris.runtime.component) this process runs, in the order levers reach them."""
    config_generation: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    on_configure: list[Callable[[dict[str, Any]], Awaitable[None]]] = field(default_factory=list)
    """Called with the new configuration; a hook that raises refuses it (the generation stays)."""

    def __post_init__(self) -> None:
        if not self.started_at_ns:
            self.started_at_ns = self.clock.now_ns()

    async def set_mode(self, target: Mode, requested_by: str = "", reason: str = "") -> None:
        previous = self.reported_mode()
        self.mode = change_mode(previous, target)
        self._record("set_mode", f"{previous.value}->{target.value} by {requested_by or '?'}: {reason}")
        for component in self.components:
            await component.set_mode(target)
        for hook in self.on_mode:
            await hook(target)

    async def halt(self, reason: str, requested_by: str = "", flatten: bool = False) -> None:
        """Halt; the engines' halts are idempotent, so a repeated halt still reaches them (a flatten asked
        the second time is done, an order left open is cancelled) but the first reason stands here."""
        if not self.halted:
            self.halted, self.halt_reason, self.halted_by = True, reason, requested_by
            self._record("halt", f"by {requested_by or '?'}: {reason}")
        for component in self.components:
            await component.halt(reason, requested_by, flatten)
        for hook in self.on_halt:
            await hook(reason, flatten)

    async def resume(self, requested_by: str, reason: str = "") -> None:
        if not requested_by:
            raise ValueError("resume needs requested_by: re-enabling trading is recorded")
        was_halted = self.halted
        self.halted, self.halt_reason = False, ""
        if was_halted:
            self._record("resume", f"by {requested_by}: {reason}")
        for component in self.components:
            await component.resume(requested_by)
        for hook in self.on_resume:  # an engine may be halted on its own account (a persisted halt)
            await hook(requested_by)

    async def configure(self, generation: int, settings: dict[str, Any], requested_by: str = "") -> None:
        if generation < self.config_generation:
            raise ValueError(f"generation {generation} is older than the applied {self.config_generation}")
        # Two phases: every component checks the whole document first, so one that would refuse it refuses
        # it before any other has applied its part (a refused configuration changes nothing anywhere).
        for component in self.components:
            validate = getattr(component, "validate", None)
            if validate is not None:
                validate(settings)
        for component in self.components:
            await component.configure(settings)
        for hook in self.on_configure:
            await hook(settings)
        self.config, self.config_generation = settings, generation
        self._record("configure", f"generation {generation} by {requested_by or '?'}")

    async def drain(self) -> None:
        self.draining = True
        self.ready = False
        self._record("drain", "")
        for component in self.components:
            await component.drain()
        for hook in self.on_drain:
            await hook()

    def _record(self, action: str, detail: str) -> None:
        self.audit.append((self.clock.now_ns(), action, detail))
        log.info("control %s", action, extra={"detail": detail, "component": self.component})

    def component_details(self) -> dict[str, str]:
        """What the components report; with several in one process each key names its component."""
        out = dict(self.details())
        for component in self.components:
            prefix = f"{component.name}." if len(self.components) > 1 else ""
            out.update({prefix + k: v for k, v in component.status().items()})
        return out

    def reported_mode(self) -> Mode:
        """The mode a lone component trades in (it may follow execution's on its own), else this lever's."""
        if len(self.components) == 1:
            mode = getattr(self.components[0], "mode", None)
            if isinstance(mode, Mode):
                return mode
        return self.mode

    def halt_state(self) -> tuple[bool, str]:
        """Halted by this lever, or by a component on its own account (the risk manager's emergency stop,
        a halt that survived a restart, execution halting on a rejected key): a status never says
        "trading" while a component refuses to."""
        if self.halted:
            return True, self.halt_reason
        for component in self.components:
            halted, reason = getattr(component, "halt_state", (False, ""))
            if halted:
                return True, reason
        return False, ""

    def status(self, request_id: str = "") -> control_pb2.ComponentStatus:
        halted, reason = self.halt_state()
        return control_pb2.ComponentStatus(
            request_id=request_id, component=self.component, version=__version__,
            mode=MODE_TO_PB[self.reported_mode()], halted=halted, halt_reason=reason,
            draining=self.draining, ready=self.ready, started_at_ns=self.started_at_ns,
            ts_ns=self.clock.now_ns(), details=self.component_details(), config_generation=self.config_generation,
        )


class ControlServicer(control_pb2_grpc.ControlServicer):
    def __init__(self, control: ComponentControl) -> None:
        self._control = control

    async def GetStatus(self, request, context):  # type: ignore[no-untyped-def]
        return self._control.status(request.request_id)

    async def SetMode(self, request, context):  # type: ignore[no-untyped-def]
        if request.mode not in PB_TO_MODE:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "mode must be observation, simulation or live")
        try:
            await self._control.set_mode(PB_TO_MODE[request.mode], request.requested_by, request.reason)
        except IllegalModeChange as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        return self._control.status(request.request_id)

    async def Halt(self, request, context):  # type: ignore[no-untyped-def]
        await self._control.halt(request.reason or "manual halt", request.requested_by, request.flatten_positions)
        return self._control.status(request.request_id)

    async def Resume(self, request, context):  # type: ignore[no-untyped-def]
        try:
            await self._control.resume(request.requested_by, request.reason)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return self._control.status(request.request_id)

    async def Configure(self, request, context):  # type: ignore[no-untyped-def]
        try:
            settings = json.loads(request.settings_json or "{}")
            await self._control.configure(request.generation, settings, request.requested_by)
        except (ValueError, KeyError, TypeError, RecursionError, ArithmeticError) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"configuration refused: {type(exc).__name__}: "
                                                                  f"{str(exc)[:200]}")
        return self._control.status(request.request_id)

    async def Drain(self, request, context):  # type: ignore[no-untyped-def]
        await self._control.drain()
        return self._control.status(request.request_id)


def registrar(control: ComponentControl) -> Callable[[grpc.aio.Server], None]:
    def register(server: grpc.aio.Server) -> None:
        control_pb2_grpc.add_ControlServicer_to_server(ControlServicer(control), server)
    return register
