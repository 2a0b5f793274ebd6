#!/usr/bin/env python3
"""Risk benchmark: the pre-trade check in-process (p50/p99 us) and over gRPC on loopback (checks/s).

The account holds positions in BTCUSDT and ETHUSDT with the default policies. In-process: one
`RiskEngine.check_order` per sample (post-trade simulation, metrics, policy evaluation, audit queued).
Over gRPC, to a real server on 127.0.0.1, one at a time and from 8 concurrent callers: unary CheckOrder
calls, and checks through execution's client (clients/risk.GrpcRiskCheck) on the CheckOrders stream it
keeps open; --runs runs of --count checks each, medians with min-max. The baseline in the same run
recomputes the same post-trade leverage and margin ratio with Decimal arithmetic and no policy engine;
over gRPC, the health check on the same server and channel, sequential and 8 in flight (the ceiling of a
unary call here). `--json` prints one JSON object. Targets: p50 <= 20 us in-process; >= 5,000 checks/s
over gRPC.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _capture import EXCHANGE_INFO, summarize  # noqa: E402

from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from celeris.api.v1 import common_pb2, risk_pb2, risk_pb2_grpc  # noqa: E402
from celeris.clients.risk import GrpcRiskCheck  # noqa: E402
from celeris.domain.instruments import OrderType  # noqa: E402
from celeris.domain.messages import OrderRequest  # noqa: E402
from celeris.domain.risk import Approved  # noqa: E402
from celeris.domain.instruments import Instrument  # noqa: E402
from celeris.domain.values import MONEY_SCALE  # noqa: E402
from celeris.domain.positions import Position  # noqa: E402
from celeris.domain.values import Side  # noqa: E402
from celeris.risk import servicer  # noqa: E402
from celeris.risk.engine import MemoryAudit, MemoryFlag, MemoryPolicyStore, RiskEngine  # noqa: E402
from celeris.risk.metrics import AccountSnapshot  # noqa: E402
from celeris.runtime import grpc_server  # noqa: E402
from celeris.runtime.clock import SystemClock  # noqa: E402


class Source:
    def __init__(self, snap: AccountSnapshot) -> None:
        self.snap = snap

    async def snapshot(self) -> AccountSnapshot:
        return self.snap


def instruments() -> dict[str, Instrument]:
    info = json.loads(EXCHANGE_INFO.read_text())
    return {s["symbol"]: Instrument.from_exchange_info(s) for s in info["symbols"][:2]}


def account(ins: dict[str, Instrument]) -> AccountSnapshot:
    btc, eth = ins["BTCUSDT"], ins["ETHUSDT"]
    return AccountSnapshot(50_000 * 10**MONEY_SCALE, {"BTCUSDT": Position(btc, 500, Fraction(500 * 600_000)),
                                            "ETHUSDT": Position(eth, -3000, Fraction(3000 * 300_000))},
                           {"BTCUSDT": 601_000, "ETHUSDT": 299_500}, {"BTCUSDT": 20, "ETHUSDT": 20})


def naive_check(wallet: Decimal, positions: dict[str, tuple[Decimal, Decimal, Decimal]], symbol: str,
                qty: Decimal, price: Decimal) -> bool:
    positions = dict(positions)
    amount, entry, mark = positions[symbol]
    positions[symbol] = (amount + qty, entry, mark)
    upnl = sum((m - e) * a for a, e, m in positions.values())
    equity = wallet + upnl
    gross = sum(abs(a) * m for a, _, m in positions.values())
    maint = sum(abs(a) * m * Decimal("0.025") for a, _, m in positions.values())
    return gross / equity <= 10 and maint / equity < Decimal("0.8")


async def run(count: int, runs: int = 5) -> dict[str, Any]:
    ins = instruments()
    engine = RiskEngine(ins, SystemClock(), Source(account(ins)), MemoryPolicyStore(), MemoryAudit(), MemoryFlag(),
                        None)
    await engine.start()
    samples = []
    start = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter_ns()
        engine.check_order(f"b{i}", "BTCUSDT", Side.BUY if i % 2 else Side.SELL, 10 + i % 7, 601_000)
        samples.append(time.perf_counter_ns() - t0)
        if i % 500 == 0:
            engine.order_times.clear()  # keep the velocity policy from refusing the benchmark itself
            await asyncio.sleep(0)
    local = summarize(samples, time.perf_counter() - start)

    wallet = Decimal(50_000)
    positions = {"BTCUSDT": (Decimal("0.5"), Decimal(60_000), Decimal(60_100)),
                 "ETHUSDT": (Decimal(-3), Decimal(3_000), Decimal("2995"))}
    base = []
    start = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter_ns()
        naive_check(wallet, positions, "BTCUSDT", Decimal("0.01"), Decimal(60_100))
        base.append(time.perf_counter_ns() - t0)
    baseline = summarize(base, time.perf_counter() - start)

    # The velocity policy would refuse the benchmark itself; from the store too, or the engine's policy
    # reload (every 5 s) brings it back in the middle of a slow run.
    await engine.policy_store.delete("order-velocity")
    await engine.reload_policies()
    server = grpc_server.create_server([servicer.registrar(engine)])
    await server.server.start()
    try:
        return await _over_grpc(engine, server, ins, count, local, baseline, runs)
    finally:
        await server.server.stop(None)
        await engine.stop_tasks()


async def _calls(call, count: int, in_flight: int) -> dict[str, float]:
    """`count` calls of `call`, `in_flight` callers at a time on one channel: latency per call and calls/s."""
    latencies: list[int] = []
    per_caller = max(1, count // in_flight)

    async def caller() -> None:
        for _ in range(per_caller):
            t0 = time.perf_counter_ns()
            await call()
            latencies.append(time.perf_counter_ns() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(in_flight)))
    return summarize(latencies, time.perf_counter() - start)


def _median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per figure: the median of the runs and their min-max."""
    out: dict[str, float] = {}
    for key in ("events_per_s", "p50_us", "p99_us"):
        values = sorted(r[key] for r in runs)
        out[key], out[f"{key}_min"], out[f"{key}_max"] = statistics.median(values), values[0], values[-1]
    return out


async def _over_grpc(engine, server, ins, count, local, baseline, runs=5) -> dict[str, Any]:
    btc = ins["BTCUSDT"]
    request = risk_pb2.CheckOrderRequest(symbol="BTCUSDT", side=common_pb2.SIDE_BUY,
                                         quantity=common_pb2.Decimal(mantissa=10, scale=3),
                                         price=common_pb2.Decimal(mantissa=btc.price_grid.units(601_000), scale=2))
    # The stream through execution's own client (clients/risk.GrpcRiskCheck): the OrderRequest translated,
    # one CheckOrders stream kept open, the answer matched to its check and read back as Approved | Denied.
    order = OrderRequest(request_id="bench", symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT,
                         qty_steps=10, price_ticks=601_000)
    out: dict[str, Any] = {"local": local, "baseline": baseline}
    client = GrpcRiskCheck(server.target, ins, timeout_s=5.0)
    async with grpc_server.insecure_channel(server.target) as channel:
        stub = risk_pb2_grpc.RiskManagerStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        ping = health_pb2.HealthCheckRequest()

        async def check() -> None:
            reply = await stub.CheckOrder(request)
            assert reply.approved, str(reply.violations)

        async def probe() -> None:
            await health.Check(ping)

        async def stream_check() -> None:
            verdict = await client.check(order, None)
            assert isinstance(verdict, Approved), verdict

        try:
            for _ in range(200):
                await check()
                await probe()
                await stream_check()
            # Sequential round trips (latency) and 8 callers in flight (throughput), each against the health
            # check (the same server, channel and interceptors doing no work) as the baseline in the same
            # run; the runs interleave the three so a noisy moment of the machine falls on all of them.
            figures: dict[str, list[dict[str, float]]] = {k: [] for k in ("rpc_seq", "health_seq", "stream_seq",
                                                                          "rpc", "health", "stream")}
            for _ in range(runs):
                figures["rpc_seq"].append(await _calls(check, count, 1))
                figures["health_seq"].append(await _calls(probe, count, 1))
                figures["stream_seq"].append(await _calls(stream_check, count, 1))
                figures["rpc"].append(await _calls(check, count, 8))
                figures["health"].append(await _calls(probe, count, 8))
                figures["stream"].append(await _calls(stream_check, count, 8))
            assert client.streams_opened == 1 and client.use_stream, "the stream was reopened or not used"
        finally:
            await client.close()
    out.update({k: _median_of(v) for k, v in figures.items()})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--count", type=int, default=5000, help="checks in-process, and per gRPC run")
    parser.add_argument("--runs", type=int, default=5, help="gRPC runs (medians with min-max)")
    args = parser.parse_args()
    r = asyncio.run(run(args.count, args.runs))
    out: dict[str, Any] = {
        "benchmark": "risk", "checks": args.count,
        "p50_us": round(r["local"]["p50_us"], 1), "p99_us": round(r["local"]["p99_us"], 1),
        "checks_per_s": round(r["local"]["events_per_s"]),
        "baseline_p50_us": round(r["baseline"]["p50_us"], 1), "baseline_p99_us": round(r["baseline"]["p99_us"], 1),
        "grpc_runs": args.runs, "grpc_checks_per_run": args.count, "grpc_in_flight": 8}
    # gRPC figures: the median of the runs, with _min/_max. grpc_* is unary CheckOrder, grpc_stream_* the
    # CheckOrders stream through clients/risk.GrpcRiskCheck, health_* the health check; _seq one at a time.
    for name, key in (("rpc", "grpc"), ("rpc_seq", "grpc_seq"), ("stream", "grpc_stream"),
                      ("stream_seq", "grpc_stream_seq"), ("health", "health"), ("health_seq", "health_seq")):
        f = r[name]
        out[f"{key}_checks_per_s"] = round(f["events_per_s"])
        out[f"{key}_checks_per_s_min"], out[f"{key}_checks_per_s_max"] = round(f["events_per_s_min"]), \
            round(f["events_per_s_max"])
        for q in ("p50", "p99"):
            out[f"{key}_{q}_us"] = round(f[f"{q}_us"], 1)
            out[f"{key}_{q}_us_min"], out[f"{key}_{q}_us_max"] = round(f[f"{q}_us_min"], 1), round(f[f"{q}_us_max"], 1)
    out.update({"target_p50_us": 20, "target_grpc_checks_per_s": 5000})
    if args.json:
        print(json.dumps(out))
    else:
        print(f"risk pre-trade check ({args.count} checks; gRPC: median of {args.runs} runs of {args.count}, "
              "min-max in brackets)")
        print(f"{'':34} {'p50 us':>8} {'p99 us':>8} {'checks/s':>10}  {'checks/s min-max':>17}")
        print(f"{'in-process (full engine)':34} {out['p50_us']:>8} {out['p99_us']:>8} {out['checks_per_s']:>10,}")
        print(f"{'naive Decimal baseline':34} {out['baseline_p50_us']:>8} {out['baseline_p99_us']:>8}")
        rows = (("gRPC unary, sequential", "grpc_seq"), ("  health check, sequential", "health_seq"),
                ("gRPC stream, sequential", "grpc_stream_seq"),
                ("gRPC unary, 8 in flight", "grpc"), ("  health check, 8 in flight", "health"),
                ("gRPC stream, 8 in flight", "grpc_stream"))
        for label, key in rows:
            print(f"{label:34} {out[f'{key}_p50_us']:>8} {out[f'{key}_p99_us']:>8} {out[f'{key}_checks_per_s']:>10,}"
                  f"  [{out[f'{key}_checks_per_s_min']:,}-{out[f'{key}_checks_per_s_max']:,}]")
        print("targets: p50 <= 20 us in-process, >= 5,000 checks/s over gRPC (the stream)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
