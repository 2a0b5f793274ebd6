"""`celeris tui URL`: the terminal dashboard (Textual), fed by the dashboard server's WebSocket.

The seed's layout: a header (mode, halted, uptime, connection); positions | order book; PnL | system
health; recent orders. Keys: q quits, b cycles the book's symbol, h asks to halt (y confirms), ? shows the
keys. It connects as a terminal client (100 ms updates, JSON), reconnects by itself, and never decides
anything: it shows the server's state and sends the server's actions.
"""

from __future__ import annotations

import asyncio
import sys
import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import aiohttp
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.widgets import DataTable, Footer, Header, Static

HELP = "q quit · b next book symbol · h halt trading (y to confirm) · ? help"


def ws_url(url: str) -> tuple[str, str, str]:
    """(websocket URL, HTTP base, token) from the dashboard's URL (http://host:port/?token=...)."""
    parts = urlsplit(url)
    token = parse_qs(parts.query).get("token", [""])[0]
    scheme = "wss" if parts.scheme == "https" else "ws"
    query = urlencode({"client": "tui", "format": "json", "token": token})
    return (urlunsplit((scheme, parts.netloc, "/ws", query, "")), urlunsplit((parts.scheme, parts.netloc, "", "", "")),
            token)


class DashboardApp(App[None]):
    CSS = """
    Grid { grid-size: 2 3; grid-rows: 1fr 1fr 1fr; grid-gutter: 0 1; }
    .panel { border: round $accent; padding: 0 1; }
    #status { height: 1; background: $boost; }
    #orders { column-span: 2; }
    """
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("b", "next_symbol", "Book symbol"),
                Binding("h", "halt", "Halt"), Binding("y", "confirm", "Confirm", show=False),
                Binding("question_mark", "help", "Help")]

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url, self.http_base, self.token = ws_url(url)
        self.values: dict[str, Any] = {}
        self.symbol_index = 0
        self.connected = False
        self.confirming = False
        self.messages = 0
        self.problem = ""
        self._task: asyncio.Task[None] | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=True)
        yield Static("connecting ...", id="status")
        with Grid():
            yield DataTable(id="positions", classes="panel")
            yield Static("", id="book", classes="panel")
            yield Static("", id="pnl", classes="panel")
            yield Static("", id="health", classes="panel")
            yield DataTable(id="orders", classes="panel")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Celeris"
        positions = self.query_one("#positions", DataTable)
        positions.border_title = "Positions"
        positions.add_columns("Symbol", "Qty", "Entry", "Mark", "Unrealized")
        orders = self.query_one("#orders", DataTable)
        orders.border_title = "Recent orders"
        orders.add_columns("Symbol", "Side", "Price", "Qty", "Status", "Strategy")
        for pid, title in (("#book", "Order book"), ("#pnl", "PnL"), ("#health", "System health")):
            self.query_one(pid).border_title = title
        self._task = asyncio.create_task(self._run())

    async def on_unmount(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        delay = 0.5
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.ws_connect(self.url, heartbeat=10) as ws:
                        self.connected, delay, self.problem = True, 0.5, ""
                        async for msg in ws:
                            if msg.type != aiohttp.WSMsgType.TEXT:
                                break
                            self.apply(json.loads(msg.data))
                except aiohttp.WSServerHandshakeError as exc:
                    if exc.status in (401, 403):
                        self.problem = "invalid token: use the dashboard URL celeris up printed (?token=...)"
                        self.connected = False
                        self.render_all()
                        return  # reconnecting with the same token cannot help
                    self.problem = f"the dashboard refused the connection ({exc.status})"
                except (aiohttp.ClientError, OSError) as exc:
                    self.problem = f"cannot reach {self.http_base} ({type(exc).__name__}); retrying"
                self.connected = False
                self.render_all()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def apply(self, msg: dict[str, Any]) -> None:
        self.messages += 1
        if msg.get("type") == "snapshot":
            self.values = dict(msg.get("data", {}))
        elif msg.get("type") == "update":
            self.values.update(msg.get("changes", {}))
            for path in msg.get("removed", []):
                self.values.pop(path, None)
        else:
            return
        self.render_all()

    def _symbols(self) -> list[str]:
        return sorted(p.split(".", 1)[1] for p in self.values if p.startswith("markets."))

    def render_all(self) -> None:
        if not self.is_running or not self.screen.is_mounted:
            return
        status = self.values.get("system.status", {})
        halted = " [b red]HALTED[/]" if status.get("halted") else ""
        conn = "[green]live[/]" if self.connected else f"[red]disconnected[/]{' · ' + self.problem if self.problem else ''}"
        confirm = "  [b yellow]Halt trading? press y to confirm[/]" if self.confirming else ""
        self.query_one("#status", Static).update(
            f" mode [b]{status.get('mode', '-')}[/]{halted} · uptime {status.get('uptime_s', '-')} s · {conn}{confirm}")
        positions = self.query_one("#positions", DataTable)
        positions.clear()
        for symbol, p in sorted(self.values.get("positions.all", {}).items()):
            positions.add_row(symbol, p["qty"], p["entry"], p["mark"], p["unrealized"])
        symbols = self._symbols()
        if symbols:
            symbol = symbols[self.symbol_index % len(symbols)]
            market = self.values[f"markets.{symbol}"]
            lines = [f"[b]{symbol}[/] ({market.get('state')})"]
            lines += [f"[red]{p:>12} {q:>10}[/]" for p, q in reversed(market.get("asks", [])[:5])]
            lines.append(f"  mid {market.get('mid', '')}")
            lines += [f"[green]{p:>12} {q:>10}[/]" for p, q in market.get("bids", [])[:5]]
            self.query_one("#book", Static).update("\n".join(lines))
        pnl = self.values.get("pnl.summary", {})
        account = self.values.get("account.summary", {})
        self.query_one("#pnl", Static).update(
            f"equity {account.get('equity', '-')}\ntotal {pnl.get('total', '-')}\nrealized {pnl.get('realized', '-')}\n"
            f"unrealized {pnl.get('unrealized', '-')}\ndaily {pnl.get('daily', '-')}\nfees {pnl.get('fees', '-')}")
        health = [f"{'[green]●[/]' if h.get('ready') else '[red]●[/]'} {path.split('.', 1)[1]}: {h.get('detail', '')}"
                  for path, h in sorted(self.values.items()) if path.startswith("health.")]
        self.query_one("#health", Static).update("\n".join(health))
        orders = self.query_one("#orders", DataTable)
        orders.clear()
        for o in self.values.get("orders.recent", [])[:12]:
            orders.add_row(o["symbol"], o["side"], o["price"], f"{o['filled']}/{o['qty']}", o["status"], o["strategy"])

    def action_next_symbol(self) -> None:
        self.symbol_index += 1
        self.render_all()

    def action_help(self) -> None:
        self.notify(HELP, title="Keys", timeout=6)

    def action_halt(self) -> None:
        self.confirming = True
        self.render_all()

    async def action_confirm(self) -> None:
        if not self.confirming:
            return
        self.confirming = False
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{self.http_base}/api/halt", json={"reason": "halted from the terminal dashboard",
                                                                       "by": "tui"},
                                    headers={"Authorization": f"Bearer {self.token}"}) as resp:
                self.notify("trading halted" if resp.status == 200 else f"halt failed: {resp.status}")
        self.render_all()


def register(sub: Any) -> None:
    p = sub.add_parser("tui", help="terminal dashboard (connects to a dashboard server)")
    p.add_argument("url", help="the dashboard URL with its token, as celeris up prints it: http://HOST:PORT/?token=...")
    p.set_defaults(func=cmd_tui)


def cmd_tui(args: Any) -> int:
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        print(f"error: {args.url!r} is not a dashboard URL (http://HOST:PORT/?token=...)", file=sys.stderr)
        return 2
    if not parse_qs(parts.query).get("token", [""])[0]:
        print("error: the URL has no ?token=...; use the dashboard URL celeris up printed", file=sys.stderr)
        return 2
    DashboardApp(args.url).run()
    return 0
