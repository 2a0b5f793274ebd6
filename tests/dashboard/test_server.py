"""The dashboard server's protocol over real sockets: auth, formats, coalescing, channels, actions."""

import asyncio
import json
import time

import aiohttp
import msgspec
import pytest

from celeris.dashboard.server import DashboardConfig, DashboardServer
from celeris.dashboard.state import DashboardState


class Actions:
    def __init__(self):
        self.calls = []

    async def halt(self, reason, by):
        self.calls.append(("halt", reason, by))
        return {"halted": True}

    async def resume(self, by):
        self.calls.append(("resume", by))
        return {"halted": False}

    async def acknowledge(self, alert_id, by):
        self.calls.append(("ack", alert_id, by))
        return alert_id == "a1"


@pytest.fixture
async def server():
    state = DashboardState()
    state.set("system.status", {"mode": "live"}, time.time_ns())
    state.set("markets.BTCUSDT", {"mid": "1"}, time.time_ns())
    actions = Actions()
    srv = DashboardServer(state, actions, DashboardConfig(token="secret-token", max_clients=3, heartbeat_ms=300))
    port = await srv.start("127.0.0.1", 0)
    srv.base = f"http://127.0.0.1:{port}"
    srv.ws_base = f"ws://127.0.0.1:{port}/ws"
    yield srv
    await srv.stop()


async def receive(ws, timeout=2.0):
    msg = await ws.receive(timeout=timeout)
    if msg.type == aiohttp.WSMsgType.BINARY:
        return msgspec.msgpack.decode(msg.data)
    return json.loads(msg.data)


def test_a_token_is_required_unless_auth_is_explicitly_off():
    with pytest.raises(ValueError):
        DashboardServer(DashboardState(), None, DashboardConfig())
    DashboardServer(DashboardState(), None, DashboardConfig(auth_disabled=True))


async def test_auth_snapshot_then_updates_in_msgpack_and_json(server):
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{server.ws_base}?token=wrong") as resp:
            assert resp.status == 401
        async with s.ws_connect(f"{server.ws_base}?token=secret-token") as ws:
            snap = await receive(ws)
            assert snap["type"] == "snapshot" and snap["data"]["system.status"] == {"mode": "live"}
            server.state.set("markets.BTCUSDT", {"mid": "2"}, time.time_ns())
            update = await receive(ws)
            assert update["type"] == "update" and update["changes"] == {"markets.BTCUSDT": {"mid": "2"}}
            assert update["seq"] > snap["seq"] and update["source_ts"] > 0
        async with s.ws_connect(f"{server.ws_base}?token=secret-token&format=json") as ws:
            msg = await ws.receive(timeout=2)
            assert msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == "snapshot"


async def test_web_and_tui_get_coalesced_pushes_with_the_latest_value(server):
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{server.ws_base}?token=secret-token&client=tui&format=json") as tui, \
                s.ws_connect(f"{server.ws_base}?token=secret-token&client=web&format=json") as web:
            await receive(tui), await receive(web)
            counts = {"tui": 0, "web": 0}
            last_mid = {}
            pushes_before = server.push_count
            total = 300

            async def reader(name, ws):
                while last_mid.get(name) != str(total):
                    msg = await receive(ws)
                    if msg["type"] == "update":
                        counts[name] += 1
                        last_mid[name] = msg["changes"]["markets.BTCUSDT"]["mid"]

            async def writer():
                for i in range(1, total + 1):
                    server.state.set("markets.BTCUSDT", {"mid": str(i)}, time.time_ns())
                    if i % 10 == 0:
                        await asyncio.sleep(0)

            await asyncio.gather(reader("tui", tui), reader("web", web), writer())
            pushes = server.push_count - pushes_before
            assert last_mid["tui"] == last_mid["web"] == str(total)  # coalesced: the latest value arrives
            assert 1 <= counts["tui"] <= pushes and 1 <= counts["web"] <= pushes  # one message per push at most
            assert pushes < total // 10  # far fewer pushes than changes


async def test_channels_heartbeat_and_bad_messages(server):
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{server.ws_base}?token=secret-token&format=json&client=tui&channels=system") as ws:
            snap = await receive(ws)
            assert set(snap["data"]) == {"system.status"}
            server.state.set("markets.BTCUSDT", {"mid": "9"}, time.time_ns())
            server.state.set("system.status", {"mode": "simulation"}, time.time_ns())
            update = await receive(ws)
            assert update["changes"] == {"system.status": {"mode": "simulation"}}
            await ws.send_json({"type": "subscribe", "channels": ["markets"]})
            again = await receive(ws)
            assert again["type"] == "snapshot" and "markets.BTCUSDT" in again["data"]
            await ws.send_str("not json")
            assert (await receive(ws))["type"] == "error"
            kinds = set()
            for _ in range(5):
                kinds.add((await receive(ws, timeout=1))["type"])
            assert "heartbeat" in kinds


async def test_max_clients(server):
    async with aiohttp.ClientSession() as s:
        sockets = [await s.ws_connect(f"{server.ws_base}?token=secret-token") for _ in range(3)]
        async with s.get(f"{server.ws_base}?token=secret-token") as resp:
            assert resp.status == 503
        for ws in sockets:
            await ws.close()


async def test_actions_require_the_token(server):
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{server.base}/api/halt", json={"reason": "x"}) as resp:
            assert resp.status == 401
        headers = {"Authorization": "Bearer secret-token"}
        async with s.post(f"{server.base}/api/halt", json={"reason": "drawdown", "by": "ops"}, headers=headers) as resp:
            assert resp.status == 200 and (await resp.json())["halted"]
        async with s.post(f"{server.base}/api/resume", json={}, headers=headers) as resp:
            assert resp.status == 400  # who resumes is recorded: required
        async with s.post(f"{server.base}/api/resume", json={"by": "ops"}, headers=headers) as resp:
            assert resp.status == 200
        async with s.post(f"{server.base}/api/alerts/a1/ack", json={"by": "ops"}, headers=headers) as resp:
            assert resp.status == 200
        async with s.post(f"{server.base}/api/alerts/zz/ack", headers=headers) as resp:
            assert resp.status == 400
        async with s.get(f"{server.base}/api/state", headers=headers) as resp:
            assert (await resp.json())["data"]["system.status"]["mode"] == "live"
    assert server.actions.calls[0] == ("halt", "drawdown", "ops")
