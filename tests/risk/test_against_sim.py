"""The risk manager against the simulator, real Redis and PostgreSQL: margin numbers and the kill switch."""

import asyncio
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from celeris.domain.instruments import OrderType
from celeris.domain.modes import Mode
from celeris.domain.values import Side
from celeris.domain.messages import RejectCode
from celeris.domain.values import money
from celeris.clients.execution_control import ExecutionControlClient
from celeris.risk import adapters, servicer
from celeris.risk.engine import DEFAULT_POLICIES, RiskConfig, RiskEngine
from celeris.runtime import control, grpc_server
from celeris.runtime.clock import SystemClock
from celeris.storage import postgres
from tests.execution.conftest import Harness, request
from tests.sim.conftest import API_KEY, live_venue  # noqa: F401

CELERIS = str(Path(sys.executable).with_name("celeris"))


async def celeris(*args):
    """The CLI in a child process, awaited without blocking this loop (the servers run on it)."""
    proc = await asyncio.create_subprocess_exec(CELERIS, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())


async def test_emergency_stop_end_to_end(live_venue, redis_server, postgres_server):  # noqa: F811
    h = await Harness(live_venue).start()
    ctl = control.ComponentControl("execution", SystemClock(), mode=Mode.LIVE,
                                   details=lambda: {"halt_canceled": str(h.engine.last_halt_canceled),
                                                    "halt_flat": str(h.engine.last_halt_flat).lower()})

    async def on_halt(reason, flatten):
        await h.engine.halt(reason, "control", flatten)

    async def on_resume(by):
        await h.engine.resume(by)

    ctl.on_halt.append(on_halt)
    ctl.on_resume.append(on_resume)
    execution_server = grpc_server.create_server([control.registrar(ctl)])
    await execution_server.server.start()
    redis_client = aioredis.from_url(redis_server.url)
    await redis_client.delete("celeris:execution:trading_disabled")
    pool = await postgres.connect_pool(postgres_server.dsn)
    await postgres.migrate(pool)
    risk = RiskEngine(h.instruments, SystemClock(), adapters.VenueAccountSource(h.rest, h.instruments),
                      adapters.PostgresPolicyStore(pool, DEFAULT_POLICIES), adapters.PostgresAudit(pool),
                      adapters.RedisTradingFlag(redis_client),
                      adapters.VenueEmergencyActions(h.rest, h.instruments, ExecutionControlClient(execution_server.target)),
                      RiskConfig(monitor_interval_s=3600))
    risk_server = grpc_server.create_server([servicer.registrar(risk)])
    await risk_server.server.start()
    try:
        await risk.start()
        assert {p.name for p in risk.policies} == {p.name for p in DEFAULT_POLICIES}  # seeded into PostgreSQL
        ins = h.ins()
        eth = h.ins("ETHUSDT")
        for i in range(2):
            assert (await h.engine.submit(request(price=ins.format_price(h.best(True) - 100 - i),
                                                  instrument=ins))).accepted
        assert (await h.engine.submit(request(order_type=OrderType.MARKET, qty="0.200", instrument=ins))).accepted
        assert (await h.engine.submit(request(symbol="ETHUSDT", side=Side.SELL, order_type=OrderType.MARKET,
                                              qty="1.000", instrument=eth))).accepted
        await asyncio.sleep(0.2)

        # Our margin numbers equal the venue's own.
        # Compared at a moment the mark did not move: the venue's account is the same before and after.
        for _ in range(20):
            before = await h.rest.request("GET", "/fapi/v2/account", signed=True)
            metrics = await risk.refresh()
            account = await h.rest.request("GET", "/fapi/v2/account", signed=True)
            if all(before[k] == account[k] for k in ("totalMaintMargin", "totalMarginBalance")):
                break
        venue_ratio = Fraction(account["totalMaintMargin"]) / Fraction(account["totalMarginBalance"])
        assert abs(Fraction(metrics.margin_ratio_ppm, 10**6) - venue_ratio) <= Fraction(1, 10**6)  # ppm, rounded up
        assert metrics.equity_units == money(account["totalMarginBalance"])

        # The kill switch, as a person uses it.
        halt = await celeris("halt", "--target", risk_server.target, "--reason", "test stop", "--by", "alice")
        assert halt.returncode == 0, halt.stderr
        account = live_venue.engine.accounts[API_KEY]
        assert not [o for o in account.orders.values() if o.is_open]
        assert all(p.qty_steps == 0 for p in account.positions.values())
        # The flatten went through execution: reduce-only market orders with its ids and owner.
        flatten = [o for o in h.engine.orders.values() if o.strategy_id == "emergency-flatten"]
        assert {o.symbol for o in flatten} == {"BTCUSDT", "ETHUSDT"} and all(o.reduce_only for o in flatten)
        assert h.engine.halted and await redis_client.get("celeris:execution:trading_disabled") == b"test stop"
        refused = await h.engine.submit(request(order_type=OrderType.MARKET, instrument=ins))
        assert refused.rejection.code is RejectCode.HALTED
        again = await celeris("halt", "--target", risk_server.target, "--reason", "second", "--by", "bob")
        assert again.returncode == 0 and '"reason": "test stop"' in again.stdout  # idempotent
        conn = await asyncpg.connect(postgres_server.dsn)
        try:
            rows = await conn.fetch("SELECT * FROM emergency_stops ORDER BY id")
            assert len(rows) == 1 and rows[0]["triggered_by"] == "alice"
            assert rows[0]["orders_canceled"] == 2 and rows[0]["positions_closed"] == 2
            assert rows[0]["completed_at"] is not None and rows[0]["re_enabled_by"] is None
            resume = await celeris("resume", "--target", risk_server.target, "--by", "carol", "--reason", "reviewed")
            assert resume.returncode == 0, resume.stderr
            row = await conn.fetchrow("SELECT * FROM emergency_stops ORDER BY id DESC LIMIT 1")
            assert row["re_enabled_by"] == "carol"
            checks = await conn.fetchval("SELECT count(*) FROM pre_trade_checks")
        finally:
            await conn.close()
        assert not h.engine.halted and await redis_client.get("celeris:execution:trading_disabled") is None
        assert (await h.engine.submit(request(order_type=OrderType.MARKET, instrument=ins))).accepted
        risk.check_order("audit-me", "BTCUSDT", Side.BUY, 1, None)
        await asyncio.sleep(0.1)
        conn = await asyncpg.connect(postgres_server.dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM pre_trade_checks") == checks + 1
        finally:
            await conn.close()
    finally:
        await risk.stop_tasks()
        await risk_server.server.stop(None)
        await execution_server.server.stop(None)
        await h.stop()
        await redis_client.aclose()
        await pool.close()


async def test_policy_changes_over_grpc_are_stored(postgres_server):
    import grpc

    from celeris.api.v1 import risk_pb2, risk_pb2_grpc
    from celeris.risk.engine import MemoryAudit, MemoryFlag

    class NoAccount:
        async def snapshot(self):
            from celeris.risk.metrics import AccountSnapshot
            return AccountSnapshot(0, {}, {}, {})

    pool = await postgres.connect_pool(postgres_server.dsn)
    await postgres.migrate(pool)
    store = adapters.PostgresPolicyStore(pool, DEFAULT_POLICIES)
    engine = RiskEngine({}, SystemClock(), NoAccount(), store, MemoryAudit(), MemoryFlag(), None)
    server = grpc_server.create_server([servicer.registrar(engine)])
    await server.server.start()
    try:
        await engine.start()
        async with grpc.aio.insecure_channel(server.target) as ch:
            stub = risk_pb2_grpc.RiskManagerStub(ch)
            await stub.UpsertPolicy(risk_pb2.RiskPolicy(name="tight-leverage", metric="leverage", operator="<=",
                                                        threshold="3", kind="hard", scope="account", enabled=True))
            names = {p.name for p in (await stub.ListPolicies(risk_pb2.ListPoliciesRequest())).policies}
            assert "tight-leverage" in names
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.UpsertPolicy(risk_pb2.RiskPolicy(name="bad", metric="vibes", operator="<=", threshold="1"))
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            await stub.DeletePolicy(risk_pb2.DeletePolicyRequest(name="tight-leverage"))
        assert "tight-leverage" not in {p.name for p in await store.load()}
        fresh = RiskEngine({}, SystemClock(), NoAccount(), adapters.PostgresPolicyStore(pool), MemoryAudit(),
                           MemoryFlag(), None)
        await fresh.start()  # loaded at start from PostgreSQL
        assert {p.name for p in fresh.policies} == {p.name for p in DEFAULT_POLICIES}
        await fresh.stop_tasks()
    finally:
        await engine.stop_tasks()
        await server.server.stop(None)
        await pool.close()
