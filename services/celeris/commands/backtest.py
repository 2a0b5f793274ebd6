"""`celeris backtest FILE`: strategies over a recorded capture on the event clock, with the figures a quant reads.

A shell over celeris.assembly.backtest: reads the flags (`-f SPEC` for the TradingSystem's strategies and
risk limits, `--strategy-dir` for plugin strategies, the paper venue's `--latency-ms`, `--queue-model` and
`--seed`), refuses a file that is not a capture or settings that cannot run in one line (exit 2), runs the
backtest and prints a short table, or one JSON object with `--json`; `--plot DIR` writes the report
(celeris.commands.backtest_report). `--sweep name=a,b,c` (repeatable) runs the grid of backtests in a local
process pool, or on a Dask cluster with `--scheduler ADDRESS`, and prints one table (or one JSON object with
a `rows` list). `celeris replay` is the same command with the report of its first version.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import sys
from pathlib import Path
from typing import Any

from celeris.assembly.backtest import MAX_LATENCY_MS

SWEEP_COLUMNS = ("orders", "orders_filtered", "strategy_errors", "fills", "pnl.net_usdt", "stats.sharpe", "stats.sortino", "stats.max_drawdown_usdt",
                 "stats.fill_ratio", "stats.maker_share", "stats.markouts.1s.mean_bps",
                 "stats.markouts.10s.mean_bps")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="a capture: `<recv ns> <raw JSON>` lines, gzip or text")
    p.add_argument("-f", "--file-spec", dest="spec", type=Path,
                   help="a TradingSystem YAML: its strategies[] run (and its risk limits apply)")
    p.add_argument("--strategy-dir", type=Path, help="load plugin strategies (.py files) from this directory")
    p.add_argument("--strategies", default="", help="JSON list of strategies (instead of the spec's or the defaults)")
    p.add_argument("--latency-ms", type=_non_negative(float, MAX_LATENCY_MS), default=0.0,
                   help="paper venue order latency on the event clock, ms (default 0)")
    p.add_argument("--latency-file", type=Path, default=None,
                   help="recorded order latencies for the paper venue to interpolate (instead of --latency-ms)")
    p.add_argument("--queue-model", default=None, help="paper venue queue model (default: the venue's)")
    p.add_argument("--seed", type=_non_negative(int), default=0, help="random seed of the paper venue (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--sweep", action="append", default=[], metavar="NAME=A,B,C",
                   help="a grid axis (repeatable): latency_ms, queue_model, seed, order_size, or a strategy "
                        "parameter (PARAM for every strategy, STRATEGY.PARAM for one)")
    p.add_argument("--scheduler", default="", metavar="ADDRESS", help="run the sweep on this Dask scheduler")
    p.add_argument("--workers", type=_non_negative(int), default=0,
                   help="sweep processes (default: one per CPU; 1 = in this process)")
    p.add_argument("--symbol", default="", help=argparse.SUPPRESS)  # replay's flag: the capture names it now


def register(sub: Any) -> None:
    p = sub.add_parser("backtest", help="backtest the strategies over a recorded capture (figures, report, sweeps)")
    add_arguments(p)
    p.add_argument("--plot", type=Path, metavar="DIR", help="write the report (PNG curves, report.md) here")
    p.set_defaults(func=cmd_backtest)


def _non_negative(kind: type, most: float | None = None) -> Any:
    def parse(text: str) -> Any:
        from celeris.assembly.backtest import BacktestError, _number

        try:
            return _number("the value", text, kind, most)
        except BacktestError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def settings_from(args: argparse.Namespace, symbol: str) -> Any:
    """The backtest's settings from the flags; raises SpecError / BacktestError (one line each)."""
    from celeris.assembly.backtest import BacktestError, BacktestSettings
    from celeris.commands.up import default_strategies

    strategies: tuple[dict[str, Any], ...] | None = None
    risk = spec = None
    if args.spec is not None:
        from celeris.config.spec import load_spec

        _, spec = load_spec(args.spec)
        strategies = tuple(s.engine_config() for s in spec.strategies)
        risk = spec.risk
    if args.strategies:
        from celeris.commands.up import parse_strategy_flag

        strategies = tuple(parse_strategy_flag(args.strategies))
    strategy_dir = args.strategy_dir
    if strategy_dir is None and args.spec is not None and spec.strategyDir:
        strategy_dir = args.spec.parent / spec.strategyDir  # relative to the spec file, as `celeris up` reads it
    if strategies is None:
        strategies = tuple(default_strategies([symbol]))
    if args.latency_file is not None and not args.latency_file.is_file():
        raise BacktestError(f"--latency-file {args.latency_file} is not a file")
    if args.latency_file is not None and args.latency_ms:
        raise BacktestError("--latency-ms and --latency-file both set the order latency: give one")
    return BacktestSettings(strategies=strategies, strategy_dir=strategy_dir, latency_ms=args.latency_ms,
                            queue_model=args.queue_model, seed=args.seed, risk=risk,
                            latency_file=args.latency_file)


def run_one(path: Path, settings: Any) -> dict[str, Any]:
    """One backtest; what a strategy prints goes to stderr (stdout is the command's report: its JSON)."""
    from celeris.assembly.backtest import run_backtest

    with contextlib.redirect_stdout(sys.stderr):
        return asyncio.run(run_backtest(path, settings))


def cmd_backtest(args: argparse.Namespace, legacy: bool = False) -> int:
    from celeris.assembly.backtest import BacktestError
    from celeris.config.spec import SpecError
    from celeris.marketdata import capture

    try:
        info = capture.inspect(args.file)
        settings = settings_from(args, info.symbol)
    except (capture.CaptureError, SpecError, BacktestError) as exc:
        return _fail(str(exc) if isinstance(exc, capture.CaptureError) or args.spec is None
                     else f"{args.spec}: {exc}")
    if args.symbol and args.symbol.upper() != info.symbol:
        return _fail(f"{args.file} is a capture of {info.symbol}, not {args.symbol.upper()}")
    from celeris.runtime import logs

    logs.setup("backtest", "ERROR", "text")
    if args.sweep:
        if getattr(args, "plot", None) is not None:
            return _fail("--plot draws one backtest: run the sweep's point you want to see without --sweep")
        return _sweep(args, info, settings)
    plot = getattr(args, "plot", None)
    if plot is not None:
        problem = _plot_problem(plot, legacy)
        if problem:
            return _fail(problem)
    try:
        result = run_one(args.file, settings)
    except (capture.CaptureError, BacktestError) as exc:
        return _fail(str(exc))
    if legacy:
        from celeris.commands.replay import legacy_report

        print(json.dumps(legacy_report(result, plot)))
        return 0
    if plot is not None:
        from celeris.commands import backtest_report

        result["report"] = [str(p) for p in backtest_report.write(plot, result)]
    print(json.dumps(result) if args.json else human(result))
    return 0


def _plot_problem(target: Path, one_file: bool = False) -> str:
    if one_file and target.is_dir():
        return f"--plot {target} is a directory: give the PNG file to write"
    if not one_file and target.exists() and not target.is_dir():
        return f"--plot {target} is a file: give a directory for the report"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "--plot needs matplotlib: pip install 'celeris[report]'"
    try:  # made now: a directory that cannot be is refused before the run, not after it
        (target.parent if one_file else target).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"--plot {target}: cannot create it ({exc.strerror or exc})"
    return ""


# -- sweeps ------------------------------------------------------------------------------------------
def sweep_point(path: str, settings: Any, point: dict[str, str]) -> dict[str, Any]:
    """One grid point (module level: pickled to the pool's or the cluster's workers); the result without
    its curve and timing, which make a sweep's rows long and not reproducible."""
    from celeris.assembly.backtest import VARYING_KEYS, with_point

    result = run_one(Path(path), with_point(settings, point))
    for key in ("curve", *VARYING_KEYS):
        result.pop(key, None)
    result["stats"].pop("definitions", None)
    return result


def _sweep(args: argparse.Namespace, info: Any, settings: Any) -> int:
    from celeris.assembly.backtest import BacktestError, check, with_point
    from celeris.commands import sweep

    try:
        points = sweep.parse_grid(args.sweep)
    except sweep.SweepError as exc:
        return _fail(str(exc))
    for point in points:  # every point checked before any runs: a value its strategy refuses is named now
        try:
            check(with_point(settings, point), info.symbol)
        except BacktestError as exc:
            where = ", ".join(f"{k}={v}" for k, v in point.items())
            return _fail(f"--sweep point {where}: {exc}")
    task = functools.partial(sweep_point, str(args.file.resolve()), settings)
    try:
        rows = sweep.run(task, points, workers=args.workers, scheduler=args.scheduler)
    except sweep.SweepError as exc:
        return _fail(str(exc))
    except OSError as exc:  # a scheduler that cannot be reached
        return _fail(f"the sweep could not run: {exc}")
    if args.json:
        print(json.dumps({"file": args.file.name, "symbol": info.symbol, "sweep": list(points[0]),
                          "columns": list(SWEEP_COLUMNS), "rows": rows}))
    else:
        print(sweep.table(rows, SWEEP_COLUMNS))
    return 0 if all("result" in r for r in rows) else 1


# -- the human report ----------------------------------------------------------------------------------
def human(r: dict[str, Any]) -> str:
    s, pnl = r["stats"], r["pnl"]

    def f(value: Any) -> str:
        return "-" if value is None else f"{value:,}" if isinstance(value, (int, float)) else str(value)

    lines = [
        f"{r['file']}  {r['symbol']}  {r['messages']:,} messages over {r['capture_seconds']:,} s"
        f"  ({f(r['messages_per_s'])} msg/s)",
        f"settings   latency {r['settings']['latency_ms']} ms, queue model {r['settings']['queue_model']}, "
        f"seed {r['settings']['seed']}" + (f"  (not taken by this paper venue: {', '.join(r['settings']['venue_ignored'])})"
                                           if r["settings"]["venue_ignored"] else ""),
        f"orders     {r['orders']:,} placed ({r['orders_refused']:,} refused by execution, "
        f"{r['orders_filtered']:,} filtered by the strategy filter), {r['fills']:,} fills, "
        f"fill ratio {f(s['fill_ratio'])}, maker share {f(s['maker_share'])}",
        f"PnL USDT   net {pnl['net_usdt']} = realized {pnl['realized_usdt']} - fees {pnl['fees_usdt']} "
        f"+ funding {pnl['funding_usdt']} + unrealized {pnl['unrealized_usdt']}",
        f"risk       Sharpe {f(s['sharpe'])}, Sortino {f(s['sortino'])} (annualised), max drawdown "
        f"{s['max_drawdown_usdt']} USDT, turnover {s['turnover_usdt']} USDT",
        "markouts   " + ", ".join(f"{h}: {f(m['mean_bps'])} bps ({m['fills']} fills)" for h, m in s["markouts"].items()),
        "",
        f"{'strategy':24} {'orders':>7} {'fills':>6} {'pnl USDT':>14} {'maker share':>12} {'fill ratio':>11} "
        f"{'markout 10s bps':>16}",
    ]
    for name, row in r["per_strategy"].items():
        lines.append(f"{name:24} {row['orders']:>7} {row['fills']:>6} {row['pnl_usdt']:>14} "
                     f"{f(row['maker_share']):>12} {f(row['fill_ratio']):>11} "
                     f"{f(row['markouts']['10s']['mean_bps']):>16}")
    lines.append("")
    if r["refusal_reasons"]:
        lines.append("refused    " + ", ".join(f"{k}: {v:,}" for k, v in r["refusal_reasons"].items()))
    if r["filter_reasons"]:
        lines.append("filtered   " + ", ".join(f"{k}: {v:,}" for k, v in r["filter_reasons"].items()))
    if r["strategy_errors"]:
        lines.append(f"errors     {r['strategy_errors']:,} strategy callback error(s) (logged)")
    for warning in r["warnings"]:
        lines.append(f"WARNING    {warning}")
    for name, reason in r["strategies_disabled"].items():
        lines.append(f"DISABLED   {name}: {reason}")
    if r["open_orders_at_end"]:
        lines.append(f"open at the end: {len(r['open_orders_at_end'])} order(s)")
        for o in r["open_orders_at_end"]:
            lines.append(f"  {o['strategy']:22} {o['side']:4} {o['open_qty']:>10} @ {f(o['price']):>12}  {o['client_order_id']}")
    else:
        lines.append("open at the end: none")
    for a in r.get("algos", []):
        lines.append(f"algo {a['algo_id']}: {a['kind']} {a['side']} {a['filled']}/{a['qty']} @ {f(a['average_price'])}, "
                     f"arrival {f(a['arrival_price'])}, slippage {f(a['slippage_bps'])} bps ({a['state']})")
    if r.get("report"):
        lines.append("report: " + ", ".join(r["report"]))
    return "\n".join(lines)
