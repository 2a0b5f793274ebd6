"""The account monitor's Halter made real over gRPC: the risk manager's emergency stop, or execution's
Control service when no risk manager runs (with the Control token when there is one). The account engine
depends on the Halter protocol alone.
"""

from __future__ import annotations

from celeris.api.v1 import control_pb2, control_pb2_grpc, risk_pb2, risk_pb2_grpc
from celeris.runtime import control_auth, grpc_server

RISK_STOP_TIMEOUT_S = 35
"""The risk manager's stop waits up to 30 s for execution to flatten, plus the round trip."""
EXECUTION_HALT_TIMEOUT_S = 10


class GrpcHalter:
    """Halts trading through the risk manager's emergency stop, or execution's Control when there is none."""

    def __init__(self, risk_target: str = "", execution_target: str = "", token: str = "") -> None:
        self.risk_target = risk_target
        self.execution_target = execution_target
        self._metadata = control_auth.control_metadata(token)

    async def halt(self, reason: str) -> None:
        if self.risk_target:
            async with grpc_server.insecure_channel(self.risk_target) as channel:
                await risk_pb2_grpc.RiskManagerStub(channel).TriggerEmergencyStop(
                    risk_pb2.EmergencyStopRequest(reason=reason, triggered_by="account-monitor"),
                    timeout=RISK_STOP_TIMEOUT_S)
        elif self.execution_target:
            async with grpc_server.insecure_channel(self.execution_target) as channel:
                await control_pb2_grpc.ControlStub(channel).Halt(
                    control_pb2.HaltRequest(reason=reason, requested_by="account-monitor"),
                    timeout=EXECUTION_HALT_TIMEOUT_S, metadata=self._metadata)
