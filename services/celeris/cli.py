"""The `celeris` command: one entry point whose subcommands run and steer the components.

A shell: each subcommand parses its flags, builds settings or a client, makes one call into the core or
a service, and prints the result. Exit codes: 0 ok, 2 usage or settings error, 1 a failed call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, Sequence

from celeris import __version__


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting (repeatable); CELERIS_<KEY> environment variables also apply")


def cmd_version(_: argparse.Namespace) -> int:
    print(__version__)
    return 0


def _settings_class(component: str) -> Any:
    """Every component's settings class by component name (the plan's); '' = what every service takes."""
    from celeris.assembly.plan import SETTINGS
    from celeris.runtime import settings as settings_mod

    if not component:
        return settings_mod.ServiceSettings
    return SETTINGS[component]


def cmd_settings(args: argparse.Namespace) -> int:
    from celeris.runtime import settings as settings_mod

    cls = _settings_class(args.component)
    if args.all:
        print(settings_catalogue(args.component))
        return 0
    settings = settings_mod.load_settings(cls, settings_mod.parse_overrides(args.overrides))
    print(json.dumps(settings.redacted(), indent=2, default=str))
    return 0


def settings_catalogue(only: str = "") -> str:
    """Every setting: its key (for --set and CELERIS_<KEY>), default and what it is, by component."""
    from celeris.runtime import settings as settings_mod

    shared = settings_mod.ServiceSettings.model_fields
    lines = ["Every service takes these (--set key=value, or CELERIS_<KEY> in the environment):"]

    def describe(fields: dict[str, Any], names: list[str]) -> None:
        for name in names:
            field = fields[name]
            value = field.get_default(call_default_factory=True)
            default = "'' (a secret: never printed)" if type(value).__name__ == "SecretStr" else repr(value)
            text = " ".join((field.description or "").split())
            lines.append(f"  {name:26} default {default}")
            if text:
                lines.append(f"  {'':26} {text}")

    if not only:
        describe(shared, list(shared))
    from celeris.assembly.plan import SETTINGS

    for component in ([only] if only else SETTINGS):
        fields = _settings_class(component).model_fields
        extra = [n for n in fields if n not in shared or n == "component"]
        lines.append(f"\nceleris {component} run also takes:")
        describe(fields, [n for n in extra if n != "component"])
    return "\n".join(lines)


def cmd_control(args: argparse.Namespace) -> int:
    return asyncio.run(_control_call(args))


async def _control_call(args: argparse.Namespace) -> int:
    import grpc
    from google.protobuf import json_format

    from celeris.api.v1 import control_pb2, control_pb2_grpc
    from celeris.runtime import control_auth, grpc_server
    from celeris.runtime.control import MODE_TO_PB
    from celeris.domain.modes import Mode

    call = {"timeout": args.timeout, "metadata": control_auth.control_metadata(control_auth.read_token(args.token_file))}
    async with grpc_server.insecure_channel(args.target) as channel:
        stub = control_pb2_grpc.ControlStub(channel)
        try:
            if args.action == "status":
                reply = await stub.GetStatus(control_pb2.GetStatusRequest(), **call)
            elif args.action == "set-mode":
                reply = await stub.SetMode(control_pb2.SetModeRequest(
                    mode=MODE_TO_PB[Mode(args.mode)], requested_by=args.by, reason=args.reason), **call)
            elif args.action == "halt":
                reply = await stub.Halt(control_pb2.HaltRequest(
                    reason=args.reason, requested_by=args.by, flatten_positions=args.flatten), **call)
            elif args.action == "resume":
                reply = await stub.Resume(control_pb2.ResumeRequest(requested_by=args.by, reason=args.reason), **call)
            else:
                reply = await stub.Drain(control_pb2.DrainRequest(), **call)
        except grpc.aio.AioRpcError as exc:
            print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    print(json_format.MessageToJson(reply, preserving_proto_field_name=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="celeris",
        description="Celeris: high-frequency trading for Binance USD-M perpetual futures.",
    )
    parser.add_argument("--version", action="version", version=f"celeris {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=cmd_version)

    p = sub.add_parser("settings", help="print the effective settings (secrets redacted), or --all of them")
    _add_settings_flags(p)
    p.add_argument("--all", action="store_true", help="list every setting with its default and description")
    from celeris.assembly.plan import SETTINGS

    p.add_argument("--component", default="", choices=["", *SETTINGS],
                   help="a component's settings (its extra keys)")
    p.set_defaults(func=cmd_settings)

    p = sub.add_parser("control", help="pull a component's levers over gRPC (Control service)")
    p.add_argument("action", choices=["status", "set-mode", "halt", "resume", "drain"])
    p.add_argument("--target", default="127.0.0.1:50051", help="host:port of the component's gRPC server")
    p.add_argument("--mode", choices=["observation", "simulation", "live"], help="for set-mode")
    p.add_argument("--by", default="cli", help="who is asking (recorded)")
    p.add_argument("--reason", default="", help="why (recorded)")
    p.add_argument("--flatten", action="store_true", help="halt: also flatten positions")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds")
    p.add_argument("--token-file", default="",
                   help="a file holding the Control token (default: CELERIS_CONTROL_TOKEN; never on the command line)")
    p.set_defaults(func=cmd_control)

    _register_extra_commands(sub)
    return parser


def _register_extra_commands(sub: Any) -> None:
    """Every other command, imported explicitly (the import contracts see each one)."""
    from celeris.commands import backtest, bench, record, replay, services, sim, up
    from celeris.dashboard import tui

    for module in (sim, services, up, tui, bench, backtest, replay, record):
        module.register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("halt", "resume") and "-h" not in argv and "--help" not in argv:
        from celeris.commands import killswitch  # the kill switch does not wait for the whole CLI to load

        return killswitch.main(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    if args.command == "control" and args.action == "set-mode" and not args.mode:
        parser.error("set-mode needs --mode")
    from celeris.runtime.settings import SettingsError
    from celeris.venues.binance.errors import UnsupportedAccountMode, VenueError

    try:
        return int(args.func(args) or 0)
    except (SettingsError, UnsupportedAccountMode) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except VenueError as exc:  # at start: the venue unreachable or refusing us; one line, not a traceback
        print(f"error: the venue refused or did not answer at start: {exc} (check the venue URL settings, "
              f"e.g. CELERIS_VENUE_REST_URL, and the API key)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
