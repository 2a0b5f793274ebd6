"""The contracts: generated code is fresh, decimals are exact, every request has a request_id."""

import re
import subprocess
import sys
from pathlib import Path

from google.protobuf import descriptor

from celeris.api.v1 import (account_pb2, common_pb2, control_pb2, dashboard_pb2, execution_pb2, marketdata_pb2,
                            risk_pb2, strategy_pb2)

ROOT = Path(__file__).resolve().parents[2]
MODULES = [account_pb2, control_pb2, dashboard_pb2, execution_pb2, marketdata_pb2, risk_pb2, strategy_pb2]


def test_generated_code_is_not_stale():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-proto"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_floating_point_money():
    """double/float appear only where the value is not money (a signal's strength)."""
    allowed = {("Signal", "strength")}
    for module in MODULES + [common_pb2]:
        for message in module.DESCRIPTOR.message_types_by_name.values():
            for field in message.fields:
                if field.type in (descriptor.FieldDescriptor.TYPE_DOUBLE, descriptor.FieldDescriptor.TYPE_FLOAT):
                    assert (message.name, field.name) in allowed, f"{message.name}.{field.name} is floating point"


def test_every_rpc_request_carries_a_request_id_and_streams_carry_sequences():
    for module in MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                assert "request_id" in method.input_type.fields_by_name, f"{service.name}.{method.name}"
                if method.server_streaming:
                    out = method.output_type.fields_by_name
                    assert "header" in out and out["header"].message_type.name == "StreamHeader", method.name


def test_timestamps_are_integer_nanoseconds():
    for module in MODULES + [common_pb2]:
        for message in module.DESCRIPTOR.message_types_by_name.values():
            for field in message.fields:
                if re.match(r"ts_|.*_at_ns$", field.name):
                    assert field.name.endswith("_ns"), f"{message.name}.{field.name}"
                    assert field.type == descriptor.FieldDescriptor.TYPE_INT64


def test_every_component_has_a_service_and_control_is_shared():
    names = {s for m in MODULES for s in m.DESCRIPTOR.services_by_name}
    assert names >= {"MarketData", "Execution", "StrategyEngine", "RiskManager", "AccountMonitor",
                     "DashboardState", "Control"}
    control = control_pb2.DESCRIPTOR.services_by_name["Control"]
    assert {m.name for m in control.methods} == {"GetStatus", "SetMode", "Halt", "Resume", "Drain", "Configure"}
