#!/usr/bin/env python3
"""Dashboard benchmark: 100 web clients on one server; delivered update rate and staleness.

A source changes the state about 200 times a second (book-like values on 4 paths) for the duration; N web
clients (250 ms cadence, MessagePack) and, separately, N terminal clients (100 ms) read over real
WebSockets on 127.0.0.1. Staleness is the time from a value's change at the source to its arrival at a
client (`source_ts` carried by every update: the change time of the oldest value in it). The baseline in
the same run is a single client. `--json` prints one JSON object. The target is p99 <= 50 ms; a client's
own cadence (250 ms web, 100 ms terminal) bounds what it can reach, so the excess over it is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

import aiohttp  # noqa: E402
import msgspec  # noqa: E402

from celeris.dashboard.server import DashboardConfig, DashboardServer  # noqa: E402
from celeris.dashboard.state import DashboardState  # noqa: E402
from celeris.domain.stats import percentile  # noqa: E402


async def scenario(clients: int, kind: str, duration: float) -> dict[str, float]:
    state = DashboardState()
    server = DashboardServer(state, None, DashboardConfig(token="bench", max_clients=clients + 5))
    port = await server.start("127.0.0.1", 0)
    staleness: list[float] = []
    received = [0] * clients
    decoder = msgspec.msgpack.Decoder()
    stop = asyncio.Event()

    async def client(i: int, session: aiohttp.ClientSession) -> None:
        async with session.ws_connect(f"ws://127.0.0.1:{port}/ws?token=bench&client={kind}") as ws:
            while not stop.is_set():
                try:
                    msg = await ws.receive(timeout=0.5)
                except asyncio.TimeoutError:
                    continue
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                data = decoder.decode(msg.data)
                if data["type"] == "update" and data["source_ts"]:
                    staleness.append(time.time() * 1000 - data["source_ts"])
                    received[i] += 1

    async def source() -> None:
        i = 0
        end = time.monotonic() + duration
        while time.monotonic() < end:
            i += 1
            state.set(f"markets.S{i % 4}", {"mid": str(i), "bids": [[str(i), "1.0"]] * 10}, time.time_ns())
            await asyncio.sleep(0.005)
        stop.set()

    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.create_task(client(i, session)) for i in range(clients)]
        await asyncio.sleep(0.5)  # everyone connected and past the snapshot
        await source()
        await asyncio.gather(*tasks)
    await server.stop()
    def pct(q: float) -> float:
        return float(percentile(staleness, q) or 0)
    return {"clients": clients, "updates_per_client_per_s": sum(received) / clients / duration,
            "p50_ms": pct(0.5), "p99_ms": pct(0.99)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    web = asyncio.run(scenario(args.clients, "web", args.duration))
    tui = asyncio.run(scenario(args.clients, "tui", args.duration))
    base = asyncio.run(scenario(1, "web", args.duration))
    out = {"benchmark": "dashboard", "clients": args.clients,
           "web_updates_per_client_per_s": round(web["updates_per_client_per_s"], 2),
           "web_p50_staleness_ms": round(web["p50_ms"], 1), "web_p99_staleness_ms": round(web["p99_ms"], 1),
           "tui_updates_per_client_per_s": round(tui["updates_per_client_per_s"], 2),
           "tui_p50_staleness_ms": round(tui["p50_ms"], 1), "tui_p99_staleness_ms": round(tui["p99_ms"], 1),
           "baseline_p50_staleness_ms": round(base["p50_ms"], 1), "baseline_p99_staleness_ms": round(base["p99_ms"], 1),
           "web_p99_beyond_cadence_ms": round(max(0.0, web["p99_ms"] - 250), 1),
           "tui_p99_beyond_cadence_ms": round(max(0.0, tui["p99_ms"] - 100), 1), "target_p99_ms": 50}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"dashboard: {args.clients} clients per run, ~200 source changes/s, {args.duration:.0f} s")
        print(f"{'':18} {'updates/s/client':>17} {'p50 ms':>8} {'p99 ms':>8}")
        print(f"{'web (250 ms)':18} {out['web_updates_per_client_per_s']:>17} {out['web_p50_staleness_ms']:>8} "
              f"{out['web_p99_staleness_ms']:>8}")
        print(f"{'terminal (100 ms)':18} {out['tui_updates_per_client_per_s']:>17} {out['tui_p50_staleness_ms']:>8} "
              f"{out['tui_p99_staleness_ms']:>8}")
        print(f"{'one web client':18} {'':>17} {out['baseline_p50_staleness_ms']:>8} {out['baseline_p99_staleness_ms']:>8}")
        print(f"p99 beyond the cadence: web {out['web_p99_beyond_cadence_ms']} ms, terminal "
              f"{out['tui_p99_beyond_cadence_ms']} ms (target 50 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
