#!/usr/bin/env python3
"""Risk benchmark: the pre-trade check in-process (p50/p99 us) and over gRPC on loopback (checks/s).

The account holds positions in BTCUSDT and ETHUSDT with the default policies. In-process: one
`RiskEngine.check_order` per sample (post-trade simulation, metrics, policy evaluation, audit queued).
Over gRPC: CheckOrder calls, one at a time and from 8 concurrent callers, to a real server on 127.0.0.1. The baseline in the
same run recomputes the same post-trade leverage and margin ratio with Decimal arithmetic and no policy
engine; over gRPC, the health check on the same server and channel, sequential and 8 in flight.
`--json` prints one JSON object. Targets: p50 <= 20 us in-process; >= 5,000 checks/s over gRPC.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _capture import EXCHANGE_INFO, summarize  # noqa: E402

from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from celeris.api.v1 import common_pb2, risk_pb2, risk_pb2_grpc  # noqa: E402
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


async def run(count: int) -> dict[str, float]:
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
        return await _over_grpc(engine, server, ins, count, local, baseline)
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


async def _over_grpc(engine, server, ins, count, local, baseline) -> dict[str, float]:
    btc = ins["BTCUSDT"]
    request = risk_pb2.CheckOrderRequest(symbol="BTCUSDT", side=common_pb2.SIDE_BUY,
                                         quantity=common_pb2.Decimal(mantissa=10, scale=3),
                                         price=common_pb2.Decimal(mantissa=btc.price_grid.units(601_000), scale=2))
    out = {"local": local, "baseline": baseline}
    async with grpc_server.insecure_channel(server.target) as channel:
        stub = risk_pb2_grpc.RiskManagerStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        ping = health_pb2.HealthCheckRequest()

        async def check() -> None:
            reply = await stub.CheckOrder(request)
            assert reply.approved, str(reply.violations)

        async def probe() -> None:
            await health.Check(ping)

        for _ in range(200):
            await check()
            await probe()
        # Sequential round trips (latency) and 8 callers in flight (throughput), each against the health
        # check (the same server, channel and interceptors doing no work) as the baseline in the same run.
        out["rpc_seq"] = await _calls(check, count, 1)
        out["health_seq"] = await _calls(probe, count, 1)
        out["rpc"] = await _calls(check, count, 8)
        out["health"] = await _calls(probe, count, 8)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--count", type=int, default=5000)
    args = parser.parse_args()
    r = asyncio.run(run(args.count))
    out = {"benchmark": "risk", "checks": args.count,
           "p50_us": round(r["local"]["p50_us"], 1), "p99_us": round(r["local"]["p99_us"], 1),
           "checks_per_s": round(r["local"]["events_per_s"]),
           "baseline_p50_us": round(r["baseline"]["p50_us"], 1), "baseline_p99_us": round(r["baseline"]["p99_us"], 1),
           "grpc_checks_per_s": round(r["rpc"]["events_per_s"]), "grpc_p50_us": round(r["rpc"]["p50_us"], 1),
           "grpc_p99_us": round(r["rpc"]["p99_us"], 1),
           "grpc_seq_checks_per_s": round(r["rpc_seq"]["events_per_s"]), "grpc_seq_p50_us": round(r["rpc_seq"]["p50_us"], 1),
           "grpc_seq_p99_us": round(r["rpc_seq"]["p99_us"], 1),
           "health_checks_per_s": round(r["health"]["events_per_s"]), "health_p50_us": round(r["health"]["p50_us"], 1),
           "health_seq_checks_per_s": round(r["health_seq"]["events_per_s"]),
           "health_seq_p50_us": round(r["health_seq"]["p50_us"], 1),
           "target_p50_us": 20, "target_grpc_checks_per_s": 5000}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"risk pre-trade check ({args.count} checks)")
        print(f"{'':26} {'p50 us':>8} {'p99 us':>8} {'checks/s':>10}")
        print(f"{'in-process (full engine)':26} {out['p50_us']:>8} {out['p99_us']:>8} {out['checks_per_s']:>10,}")
        print(f"{'naive Decimal baseline':26} {out['baseline_p50_us']:>8} {out['baseline_p99_us']:>8}")
        print(f"{'gRPC loopback, sequential':26} {out['grpc_seq_p50_us']:>8} {out['grpc_seq_p99_us']:>8} "
              f"{out['grpc_seq_checks_per_s']:>10,}")
        print(f"{'  health check, sequential':26} {out['health_seq_p50_us']:>8} {'':>8} "
              f"{out['health_seq_checks_per_s']:>10,}")
        print(f"{'gRPC loopback, 8 in flight':26} {out['grpc_p50_us']:>8} {out['grpc_p99_us']:>8} "
              f"{out['grpc_checks_per_s']:>10,}")
        print(f"{'  health check, 8 in flight':26} {out['health_p50_us']:>8} {'':>8} {out['health_checks_per_s']:>10,}")
        print("targets: p50 <= 20 us in-process, >= 5,000 checks/s over gRPC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
