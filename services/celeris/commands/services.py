"""`celeris <component> run`: one component as its own process (a service, a Kubernetes pod).

Parses arguments only: the settings class comes from the plan, the process is built and served by
celeris.assembly.service with the same builder `celeris up` uses. `celeris marketdata verify-capture`
checks a capture with market data's sync code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from celeris.assembly.plan import SETTINGS
from celeris.runtime.service_cli import add_service_command

HELP = {
    "marketdata": "market data service: synchronized books, trades and mark prices",
    "execution": "execution service: validated, idempotent order entry",
    "strategy": "strategy engine: strategies -> signals -> orders",
    "risk": "risk manager: pre-trade checks, policies, the emergency stop",
    "account": "account monitor: balances, positions, PnL, reconciliation, alerts",
    "dashboard": "dashboard server for the services topology (web + terminal clients)",
}


def register(sub: Any) -> None:
    for name, help_text in HELP.items():
        parser = add_service_command(sub, name, help_text, SETTINGS[name], _serve(name))
        if name == "marketdata":
            verify = parser.actions.add_parser("verify-capture", help="replay a capture through the sync code; print JSON")
            verify.add_argument("file", type=Path)
            verify.add_argument("--symbol", default="BTCUSDT")
            verify.set_defaults(func=cmd_verify)
        if name == "risk":
            from celeris.commands import killswitch

            killswitch.register(sub)


def _serve(name: str) -> Any:
    async def serve(settings: Any) -> None:
        if name == "dashboard":
            from celeris.assembly.dashboard import serve_dashboard

            await serve_dashboard(settings)
            return
        from celeris.assembly.service import serve as serve_component

        await serve_component(name, settings)
    return serve


def cmd_verify(args: argparse.Namespace) -> int:
    from celeris.marketdata.verify import verify_capture

    if not args.file.exists():
        print(f"error: {args.file} does not exist", file=sys.stderr)
        return 2
    result = verify_capture(args.file, args.symbol)
    print(json.dumps(result))
    return 0 if result["ok"] else 1
