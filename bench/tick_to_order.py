"""Tick-to-order, wire to wire, measured from outside the process by the simulator.

Starts `celeris sim --latency-probe` and `celeris up` against it (in-process topology, then
`--topology services`), each a process of its own, once per order transport (`--order-transport`):
`rest` (POST /fapi/v1/order on a kept-alive connection) and `websocket` (order.place on the venue's
WebSocket API, `--venue-ws-api-url` = the simulator's `ws_api_url`), so both are measured in the same run. The simulator drives steps: it moves the book, writes
the depth frame, and waits for the new-order request the move triggers; a sample is
`order request received (headers parsed) - depth frame written`, both stamped by the simulator with one
clock (celeris.exchange_sim.probe has the details). A run is `--samples` such steps against the running
system (after `--warmup` steps); `--runs` runs per topology. The strategy is momentum over two updates
with a threshold below the probe's one-tick move, so every step is a signal; every order still goes
through the strategy filter, the risk check and execution's validation (limits loose enough, not off).

Baseline, in the same run: a bare aiohttp WebSocket client (this process, uvloop) that answers each depth
frame at once with a signed order, per transport (a POST /fapi/v1/order, or an order.place frame on the
WebSocket API) against the same simulator: the floor of a Python client on this machine.

Prints p50 / p99 / p999 per run and the median of the runs with min-max; `--json` prints one object
(units in the keys). Total time is bounded by `--budget-s` (runs not started past it are skipped and
said so).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any
from urllib.parse import urlencode

import aiohttp
from celeris.domain.stats import percentile

ROOT = Path(__file__).resolve().parents[1]
SYMBOL = "BTCUSDT"
KEY, SECRET = "probe-key", "probe-secret"
SIM_ORDERS_PER_10S = 1_000_000
CLIENT_ORDER_LIMITS = "900000,5400000"  # the simulator's limits at 90 %

SPEC = """apiVersion: celeris.dev/v1alpha1
kind: TradingSystem
metadata: {name: probe}
spec:
  venue: {kind: simulator}
  symbols: [BTCUSDT]
  mode: live
  strategies:
    - {name: mom-probe, type: momentum, symbol: BTCUSDT, orderSize: "0.002",
       params: {lookback: 2, threshold_bps: 0.01, cooldown: 0, max_hold_updates: 100000}}
  risk:
    maxPositionUsdt: "5000"
    maxTotalExposureUsdt: "10000"
    maxOpenOrdersPerSymbol: 50
    maxOrderNotionalUsdt: "1000"
    priceBandBps: 500
    maxDailyLossUsdt: "1000"
    maxOrdersPerSecond: 300
    maxLeverage: 20
"""


_CHILDREN: list[subprocess.Popen[str]] = []
"""Every simulator and `celeris up` this run started: killed on SIGTERM/SIGHUP or an unexpected exit too
(a killed benchmark must not leave a trading system and a venue running)."""


def _kill_children(*_: Any) -> None:
    for proc in _CHILDREN:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # `celeris up` runs in its own session: its children too
            except (ProcessLookupError, PermissionError):
                proc.kill()


def _on_signal(signum: int, _: Any) -> None:
    _kill_children()
    os._exit(128 + signum)


def _figures(samples_ns: list[int]) -> dict[str, Any]:
    def us(q: float) -> float | None:
        v = percentile(samples_ns, q)
        return None if v is None else round(v / 1000, 1)
    return {"count": len(samples_ns), "p50_us": us(0.5), "p99_us": us(0.99), "p999_us": us(0.999)}


def _summary(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {f"{name}_runs": runs, f"{name}_run_count": len(runs),
                           f"{name}_samples_per_run": [r["count"] for r in runs],
                           f"{name}_samples_total": sum(r["count"] for r in runs),
                           f"{name}_timeouts_total": sum(r.get("timeouts", 0) for r in runs)}
    for q in ("p50", "p99", "p999"):
        values = [r[f"{q}_us"] for r in runs if r.get(f"{q}_us") is not None]
        out[f"{name}_{q}_us_median"] = round(median(values), 1) if values else None
        out[f"{name}_{q}_us_min"] = min(values) if values else None
        out[f"{name}_{q}_us_max"] = max(values) if values else None
    return out


def start_sim(state: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    argv = [sys.executable, "-m", "celeris", "sim", "--port", "0", "--symbols", SYMBOL, "--latency-probe",
            "--orders-per-10s", str(SIM_ORDERS_PER_10S)]
    env = dict(os.environ, CELERIS_SIM_API_KEY=KEY, CELERIS_SIM_API_SECRET=SECRET)
    with open(state / "sim.log", "a") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=ROOT,
                                start_new_session=True)
    _CHILDREN.append(proc)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    if not line:
        raise RuntimeError(f"the simulator did not start: {(state / 'sim.log').read_text()[-500:]}")
    return proc, json.loads(line)


def start_up(topology: str, transport: str, sim: dict[str, Any], state: Path) -> subprocess.Popen[str]:
    spec = state / "probe.yaml"
    spec.write_text(SPEC)
    ws_api = sim["ws_api_url"] if transport == "websocket" else "off"
    argv = [sys.executable, "-m", "celeris", "up", "-f", str(spec), "--topology", topology, "--quiet",
            "--dashboard-port", "0", "--venue-rest-url", sim["rest_url"], "--venue-ws-url", sim["ws_url"],
            "--venue-ws-api-url", ws_api, "--venue-order-limits", CLIENT_ORDER_LIMITS,
            "--state-dir", str(state / f"up-{topology}-{transport}")]
    env = dict(os.environ, CELERIS_VENUE_API_KEY=KEY, CELERIS_VENUE_API_SECRET=SECRET)
    with open(state / f"up-{topology}-{transport}.log", "a") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, text=True, env=env, cwd=ROOT,
                                start_new_session=True)
    _CHILDREN.append(proc)
    return proc


def stop(proc: subprocess.Popen[str], timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def probe(session: aiohttp.ClientSession, sim: dict[str, Any], steps: int, warmup: int,
                timeout_ms: float, quiet_ms: float) -> dict[str, Any]:
    body = {"symbol": SYMBOL, "steps": steps, "warmup": warmup, "timeout_ms": timeout_ms, "quiet_ms": quiet_ms}
    async with session.post(f"{sim['admin_url']}/probe", json=body,
                            timeout=aiohttp.ClientTimeout(total=600)) as resp:
        if resp.status != 200:
            raise RuntimeError(f"probe: {resp.status} {await resp.text()}")
        return await resp.json()  # type: ignore[no-any-return]


async def wait_ready(session: aiohttp.ClientSession, sim: dict[str, Any], proc: subprocess.Popen[str],
                     deadline_s: float) -> None:
    """Steps until one triggers an order: the system is up, its book live and its strategy warm."""
    until = time.monotonic() + deadline_s
    while time.monotonic() < until:
        if proc.poll() is not None:
            raise RuntimeError(f"celeris up exited ({proc.returncode})")
        result = await probe(session, sim, 3, 3, 300, 2)
        if len(result["samples_ns"]) == 3:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"celeris up sent no order on probe steps within {deadline_s} s")


async def sim_stats(session: aiohttp.ClientSession, sim: dict[str, Any]) -> dict[str, int]:
    async with session.get(f"{sim['admin_url']}/state") as resp:
        return (await resp.json())["stats"]  # type: ignore[no-any-return]


class BareClient:
    """The baseline: answers each depth frame at once with a signed order (no book, no checks), as a POST
    or as an order.place frame on the WebSocket API (`transport`)."""

    def __init__(self, sim: dict[str, Any], session: aiohttp.ClientSession, transport: str = "rest") -> None:
        self.sim, self.session, self.transport = sim, session, transport
        self.price = ""
        self.task: asyncio.Task[None] | None = None
        self.sent = 0
        self.api: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with self.session.get(f"{self.sim['rest_url']}/fapi/v1/ticker/bookTicker",
                                    params={"symbol": SYMBOL}) as resp:
            bid = float((await resp.json())["bidPrice"])
        self.price = f"{bid - 10:.1f}"  # passive, well inside the price band
        ws = await self.session.ws_connect(f"{self.sim['ws_url']}/ws/{SYMBOL.lower()}@depth@100ms")
        if self.transport == "websocket":
            self.api = await self.session.ws_connect(self.sim["ws_api_url"], compress=0)
            self.reader = asyncio.create_task(self._drain(self.api))
        self.task = asyncio.create_task(self._run(ws))

    @staticmethod
    async def _drain(api: aiohttp.ClientWebSocketResponse) -> None:
        async for _ in api:  # the answers: read, not waited for (the next frame does not wait either)
            pass

    async def _run(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        url = f"{self.sim['rest_url']}/fapi/v1/order"
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            event = json.loads(msg.data)
            if event.get("e") != "depthUpdate":
                continue
            self.sent += 1
            params: dict[str, Any] = {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTX",
                                      "quantity": "0.002", "price": self.price,
                                      "timestamp": int(time.time() * 1000), "recvWindow": 5000}
            if self.api is not None:
                params["apiKey"] = KEY
                payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
                params["signature"] = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
                await self.api.send_str(json.dumps({"id": self.sent, "method": "order.place", "params": params}))
                continue
            query = urlencode(params)
            query += "&signature=" + hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
            async with self.session.post(f"{url}?{query}", headers={"X-MBX-APIKEY": KEY}) as resp:
                await resp.read()

    async def stop(self) -> None:
        for task in (self.task, self.reader):
            if task:
                task.cancel()
        if self.api is not None:
            await self.api.close()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    out: dict[str, Any] = {"samples_requested": args.samples, "runs_requested": args.runs, "warmup": args.warmup,
                           "skipped": []}
    state = Path(tempfile.mkdtemp(prefix="celeris-t2o-"))
    out["logs"] = str(state)

    def over_budget() -> bool:
        return time.monotonic() - started > args.budget_s

    transports = [t for t in args.order_transport.split(",") if t]
    out["order_transports"] = transports
    async with aiohttp.ClientSession() as session:
        for topology in [t for t in args.topologies.split(",") if t]:
            for transport in transports:
                name = f"{topology}_{transport}"
                sim, info = start_sim(state)
                up = None
                runs: list[dict[str, Any]] = []
                try:
                    # The baseline first, against the same simulator, before the system connects.
                    if topology == args.topologies.split(",")[0] and args.baseline:
                        client = BareClient(info, session, transport)
                        await client.start()
                        await probe(session, info, 3, 3, 300, args.quiet_ms)
                        base_runs = []
                        for _ in range(args.runs):
                            if over_budget():
                                out["skipped"].append(f"baseline_{transport} run")
                                continue
                            r = await probe(session, info, args.samples, args.warmup, args.timeout_ms,
                                            args.quiet_ms)
                            base_runs.append(dict(_figures(r["samples_ns"]), timeouts=r["timeouts"]))
                        await client.stop()
                        out.update(_summary(f"baseline_{transport}", base_runs))
                    before = (await sim_stats(session, info)).get("ws_api_requests", 0)
                    up = start_up(topology, transport, info, state)
                    await wait_ready(session, info, up, args.ready_s)
                    for _ in range(args.runs):
                        if over_budget():
                            out["skipped"].append(f"{name} run")
                            continue
                        quiet = args.services_quiet_ms if topology == "services" else args.quiet_ms
                        r = await probe(session, info, args.samples, args.warmup, args.timeout_ms, quiet)
                        runs.append(dict(_figures(r["samples_ns"]), timeouts=r["timeouts"],
                                         duration_s=r["duration_s"]))
                    # Which transport the orders took, as the venue saw them (a check on the flag's effect).
                    out[f"{name}_ws_api_requests"] = (await sim_stats(session, info)).get("ws_api_requests", 0) - before
                finally:
                    if up is not None:
                        stop(up)
                    stop(sim)
                out.update(_summary(name, runs))
    out["duration_s"] = round(time.monotonic() - started, 1)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--samples", type=int, default=1000, help="frame -> order samples per run")
    p.add_argument("--warmup", type=int, default=20, help="steps before each run's samples")
    p.add_argument("--topologies", default="inproc,services")
    p.add_argument("--order-transport", default="rest,websocket",
                   help="comma-separated: rest (POST /fapi/v1/order), websocket (the WebSocket API's order.place)")
    p.add_argument("--no-baseline", dest="baseline", action="store_false")
    p.add_argument("--timeout-ms", type=float, default=200, help="a step without an order this long is a miss")
    p.add_argument("--quiet-ms", type=float, default=2, help="settling time before and after each step")
    p.add_argument("--services-quiet-ms", type=float, default=6,
                   help="the same for the services topology (its answers take gRPC hops to settle)")
    p.add_argument("--ready-s", type=float, default=40, help="how long `celeris up` may take to trade")
    p.add_argument("--budget-s", type=float, default=240, help="no run starts after this many seconds")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    from celeris.runtime.grpc_server import install_uvloop

    install_uvloop()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    atexit.register(_kill_children)
    out = asyncio.run(measure(args))
    if args.json:
        print(json.dumps(out))
        return 0
    names = [f"baseline_{t}" for t in out["order_transports"]] + [
        f"{topology}_{t}" for topology in args.topologies.split(",") if topology for t in out["order_transports"]]
    for name in names:
        runs = out.get(f"{name}_runs")
        if runs is None:
            continue
        for i, r in enumerate(runs):
            print(f"{name:18} run {i + 1}: n={r['count']:5} p50 {r['p50_us']} us  p99 {r['p99_us']} us  "
                  f"p999 {r['p999_us']} us  ({r['timeouts']} misses)")
        if f"{name}_ws_api_requests" in out:
            print(f"{name:18} WebSocket API requests at the venue: {out[f'{name}_ws_api_requests']}")
        print(f"{name:18} median of {len(runs)} runs: " + "  ".join(
            f"{q} {out[f'{name}_{q}_us_median']} us [{out[f'{name}_{q}_us_min']}-{out[f'{name}_{q}_us_max']}]"
            for q in ("p50", "p99", "p999")))
    if out["skipped"]:
        print(f"skipped past the {args.budget_s} s budget: {', '.join(out['skipped'])}")
    print(f"(took {out['duration_s']} s; logs in {out['logs']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
