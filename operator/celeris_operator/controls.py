"""The operator's gRPC client of the components' Control services: one channel per target, kept open,
and the TradingSystem's Control token on every call.

Translates between protobuf and the operator's own values (signals.Observed, modes): the rest of the
operator never sees a protobuf message. A component that cannot be reached is a fact (Observed with
reachable=False), not an error of the operator.
"""

from __future__ import annotations

import asyncio
from typing import Any

from celeris.domain.modes import Mode
from celeris_operator.signals import Observed

REQUESTED_BY = "celeris-operator"
STATUS_TIMEOUT_S = 2.0
LEVER_TIMEOUT_S = 5.0


class Controls:
    """Control RPCs to the components of every TradingSystem this operator runs."""

    def __init__(self) -> None:
        self._channels: dict[str, Any] = {}

    def _stub(self, target: str) -> Any:  # one Controls per event loop: a channel belongs to its loop
        from celeris.api.v1 import control_pb2_grpc
        from celeris.runtime import grpc_server

        channel = self._channels.get(target)
        if channel is None:
            channel = self._channels[target] = grpc_server.insecure_channel(target)
        return control_pb2_grpc.ControlStub(channel)

    async def _call(self, target: str, token: str, method: str, request: Any, timeout: float) -> Any:
        from celeris.runtime.control_auth import control_metadata

        return await getattr(self._stub(target), method)(request, timeout=timeout, metadata=control_metadata(token))

    async def status(self, component: str, target: str, token: str) -> Observed:
        from celeris.api.v1 import control_pb2
        from celeris.runtime.control import PB_TO_MODE

        try:
            s = await self._call(target, token, "GetStatus", control_pb2.GetStatusRequest(), STATUS_TIMEOUT_S)
        except Exception as exc:  # unreachable, refused, timed out: all the same to a gate
            return Observed(component, False, error=f"{type(exc).__name__}: {getattr(exc, 'details', lambda: '')() or exc}"[:300])
        return Observed(component, True, ready=s.ready and not s.draining, mode=PB_TO_MODE.get(s.mode),
                        halted=s.halted, halt_reason=s.halt_reason, config_generation=s.config_generation,
                        started_at_ns=s.started_at_ns, details=dict(s.details))

    async def statuses(self, targets: dict[str, str], token: str) -> dict[str, Observed]:
        seen = await asyncio.gather(*(self.status(c, t, token) for c, t in targets.items()))
        return {o.component: o for o in seen}

    async def set_mode(self, target: str, token: str, mode: Mode, reason: str) -> None:
        from celeris.api.v1 import control_pb2
        from celeris.runtime.control import MODE_TO_PB

        await self._call(target, token, "SetMode", control_pb2.SetModeRequest(
            mode=MODE_TO_PB[mode], requested_by=REQUESTED_BY, reason=reason), LEVER_TIMEOUT_S)

    async def halt(self, target: str, token: str, reason: str) -> None:
        from celeris.api.v1 import control_pb2

        await self._call(target, token, "Halt", control_pb2.HaltRequest(reason=reason, requested_by=REQUESTED_BY),
                         LEVER_TIMEOUT_S)

    async def resume(self, target: str, token: str, reason: str) -> None:
        from celeris.api.v1 import control_pb2

        await self._call(target, token, "Resume", control_pb2.ResumeRequest(requested_by=REQUESTED_BY, reason=reason),
                         LEVER_TIMEOUT_S)

    async def configure(self, target: str, token: str, generation: int, settings_json: str) -> None:
        from celeris.api.v1 import control_pb2

        await self._call(target, token, "Configure", control_pb2.ConfigureRequest(
            generation=generation, settings_json=settings_json, requested_by=REQUESTED_BY), LEVER_TIMEOUT_S)

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close()
