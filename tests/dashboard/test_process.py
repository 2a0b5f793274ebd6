"""The dashboard as its own process (`python -m celeris dashboard run`, a pod) answers gRPC health and
Control like every component: a pod's probes ask exactly that."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from celeris.api.v1 import control_pb2, control_pb2_grpc
from tests.support.servers import free_port
from tests.support.waits import until


async def test_the_dashboard_process_serves_health_and_control_and_stops_on_sigterm():
    grpc_port, http_port = free_port(), free_port()
    env = {**os.environ, "CELERIS_TOKEN": "dashboard-test-token"}
    proc = subprocess.Popen([sys.executable, "-m", "celeris", "dashboard", "run", "--set", f"grpc_port={grpc_port}",
                             "--set", f"http_port={http_port}", "--set", "log_level=WARNING"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            health = await until(lambda: health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                                                 timeout=1))
            assert health is not None and health.status == health_pb2.HealthCheckResponse.SERVING
            status = await control_pb2_grpc.ControlStub(channel).GetStatus(control_pb2.GetStatusRequest(), timeout=2)
            assert status.component == "dashboard" and status.details["http_port"] == str(http_port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
