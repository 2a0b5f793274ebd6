#!/usr/bin/env python3
"""Backtest benchmark: messages per second of `celeris backtest` over the whole real capture, on one core.

The full capture (data/binance/hftbacktest_usdm_btcusdt_20240808.gz: 93,954 messages over 345 s — depth
diffs, bookTicker, trades and the REST snapshot) runs through the backtest engine as the command runs it
(celeris.assembly.backtest: market data core, strategy engine with the default momentum and market-making
strategies, execution in simulation mode, the paper venue), in this process, --runs times. The rate is the
loop's (the wall time from the first line to the last, decompression and parsing included; imports and the
report are not), the median of the runs with their min-max; `messages_per_cpu_s` divides by the process's
CPU time instead, the steadier figure on a machine shared with other work. A second figure, `messages_per_s_no_strategies`,
runs without strategies: what market data and the venue's book cost alone. Each run also checks that the
result is the same as the first run's (a benchmark that changed the answer would be measuring something else).
Target (issue 17): >= 50,000 messages/s on one core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "services"))

from celeris.assembly.backtest import VARYING_KEYS, BacktestSettings, run_backtest  # noqa: E402
from celeris.commands.up import default_strategies  # noqa: E402

FULL_CAPTURE = ROOT / "data" / "binance" / "hftbacktest_usdm_btcusdt_20240808.gz"
TARGET_MESSAGES_PER_S = 50_000


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(capture: Path, settings: BacktestSettings) -> dict:
    import logging

    logging.disable(logging.WARNING)  # as the command runs: errors only
    return asyncio.run(run_backtest(capture, settings))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=3, help="runs of each configuration; medians are reported")
    parser.add_argument("--capture", type=Path, default=FULL_CAPTURE, help="another capture to measure")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    with_strategies = BacktestSettings(strategies=tuple(default_strategies(["BTCUSDT"])), latency_ms=args.latency_ms)
    bare = BacktestSettings(strategies=(), latency_ms=args.latency_ms)
    rates, cpu_rates, bare_rates, walls = [], [], [], []
    reference = None
    messages = orders = fills = 0
    for _ in range(max(1, args.runs)):
        result = run(args.capture, with_strategies)
        rates.append(result["messages_per_s"])
        cpu_rates.append(result["timing"]["messages_per_cpu_s"])
        walls.append(result["timing"]["wall_s"])
        stable = {k: v for k, v in result.items() if k not in VARYING_KEYS}
        if reference is None:
            reference = stable
        elif stable != reference:
            print("error: two runs of the same backtest differ", file=sys.stderr)
            return 1
        messages, orders, fills = result["messages"], result["orders"], result["fills"]
        bare_rates.append(run(args.capture, bare)["messages_per_s"])
    rate, cpu_rate, bare_rate, wall = spread(rates), spread(cpu_rates), spread(bare_rates), spread(walls)
    out = {
        "capture": args.capture.name, "messages": messages, "orders": orders, "fills": fills, "runs": len(rates),
        "messages_per_s": round(rate["median"]), "messages_per_s_min": round(rate["min"]),
        "messages_per_s_max": round(rate["max"]),
        "messages_per_cpu_s": round(cpu_rate["median"]), "messages_per_cpu_s_min": round(cpu_rate["min"]),
        "messages_per_cpu_s_max": round(cpu_rate["max"]),
        "messages_per_s_no_strategies": round(bare_rate["median"]),
        "messages_per_s_no_strategies_min": round(bare_rate["min"]),
        "messages_per_s_no_strategies_max": round(bare_rate["max"]),
        "wall_s_median": round(wall["median"], 3), "latency_ms": args.latency_ms,
        "target_messages_per_s": TARGET_MESSAGES_PER_S,
    }
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"backtest of {out['capture']}: {messages:,} messages, {orders} orders, {fills} fills; "
          f"median of {out['runs']} runs (min-max), one core")
    print(f"  with the default strategies {out['messages_per_s']:>9,} msg/s ({out['messages_per_s_min']:,}-"
          f"{out['messages_per_s_max']:,})  [target >= {TARGET_MESSAGES_PER_S:,}"
          f"{'' if rate['median'] >= TARGET_MESSAGES_PER_S else '  MISSED'}]")
    print(f"  per CPU second (process)    {out['messages_per_cpu_s']:>9,} msg/s ({out['messages_per_cpu_s_min']:,}-"
          f"{out['messages_per_cpu_s_max']:,})  (the figure on a shared machine)")
    print(f"  without strategies          {out['messages_per_s_no_strategies']:>9,} msg/s "
          f"({out['messages_per_s_no_strategies_min']:,}-{out['messages_per_s_no_strategies_max']:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
