"""The kill switch: `celeris halt` and `celeris resume`, as lean as a command can be.

Owns the two commands a person types when something is wrong. They import only argparse, gRPC and the
risk manager's messages (not the rest of the CLI), so the request reaches the risk manager a fraction of
a second after Enter. Exit codes: 0 done, 1 the call failed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

DEFAULT_TARGET = "127.0.0.1:50054"


def register(sub: Any) -> None:
    halt = sub.add_parser("halt", help="EMERGENCY STOP: cancel everything, flatten, disable trading")
    halt.add_argument("--target", default=DEFAULT_TARGET, help="the risk manager's gRPC host:port")
    halt.add_argument("--reason", required=True)
    halt.add_argument("--by", required=True, help="who is stopping trading (recorded)")
    halt.add_argument("--no-flatten", action="store_true", help="cancel orders but keep positions")
    halt.set_defaults(func=cmd_halt)
    resume = sub.add_parser("resume", help="re-enable trading after an emergency stop (recorded)")
    resume.add_argument("--target", default=DEFAULT_TARGET)
    resume.add_argument("--by", required=True)
    resume.add_argument("--reason", default="")
    resume.add_argument("--token-file", default="", help="the Control token (else $CELERIS_CONTROL_TOKEN)")
    resume.set_defaults(func=cmd_resume)


def cmd_halt(args: argparse.Namespace) -> int:
    from celeris.api.v1 import risk_pb2

    return _call(args.target, "TriggerEmergencyStop", risk_pb2.EmergencyStopRequest(
        reason=args.reason, triggered_by=args.by, flatten_positions=not args.no_flatten))


def cmd_resume(args: argparse.Namespace) -> int:
    from celeris.api.v1 import risk_pb2

    from celeris.runtime.control_auth import read_token
    from celeris.runtime.settings import SettingsError

    try:
        token = read_token(args.token_file)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _call(args.target, "EnableTrading", risk_pb2.EnableTradingRequest(enabled_by=args.by, reason=args.reason),
                 token)


def _call(target: str, method: str, request: Any, token: str = "") -> int:
    import grpc
    from google.protobuf import json_format

    from celeris.api.v1 import risk_pb2_grpc
    from celeris.runtime.control_auth import control_metadata

    async def go() -> int:
        async with grpc.aio.insecure_channel(target) as channel:
            try:
                reply = await getattr(risk_pb2_grpc.RiskManagerStub(channel), method)(
                    request, timeout=60, metadata=control_metadata(token))
            except grpc.aio.AioRpcError as exc:
                print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
                return 1
        print(json_format.MessageToJson(reply, preserving_proto_field_name=True))
        return 0

    return asyncio.run(go())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="celeris")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))
