"""`celeris sim`: run the exchange simulator until interrupted.

Prints one JSON line first ({"rest_url", "ws_url", "ws_api_url", "port", "admin_url"}) so scripts can find it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("sim", help="run the Binance USD-M exchange simulator (REST + WebSocket)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--api-key", default=os.environ.get("CELERIS_SIM_API_KEY", ""),
                   help="the account's key (or CELERIS_SIM_API_KEY)")
    p.add_argument("--api-secret", default=os.environ.get("CELERIS_SIM_API_SECRET", ""),
                   help="its secret (better CELERIS_SIM_API_SECRET: a command line is visible to every user)")
    p.add_argument("--symbols", default="BTCUSDT,ETHUSDT", help="comma-separated USD-M symbols")
    p.add_argument("--seed", type=int, default=7, help="synthetic market seed (deterministic)")
    p.add_argument("--tick-ms", type=int, default=100, help="market step and stream flush interval")
    p.add_argument("--replay", type=Path, help="replay a capture (<recv_ns> <json> lines, gz) instead")
    p.add_argument("--ws-max-age-s", type=float, default=86_400, help="the venue's 24 h connection cap")
    p.add_argument("--funding-interval-s", type=float, default=8 * 3600)
    p.add_argument("--wallet-usdt", type=int, default=100_000)
    p.add_argument("--algo-only", "--algo-orders", dest="algo_only", action="store_true",
                   help="conditional types (STOP, STOP_MARKET, TAKE_PROFIT, TAKE_PROFIT_MARKET, "
                        "TRAILING_STOP_MARKET) only on the Algo Order API (POST /fapi/v1/algoOrder), answered -4120 "
                        "on /fapi/v1/order and /fapi/v1/batchOrders, as Binance does since 2025-12-09; by default "
                        "both endpoints take them, for older clients")
    p.add_argument("--latency-probe", action="store_true",
                   help="the market moves only in probe steps (POST /_sim/probe): wire-to-wire tick-to-order "
                        "measured here; see celeris.exchange_sim.probe")
    p.add_argument("--orders-per-10s", type=int, default=300,
                   help="the account's new-order count limit per 10 s (the venue's is 300)")
    p.add_argument("--load-depth-rate", type=int, default=0, metavar="N",
                   help="load mode: N depth events per second for every symbol on @depth@0ms (one level "
                        "changed each), besides the normal market; for bench/load.py")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from celeris.exchange_sim.server import SimVenue, start
    from celeris.runtime.clock import SystemClock
    from celeris.runtime.grpc_server import install_uvloop

    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    if not args.api_key or not args.api_secret:
        print("error: the account needs --api-key and --api-secret (or CELERIS_SIM_API_KEY/_SECRET)", file=sys.stderr)
        return 2
    try:
        venue = SimVenue(symbols=symbols, api_key=args.api_key, api_secret=args.api_secret, clock=SystemClock(),
                         seed=args.seed, tick_ms=args.tick_ms, replay=args.replay, ws_max_age_s=args.ws_max_age_s,
                         funding_interval_s=args.funding_interval_s, wallet_usdt=args.wallet_usdt,
                         reject_legacy_conditional=args.algo_only,
                         latency_probe=args.latency_probe, orders_per_10s=args.orders_per_10s,
                         load_depth_per_s=args.load_depth_rate)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        runner, port = await start(venue, args.host, args.port)
        base = f"{args.host}:{port}"
        print(json.dumps({"rest_url": f"http://{base}", "ws_url": f"ws://{base}",
                          "ws_api_url": f"ws://{base}/ws-fapi/v1", "port": port,
                          "admin_url": f"http://{base}/_sim"}), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    install_uvloop()
    asyncio.run(main())
    return 0
