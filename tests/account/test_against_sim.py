"""The account monitor against the simulator: agreement with the venue, an induced mismatch halts trading,
the gRPC query API, and snapshots in real Redis and PostgreSQL."""

import asyncio
import json

import aiohttp
import grpc
import redis.asyncio as aioredis

from celeris.account import servicer
from celeris.account.engine import AccountConfig, AccountMonitor, RestVenueReader
from celeris.clients.halter import GrpcHalter
from celeris.account.persistence import AccountPersistence
from celeris.api.v1 import account_pb2, account_pb2_grpc
from celeris.domain.instruments import OrderType
from celeris.domain.modes import Mode
from celeris.domain.values import Side
from celeris.runtime import control, grpc_server
from celeris.runtime.clock import SystemClock
from celeris.storage import postgres
from celeris.venues.binance.userstream import UserDataStream
from tests.execution.conftest import Harness, request
from tests.support.waits import wait_for
from tests.sim.conftest import API_KEY, live_venue  # noqa: F401


async def test_account_agrees_with_the_venue_and_a_mismatch_halts(live_venue, redis_server, postgres_server):  # noqa: F811
    h = await Harness(live_venue).start()
    ctl = control.ComponentControl("execution", SystemClock(), mode=Mode.LIVE)

    async def on_halt(reason, flatten):
        await h.engine.halt(reason, "control", flatten)

    ctl.on_halt.append(on_halt)
    execution_server = grpc_server.create_server([control.registrar(ctl)])
    await execution_server.server.start()
    monitor = AccountMonitor(h.instruments, SystemClock(), RestVenueReader(h.rest, h.instruments),
                             GrpcHalter(execution_target=execution_server.target),
                             AccountConfig(reconcile_interval_s=0.5, confirm_delay_s=0.1))
    stream = UserDataStream(h.rest, live_venue.ws_url, monitor.on_user_event, monitor.reconcile)
    account_server = grpc_server.create_server([servicer.registrar(monitor)])
    await account_server.server.start()
    redis_client = aioredis.from_url(redis_server.url)
    pool = await postgres.connect_pool(postgres_server.dsn)
    await postgres.migrate(pool)
    persistence = AccountPersistence(monitor, pool, redis_client, interval_s=0.2)
    try:
        await monitor.start()
        await stream.start()
        persistence.start()
        await asyncio.sleep(0.1)
        ins = h.ins()
        async with grpc.aio.insecure_channel(account_server.target) as ch:
            stub = account_pb2_grpc.AccountMonitorStub(ch)
            updates = stub.SubscribeAccountUpdates(account_pb2.AccountRequest())
            first = await updates.read()
            assert first.header.snapshot and first.state.balances[0].asset == "USDT"

            # Trade: open, partly close at another price -> realized PnL and fees.
            assert (await h.engine.submit(request(order_type=OrderType.MARKET, qty="0.300", instrument=ins))).accepted
            await asyncio.sleep(0.3)
            assert (await h.engine.submit(request(side=Side.SELL, order_type=OrderType.MARKET, qty="0.100",
                                                  instrument=ins))).accepted
            sim_account = live_venue.engine.accounts[API_KEY]
            assert await wait_for(lambda: monitor.positions.get(("BTCUSDT", "BOTH")) is not None and
                                  monitor.positions[("BTCUSDT", "BOTH")].qty_steps == 200)
            assert await wait_for(lambda: monitor.wallet == sim_account.wallet)
            trades = sim_account.trades
            assert monitor.realized == sum(int(t["realizedPnl"].replace(".", "").replace("-", "")) *
                                           (-1 if t["realizedPnl"].startswith("-") else 1) for t in trades)
            assert monitor.fees == sum(int(t["commission"].replace(".", "")) for t in trades)
            delta = await asyncio.wait_for(updates.read(), 5)
            assert not delta.header.snapshot and delta.header.sequence == 2

            # Queries answer quickly and agree with the venue.
            position = await stub.GetPosition(account_pb2.GetPositionRequest(symbol="BTCUSDT"))
            assert position.quantity.mantissa == 200 and position.quantity.scale == 3
            pnl = await stub.GetPnL(account_pb2.AccountRequest())
            assert pnl.fees.mantissa > 0
            assert await monitor.reconcile() == []

            # Funding applied by the venue reaches the account.
            async with aiohttp.ClientSession() as s:
                await s.post(f"{live_venue.base_url}/_sim/funding")
            assert await wait_for(lambda: monitor.funding != 0)
            # Cross margin's FUNDING_FEE names no symbol: the venue's income history does, at reconciliation.
            paid = int(sim_account.income[-1]["income"].replace(".", ""))
            assert await wait_for(lambda: monitor.funding_by_symbol == {"BTCUSDT": paid}, timeout=3)
            assert monitor.wallet == sim_account.wallet

            # A position changed behind the system's back: detected within one interval, trading halted.
            async with aiohttp.ClientSession() as s:
                await s.post(f"{live_venue.base_url}/_sim/position", json={"symbol": "BTCUSDT", "qty": "0.350"})
            assert await wait_for(lambda: monitor.recon.mismatches >= 1, timeout=2)
            assert await wait_for(lambda: h.engine.halted, timeout=5)
            assert monitor.positions[("BTCUSDT", "BOTH")].qty_steps == 350  # the venue won
            snapshots_before = persistence.snapshots
            assert any(a.severity == "critical" and a.kind == "reconciliation_halt" for a in monitor.alerts)
            alert = monitor.alerts[-1]
            acked = await stub.AcknowledgeAlert(account_pb2.AcknowledgeAlertRequest(alert_id=alert.id,
                                                                                    acknowledged_by="ops"))
            assert acked.acknowledged
            updates.cancel()
        # A snapshot begun after the venue's position won (one in flight may still hold the old position).
        assert await wait_for(lambda: persistence.snapshots >= snapshots_before + 2)
        state = json.loads(await redis_client.get("celeris:account:state"))
        assert state["positions"]["BTCUSDT:BOTH"]["qty"] == "0.350"
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM pnl_snapshots WHERE symbol = 'ALL' ORDER BY ts DESC LIMIT 1")
            balances = await conn.fetchval("SELECT count(*) FROM balance_snapshots")
        assert rows and rows[0]["total_fees"] > 0 and balances >= 2
    finally:
        await persistence.stop()
        await stream.stop()
        await monitor.stop()
        await account_server.server.stop(None)
        await execution_server.server.stop(None)
        await h.stop()
        await redis_client.aclose()
        await pool.close()
