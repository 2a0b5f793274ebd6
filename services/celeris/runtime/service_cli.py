"""The shell every service command shares: `celeris <service> run --set key=value`.

Owns adding the command to the CLI, reading and validating the settings once, setting up logs and
uvloop, and running the service's `serve(settings)` coroutine (celeris.assembly.service builds it).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, Awaitable, Callable

from celeris.runtime.settings import ServiceSettings


def add_service_command(sub: Any, name: str, help_text: str, settings_cls: type[ServiceSettings],
                        serve: Callable[[Any], Awaitable[None]]) -> argparse.ArgumentParser:
    """`celeris NAME run [--set KEY=VALUE ...]`; returns the NAME parser so callers can add actions."""
    parser = sub.add_parser(name, help=help_text)
    actions = parser.add_subparsers(dest=f"{name}_action", metavar="ACTION")
    run = actions.add_parser("run", help="run the service")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    run.set_defaults(func=lambda args: run_service(settings_cls, serve, args.overrides))
    parser.set_defaults(func=lambda args: (parser.print_help(), 0)[1])
    parser.actions = actions  # type: ignore[attr-defined]
    return parser


def run_service(settings_cls: type[ServiceSettings], serve: Callable[[Any], Awaitable[None]],
                overrides: list[str]) -> int:
    from celeris.runtime import grpc_server, logs
    from celeris.runtime.settings import load_settings, parse_overrides

    settings = load_settings(settings_cls, parse_overrides(overrides))
    logs.setup(settings.component, settings.log_level, settings.log_format)
    grpc_server.install_uvloop()
    asyncio.run(serve(settings))
    return 0
