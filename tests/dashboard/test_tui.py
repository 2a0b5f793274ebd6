"""The terminal dashboard, driven by Textual's pilot against a running dashboard server."""

import time

from textual.widgets import DataTable, Static

from celeris.dashboard.tui import DashboardApp, ws_url
from tests.dashboard.test_server import server  # noqa: F401 - fixture


def test_ws_url_from_the_printed_dashboard_url():
    assert ws_url("http://127.0.0.1:8080/?token=abc") == (
        "ws://127.0.0.1:8080/ws?client=tui&format=json&token=abc", "http://127.0.0.1:8080", "abc")


async def test_tui_shows_live_state_and_halts_with_confirmation(server):  # noqa: F811
    st = server.state
    now = time.time_ns()
    st.set("system.status", {"mode": "live", "halted": False, "uptime_s": 12}, now)
    st.set("positions.all", {"BTCUSDT": {"qty": "0.010", "entry": "60000.00", "mark": "60100.00", "unrealized": "1.0000"}}, now)
    st.set("markets.BTCUSDT", {"state": "live", "bids": [["60000.00", "1.000"]], "asks": [["60000.10", "2.000"]],
                               "mid": "60000.050"}, now)
    st.set("markets.ETHUSDT", {"state": "live", "bids": [["3000.00", "5.000"]], "asks": [["3000.01", "1.000"]],
                               "mid": "3000.005"}, now)
    st.set("health.execution", {"ready": True, "detail": "breaker closed"}, now)
    st.set("orders.recent", [{"symbol": "BTCUSDT", "side": "BUY", "price": "60000.00", "qty": "0.010",
                              "filled": "0.000", "status": "SUBMITTED", "strategy": "mm"}], now)
    app = DashboardApp(f"{server.base}/?token=secret-token")
    async with app.run_test(size=(140, 45)) as pilot:
        for _ in range(50):
            if app.messages:
                break
            await pilot.pause(0.05)
        assert app.connected and app.messages >= 1
        assert app.query_one("#positions", DataTable).row_count == 1
        assert app.query_one("#orders", DataTable).row_count == 1
        assert "BTCUSDT" in str(app.query_one("#book", Static).render())
        st.set("system.status", {"mode": "live", "halted": False, "uptime_s": 13}, time.time_ns())
        st.set("positions.all", {}, time.time_ns())
        await pilot.pause(0.4)
        assert app.query_one("#positions", DataTable).row_count == 0  # live updates arrive
        await pilot.press("b")
        assert "ETHUSDT" in str(app.query_one("#book", Static).render())
        await pilot.press("h")
        assert app.confirming and server.actions.calls == []
        await pilot.press("y")
        await pilot.pause(0.3)
        assert server.actions.calls and server.actions.calls[0][0] == "halt" and server.actions.calls[0][2] == "tui"
        await pilot.press("q")


async def test_tui_says_invalid_token_and_stops_reconnecting(server):  # noqa: F811
    app = DashboardApp(f"{server.base}/?token=not-the-token")
    async with app.run_test(size=(140, 45)) as pilot:
        for _ in range(100):
            if app.problem:
                break
            await pilot.pause(0.05)
        assert app.problem.startswith("invalid token") and not app.connected
        assert "invalid token" in str(app.query_one("#status", Static).render())
        assert app._task is not None and app._task.done()  # no reconnect loop
        await pilot.press("q")


def test_tui_refuses_a_url_without_a_token():
    import subprocess
    import sys
    from pathlib import Path

    celeris = str(Path(sys.executable).with_name("celeris"))
    for args in ([], ["http://127.0.0.1:8080/"], ["not a url"]):
        result = subprocess.run([celeris, "tui", *args], capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and result.stderr.strip(), args
