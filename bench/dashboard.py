#!/usr/bin/env python3
"""Dashboard benchmark: staleness at 100 web or terminal clients over real WebSockets, steady and in a burst.

A source changes the state at a steady rate (default 400 changes/s: book-like values with 10 levels on 8
market paths), then in a burst (10,000 changes/s for 1 s); N web clients (MessagePack) and, in their own
scenario, N terminal clients (JSON) read over real WebSockets on 127.0.0.1. The clients run in a child
process, as browsers are not in the server's process; they timestamp each frame as it is read from the
socket and decode after the run, so that one process can stand in for 100 browsers (each with a core of
its own) without its own decoding delaying what it measures. The baseline in the same run is one web client.

Staleness is measured by the benchmark, not taken from the server: the source logs the time of every
change, each value carries its change's number, and when a client receives a path's value it has every
change of that path up to that number: each of those is one sample (arrival - change time), so a change
overwritten before it was sent counts from when it happened, not from its successor. `push_p99` is the
same from the server's `source_ts` (the first change the client had not seen: the worst change in each
push). Figures are medians of `--runs` runs with their min-max; the target is p99 <= 50 ms. The server
pushes on change, coalesced (at most one push per 20 ms per client), so a steady stream of changes
reaches a client within the interval plus the write, and a burst does not multiply the pushes.
`--json` prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

import msgspec  # noqa: E402

from celeris.dashboard.server import DashboardConfig, DashboardServer  # noqa: E402
from celeris.dashboard.state import DashboardState  # noqa: E402
from celeris.domain.stats import percentile  # noqa: E402

PATHS = 8
BURST_RATE = 10_000
BURST_S = 1.0


class FrameReader(asyncio.Protocol):
    """A WebSocket client that only timestamps frames as they are read from the socket.

    Decoding waits until the run is over, so that one process can stand in for 100 browsers (each of which
    has a core of its own) without its own decoding delaying the arrivals it measures.
    """

    def __init__(self, port: int, kind: str) -> None:
        self.request = (f"GET /ws?token=bench&client={kind}&format={'msgpack' if kind == 'web' else 'json'} "
                        f"HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        self.buf = bytearray()
        self.upgraded = False
        self.frames: list[tuple[int, bytes]] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        arrived_ns = time.time_ns()
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            assert buf.startswith(b"HTTP/1.1 101"), bytes(buf[:80])
            del buf[: end + 4]
            self.upgraded = True
        while len(buf) >= 2:
            length, pos = buf[1] & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, pos = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, pos = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < pos + length:
                return
            opcode, payload = buf[0] & 0x0F, bytes(buf[pos: pos + length])
            del buf[: pos + length]
            if opcode in (1, 2):
                self.frames.append((arrived_ns, payload))
            elif opcode == 9 and self.transport is not None and length < 126:  # ping: a masked pong
                self.transport.write(bytes([0x8A, 0x80 | length]) + b"\0\0\0\0" + payload)


async def clients_process(port: int, clients: int, kind: str) -> None:
    """The clients' side (its own process, as browsers are): connect, say "ready", record arrivals until "stop".

    Prints one JSON array: per update, [client, arrival time (ns), the server's source_ts (ms), {path: n}].
    """
    loop = asyncio.get_running_loop()
    readers = []
    for _ in range(clients):
        _, reader = await loop.create_connection(lambda: FrameReader(port, kind), "127.0.0.1", port)
        readers.append(reader)
    while not all(r.frames for r in readers):  # each one has its snapshot
        await asyncio.sleep(0.01)
    for r in readers:
        r.frames.clear()
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    decode = msgspec.msgpack.Decoder().decode if kind == "web" else msgspec.json.Decoder().decode
    arrivals: list[list[object]] = []
    for i, r in enumerate(readers):
        r.transport.close()  # type: ignore[union-attr]
        for arrived_ns, payload in r.frames:
            data = decode(payload)
            if data["type"] == "update":
                arrivals.append([i, arrived_ns, data["source_ts"],
                                 {p: v["n"] for p, v in data["changes"].items() if p.startswith("markets.")}])
    print(json.dumps(arrivals), flush=True)


async def scenario(clients: int, kind: str, rate: float, duration: float) -> dict[str, float]:
    """One server, `clients` clients of `kind` (in a child process), `rate` changes/s for `duration` s."""
    state = DashboardState()
    server = DashboardServer(state, None, DashboardConfig(token="bench", max_clients=clients + 5))
    port = await server.start("127.0.0.1", 0)
    change_ns: dict[str, list[int]] = {f"markets.S{p}": [] for p in range(PATHS)}

    async def source() -> float:
        """`rate` changes a second, on schedule however the loop is late; returns the rate achieved."""
        done = 0
        begin = time.monotonic()
        while (elapsed := time.monotonic() - begin) < duration:
            due = int(rate * elapsed) + 1
            while done < due:
                path = f"markets.S{done % PATHS}"
                log = change_ns[path]
                n = len(log)
                log.append(time.time_ns())
                state.set(path, {"n": n, "mid": str(done), "bids": [[str(done), "1.000"]] * 10,
                                 "asks": [[str(done + 1), "1.000"]] * 10}, log[-1])
                done += 1
            await asyncio.sleep(0.001)
        return done / (time.monotonic() - begin)

    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--clients-process", str(port), "--clients", str(clients), "--kind", kind,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 28)
    assert child.stdin is not None and child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), 60)  # everyone connected and past the snapshot
    assert line.strip() == b"ready", line
    pushes_before = getattr(server, "push_count", 0)  # (a server older than pushes has no count)
    achieved = await source()
    await asyncio.sleep(0.3)  # the last push reaches the clients
    child.stdin.write(b"stop\n")
    await child.stdin.drain()
    arrivals = json.loads(await child.stdout.readline())
    await child.wait()
    pushes = getattr(server, "push_count", 0) - pushes_before
    await server.stop()

    # Every change a client now has (this value, or an earlier one of the path that it replaced) is one sample.
    samples: list[float] = []
    push_samples: list[float] = []
    seen: dict[tuple[int, str], int] = {}
    for i, arrived_ns, source_ts, paths in arrivals:
        push_samples.append(arrived_ns / 1e6 - source_ts)
        for path, n in paths.items():
            log = change_ns[path]
            first = seen.get((i, path), -1) + 1
            samples.extend((arrived_ns - log[k]) / 1e6 for k in range(first, n + 1))
            seen[(i, path)] = max(n, first - 1)

    def pct(values: list[float], q: float) -> float:
        return float(percentile(values, q) or 0)
    return {"p50_ms": pct(samples, 0.5), "p99_ms": pct(samples, 0.99), "max_ms": max(samples, default=0.0),
            "push_p99_ms": pct(push_samples, 0.99), "samples": len(samples),
            "updates_per_client_per_s": len(arrivals) / clients / duration, "pushes_per_s": pushes / duration,
            "changes_per_s": achieved}


def summary(runs: list[dict[str, float]], prefix: str) -> dict[str, float]:
    """Median over runs of each figure, with min and max for the staleness ones."""
    out: dict[str, float] = {}
    for key, name in (("p50_ms", "p50_staleness_ms"), ("p99_ms", "p99_staleness_ms"),
                      ("push_p99_ms", "push_p99_staleness_ms"), ("max_ms", "max_staleness_ms")):
        values = [r[key] for r in runs]
        out[f"{prefix}_{name}"] = round(statistics.median(values), 1)
        out[f"{prefix}_{name}_min"] = round(min(values), 1)
        out[f"{prefix}_{name}_max"] = round(max(values), 1)
    out[f"{prefix}_updates_per_client_per_s"] = round(statistics.median(r["updates_per_client_per_s"] for r in runs), 1)
    out[f"{prefix}_changes_per_s"] = round(statistics.median(r["changes_per_s"] for r in runs))
    out[f"{prefix}_samples_per_run_min"] = min(int(r["samples"]) for r in runs)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of steady changes per scenario")
    parser.add_argument("--rate", type=float, default=400.0, help="steady changes per second")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clients-process", type=int, default=0, help=argparse.SUPPRESS)  # the child: a port
    parser.add_argument("--kind", default="web", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.clients_process:
        asyncio.run(clients_process(args.clients_process, args.clients, args.kind))
        return 0
    runs: dict[str, list[dict[str, float]]] = {"web": [], "tui": [], "baseline": [], "burst": []}
    for _ in range(args.runs):
        runs["web"].append(asyncio.run(scenario(args.clients, "web", args.rate, args.duration)))
        runs["tui"].append(asyncio.run(scenario(args.clients, "tui", args.rate, args.duration)))
        runs["baseline"].append(asyncio.run(scenario(1, "web", args.rate, args.duration)))
        runs["burst"].append(asyncio.run(scenario(args.clients, "web", BURST_RATE, BURST_S)))
    out: dict[str, object] = {"benchmark": "dashboard", "clients": args.clients, "runs": args.runs,
                              "steady_offered_changes_per_s": args.rate, "burst_offered_changes_per_s": BURST_RATE,
                              "duration_s": args.duration}
    for name, results in runs.items():
        out.update(summary(results, name))
    out["burst_pushes_per_s"] = round(statistics.median(r["pushes_per_s"] for r in runs["burst"]), 1)
    out["push_interval_ms"] = getattr(DashboardConfig(), "push_interval_ms", 0)
    out["target_p99_ms"] = 50
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"dashboard: {args.clients} clients, {args.rate:.0f} changes/s for {args.duration:.1f} s and a burst of "
          f"{BURST_RATE:,}/s for {BURST_S:.0f} s; median of {args.runs} runs (min-max)")
    print(f"{'':22} {'changes/s':>9} {'updates/s/client':>16} {'p50 ms':>16} {'p99 ms':>18} {'push p99 ms':>18}")
    for name, label in (("web", "web (msgpack)"), ("tui", "terminal (json)"), ("baseline", "one web client"),
                        ("burst", "burst, web")):
        def fig(key: str) -> str:
            return f"{out[f'{name}_{key}']} ({out[f'{name}_{key}_min']}-{out[f'{name}_{key}_max']})"
        print(f"{label:22} {out[f'{name}_changes_per_s']:>9} {out[f'{name}_updates_per_client_per_s']:>16} "
              f"{fig('p50_staleness_ms'):>16} {fig('p99_staleness_ms'):>18} {fig('push_p99_staleness_ms'):>18}")
    print(f"target p99 <= 50 ms; pushes at most every {out['push_interval_ms']} ms "
          f"(burst: {out['burst_pushes_per_s']} pushes/s); fewest samples in a run: "
          f"{min(out[f'{n}_samples_per_run_min'] for n in runs)}")  # type: ignore[type-var]
    return 0


if __name__ == "__main__":
    sys.exit(main())
