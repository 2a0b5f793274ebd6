"""Execution's Control service as the risk manager's emergency stop sees it: halt (and flatten), resume;
every call presents the Control token when there is one (celeris.runtime.control_auth)."""

from __future__ import annotations

from celeris.api.v1 import control_pb2, control_pb2_grpc
from celeris.runtime import control_auth, grpc_server


class ExecutionControlClient:
    def __init__(self, target: str, halt_timeout_s: float = 60.0, token: str = "") -> None:
        self.target = target
        self.halt_timeout_s = halt_timeout_s
        self._metadata = control_auth.control_metadata(token)

    async def halt(self, reason: str, flatten: bool, requested_by: str = "risk-manager") -> tuple[int, bool]:
        """(orders cancelled, flat afterwards) as execution reports them."""
        async with grpc_server.insecure_channel(self.target) as channel:
            status = await control_pb2_grpc.ControlStub(channel).Halt(control_pb2.HaltRequest(
                reason=reason, requested_by=requested_by, flatten_positions=flatten), timeout=self.halt_timeout_s,
                metadata=self._metadata)
        text = status.details.get("halt_canceled", "")
        return int(text) if text.isdigit() else 0, status.details.get("halt_flat", "true") == "true"

    async def resume(self, by: str) -> None:
        async with grpc_server.insecure_channel(self.target) as channel:
            await control_pb2_grpc.ControlStub(channel).Resume(
                control_pb2.ResumeRequest(requested_by=by, reason="trading re-enabled"), timeout=5,
                metadata=self._metadata)
