"""`celeris replay FILE`: the first version of `celeris backtest`, kept for its users.

The same backtest (celeris.assembly.backtest: the strategies over a capture on its own clock, the paper
venue's fill model and funding) with the same flags as `celeris backtest`, reported as replay always
did: one flat JSON object (net PnL = realized - fees + funding + unrealized); `--plot FILE.png` draws the
PnL and drawdown curves into that one file. Deterministic: the same file gives the same result.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    from celeris.commands import backtest

    p = sub.add_parser("replay", help="run the strategies over a recorded capture (see also: celeris backtest)")
    backtest.add_arguments(p)
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="write the PnL and drawdown curves to this PNG")
    p.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    from celeris.commands import backtest

    return backtest.cmd_backtest(args, legacy=True)


def legacy_report(result: dict[str, Any], plot: Path | None = None) -> dict[str, Any]:
    """replay's flat object from a backtest's result; with `plot`, the curves drawn to that PNG."""
    pnl = result["pnl"]
    out = {"file": result["file"], "symbol": result["symbol"], "messages": result["messages"],
           "capture_seconds": round(result["capture_seconds"], 1), "signals": result["signals"],
           "orders": result["orders"], "rejected": result["orders_refused"], "fills": result["fills"],
           "position": result["position"], "realized_pnl": pnl["realized_usdt"],
           "unrealized_pnl": pnl["unrealized_usdt"], "fees": pnl["fees_usdt"], "funding": pnl["funding_usdt"],
           "funding_payments": pnl["funding_payments"], "net_pnl": pnl["net_usdt"], "gaps": result["gaps"]}
    if plot is not None:
        from celeris.commands import backtest_report

        backtest_report.figure(plot, result)
        out["plot"] = str(plot)
    return out


async def replay(path: Path, symbol: str = "", strategies: list[dict[str, Any]] | None = None,
                 plot: Path | None = None) -> dict[str, Any]:
    """The replay of `path` (its symbol is the capture's; `symbol` is kept for old callers)."""
    from celeris.assembly.backtest import BacktestSettings, run_backtest
    from celeris.commands.up import default_strategies
    from celeris.marketdata import capture

    if strategies is None:
        strategies = default_strategies([capture.inspect(path).symbol])
    settings = BacktestSettings(strategies=tuple(strategies))
    return legacy_report(await run_backtest(path, settings), plot)
