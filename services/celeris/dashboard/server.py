"""The dashboard server: aggregated state over WebSocket to web and terminal clients, and a small action API.

Owns client connections (FR-DS-002..005): token authentication (off only when explicitly configured), a
maximum number of clients, the full state on connect and then changed paths only, per-client channel
subscriptions, MessagePack by default and JSON with ?format=json, heartbeats, dead clients dropped by
ping/pong. The HTTP API halts and resumes trading and acknowledges alerts (token required). It also serves
the built web dashboard. State comes from a source (in-process engines, or the services' gRPC streams).

Pushes follow changes, coalesced: the first change after a push schedules the next one, no sooner than
`push_interval_ms` after the previous (so a change waits at most that long, and a burst of any size is
at most 1000/push_interval_ms pushes a second to each client). A push computes and encodes each distinct
update once (clients at the same version, channels and format share the bytes). Each client has a writer
with a mailbox of one message: a client whose previous message is still being written is skipped and gets
everything it missed, coalesced, when it is free; one stuck longer than `slow_client_timeout_ms` is
dropped. So a client that does not read costs one message and its socket's buffers, and never delays the
others.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol

import msgspec
from aiohttp import WSMsgType, web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from celeris.dashboard.state import CHANNELS, DashboardState

log = logging.getLogger(__name__)

WEB_DIST = Path(__file__).resolve().parents[3] / "web" / "dist"
CLIENT_KINDS = ("tui", "web")


class Actions(Protocol):
    async def halt(self, reason: str, by: str) -> dict[str, Any]: ...
    async def resume(self, by: str) -> dict[str, Any]: ...
    async def acknowledge(self, alert_id: str, by: str) -> bool: ...


REFRESH_INTERVAL_NS = 1_000_000_000
"""A client's refresh (a full snapshot for it alone) is granted at most this often; more are ignored: the
pushes keep it current meanwhile."""

@dataclass(eq=False)
class Client:
    ws: web.WebSocketResponse
    kind: str
    binary: bool
    channels: set[str] | None
    transport: asyncio.BaseTransport | None = None
    sent_version: int = 0
    sent: int = 0
    skipped: int = 0
    """Pushes this client missed because its previous message was still being written."""
    needs_snapshot: bool = True
    last_refresh_ns: int = 0
    """When this client last asked for a refresh that was granted (one a second: a snapshot is encoded for
    it alone, so a client spamming refresh would cost the process a snapshot per push)."""
    outbox: tuple[str, bytes | str] | None = None
    """The one message waiting for the writer: (type, encoded). Never more than one."""
    busy_since: float = 0.0
    """Loop time when the message being written was handed over; 0.0 when the writer is idle."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    writer: asyncio.Task[None] | None = None

    @property
    def free(self) -> bool:
        return self.outbox is None and not self.busy_since


@dataclass
class DashboardConfig:
    token: str = ""
    auth_disabled: bool = False
    max_clients: int = 100
    heartbeat_ms: int = 5000
    ws_ping_s: float = 10.0
    static_dir: Path = WEB_DIST
    push_interval_ms: int = 20
    """Minimum time between two pushes (20 ms: a change reaches a client within ~20 ms plus the write, and no
    client gets more than 50 pushes a second however fast the state changes)."""
    slow_client_timeout_ms: int = 5000
    """A client whose message has not been written for this long (it does not read) is disconnected."""


@dataclass
class DashboardMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.clients = Gauge("dashboard_clients_connected", "Connected clients", ["kind"], registry=r)
        self.messages = Counter("dashboard_messages_sent_total", "Messages sent", ["type"], registry=r)
        self.staleness = Histogram("dashboard_update_staleness_ms", "Source change to send, milliseconds",
                                   buckets=(5, 10, 25, 50, 100, 250, 500, 1000), registry=r)
        self.rejected = Counter("dashboard_clients_rejected_total", "Refused connections", ["reason"], registry=r)
        self.pushes = Counter("dashboard_pushes_total", "Push rounds (each encodes each distinct update once)",
                              registry=r)
        self.skipped = Counter("dashboard_client_skips_total", "Pushes a busy (slow) client missed", registry=r)
        self.dropped = Counter("dashboard_clients_dropped_total", "Clients disconnected for not reading",
                               registry=r)


class DashboardServer:
    def __init__(self, state: DashboardState, actions: Actions | None, config: DashboardConfig,
                 now_ns: Callable[[], int] = time.time_ns, metrics: DashboardMetrics | None = None) -> None:
        if not config.token and not config.auth_disabled:
            raise ValueError("a dashboard token is required (or auth_disabled=True, explicitly)")
        self.state = state
        self.actions = actions
        self.config = config
        self.now_ns = now_ns
        self.metrics = metrics or DashboardMetrics()
        self.clients: list[Client] = []
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._json = msgspec.json.Encoder()
        self._msgpack = msgspec.msgpack.Encoder()
        self.sources: list[Any] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._push_handle: asyncio.Handle | None = None
        self._last_push = float("-inf")
        self.push_count = 0
        self._sent_counters: dict[str, Any] = {}

    @classmethod
    def for_system(cls, system: Any, token: str, registry: CollectorRegistry | None = None,
                   **config: Any) -> DashboardServer:
        """A server fed by an in-process system (celeris up); its metrics join `registry` (the system's)."""
        from celeris.dashboard.sources import InProcessSource, SystemActions

        state = DashboardState()
        server = cls(state, SystemActions(system), DashboardConfig(token=token, **config),
                     now_ns=system.clock.now_ns,
                     metrics=DashboardMetrics(registry) if registry is not None else None)
        server.sources.append(InProcessSource(system, state))
        return server

    # -- lifecycle ------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/api/state", self._api_state)
        app.router.add_post("/api/halt", self._api_halt)
        app.router.add_post("/api/resume", self._api_resume)
        app.router.add_post("/api/alerts/{alert_id}/ack", self._api_ack)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        if (self.config.static_dir / "index.html").exists():
            app.router.add_get("/", self._index)
            app.router.add_static("/assets", self.config.static_dir / "assets", show_index=False)
        else:
            app.router.add_get("/", self._not_built)
        return app

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "clients": len(self.clients)})

    async def _not_built(self, request: web.Request) -> web.Response:
        return web.Response(text="web dashboard not built: run scripts/install (npm run build in web/)", status=503)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._loop = asyncio.get_running_loop()
        self.state.on_change = self.schedule_push
        for source in self.sources:
            await source.start()
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name="dashboard-heartbeat"))
        sockets = site._server.sockets if site._server else []  # aiohttp exposes no public getter
        return sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.state.on_change == self.schedule_push:
            self.state.on_change = None
        if self._push_handle is not None:
            self._push_handle.cancel()
            self._push_handle = None
        for task in self._tasks:
            task.cancel()
        for source in self.sources:
            await source.stop()
        for client in list(self.clients):
            if client.writer is not None:
                client.writer.cancel()
            try:  # a client that does not read would hold the close frame (and the shutdown) forever
                await asyncio.wait_for(client.ws.close(), 2.0)
            except (asyncio.TimeoutError, ConnectionResetError, RuntimeError):
                if client.transport is not None:
                    client.transport.abort()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- auth -----------------------------------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        if self.config.auth_disabled:
            return True
        supplied = request.query.get("token", "")
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            supplied = header[7:]
        supplied = request.headers.get("X-Celeris-Token", supplied)
        try:
            return bool(supplied) and hmac.compare_digest(supplied.encode(), self.config.token.encode())
        except UnicodeEncodeError:  # not even a string a token could be
            return False

    # -- WebSocket ------------------------------------------------------------------------------
    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            self.metrics.rejected.labels("auth").inc()
            return web.json_response({"error": "missing or wrong token"}, status=401)
        if len(self.clients) >= self.config.max_clients:
            self.metrics.rejected.labels("full").inc()
            return web.json_response({"error": "too many clients"}, status=503)
        kind = request.query.get("client", "web")
        if kind not in CLIENT_KINDS:
            return web.json_response({"error": "client must be web or tui"}, status=400)
        # No per-message deflate: it would compress every push once per client (the bytes are shared), and
        # the dashboard's messages are small and local.
        ws = web.WebSocketResponse(heartbeat=self.config.ws_ping_s, max_msg_size=1 << 16, compress=False)
        await ws.prepare(request)
        channels = request.query.get("channels")
        client = Client(ws, kind, request.query.get("format", "msgpack") != "json",
                        set(channels.split(",")) & set(CHANNELS) if channels else None, request.transport)
        client.writer = asyncio.create_task(self._writer(client), name="dashboard-client-writer")
        self.clients.append(client)
        self.metrics.clients.labels(kind).inc()
        self.schedule_push()  # the snapshot goes with the next push
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._client_message(client, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await self._client_message(client, msg.data.decode(errors="replace"))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.clients.remove(client)
            self.metrics.clients.labels(kind).dec()
            client.writer.cancel()
        return ws

    async def _client_message(self, client: Client, text: str) -> None:
        try:
            msg = json.loads(text)
            kind = msg["type"]
        except (ValueError, KeyError, TypeError):
            await self._send(client, {"type": "error", "message": "expected a JSON object with a type"})
            return
        if kind in ("subscribe", "unsubscribe"):
            requested = set(msg.get("channels", [])) & set(CHANNELS)
            current = set(CHANNELS) if client.channels is None else set(client.channels)
            client.channels = current | requested if kind == "subscribe" else current - requested
            client.needs_snapshot = True  # the new channels' state arrives as a snapshot
            self.schedule_push()
        elif kind == "refresh":
            now = self.now_ns()
            if now - client.last_refresh_ns >= REFRESH_INTERVAL_NS:
                client.last_refresh_ns = now
                client.needs_snapshot = True
                self.schedule_push()
        elif kind == "ping":
            await self._send(client, {"type": "pong", "ts": self.now_ns() // 1_000_000})
        else:
            await self._send(client, {"type": "error", "message": f"unknown message type {kind!r}"})

    async def _send(self, client: Client, payload: dict[str, Any]) -> None:
        """A direct reply (pong, error) from the client's reader; pushes go through its writer."""
        data = self._encode(client.binary, payload)
        if isinstance(data, bytes):
            await client.ws.send_bytes(data)
        else:
            await client.ws.send_str(data)
        client.sent += 1
        self.metrics.messages.labels(payload["type"]).inc()

    def _encode(self, binary: bool, payload: dict[str, Any]) -> bytes | str:
        return self._msgpack.encode(payload) if binary else self._json.encode(payload).decode()

    # -- pushing --------------------------------------------------------------------------------
    def schedule_push(self) -> None:
        """The state changed (or a client needs something): push at the earliest moment the interval allows.

        Called by the state on every change, so it is O(1) and idempotent; the push itself runs on the loop,
        after the code that made the change has returned (changes made together go together).
        """
        if self._push_handle is not None or self._loop is None:
            return
        delay = self._last_push + self.config.push_interval_ms / 1000 - self._loop.time()
        self._push_handle = self._loop.call_later(max(0.0, delay), self._push)

    def _push(self) -> None:
        """One push round: every free client behind the state gets one message; each distinct one encoded once."""
        self._push_handle = None
        assert self._loop is not None
        now = self._loop.time()
        self._last_push = now
        self.state.flush()
        version = self.state.version
        timeout = self.config.slow_client_timeout_ms / 1000
        encoded: dict[tuple[int, frozenset[str] | None, bool], tuple[dict[str, Any], bytes | str] | None] = {}
        now_ns = self.now_ns()
        skipped = 0
        for client in self.clients:
            if not client.free:
                if client.busy_since and now - client.busy_since > timeout:
                    self._drop(client)
                elif client.needs_snapshot or client.sent_version < version:
                    client.skipped += 1
                    skipped += 1
                continue
            if client.needs_snapshot:
                client.needs_snapshot = False
                snapshot = {"type": "snapshot", "seq": version, "ts": now_ns // 1_000_000,
                            "channels": sorted(client.channels) if client.channels is not None else list(CHANNELS),
                            "data": self.state.snapshot(client.channels)}
                client.sent_version = version
                self._hand(client, "snapshot", self._encode(client.binary, snapshot))
                continue
            if client.sent_version >= version:
                continue
            key = (client.sent_version, frozenset(client.channels) if client.channels is not None else None,
                   client.binary)
            if key not in encoded:
                changes, removed, oldest = self.state.changes_since(client.sent_version, client.channels)
                if not changes and not removed:
                    encoded[key] = None
                else:
                    if oldest:
                        self.metrics.staleness.observe((now_ns - oldest) / 1e6)
                    update = {"type": "update", "seq": version, "ts": now_ns // 1_000_000,
                              "source_ts": oldest // 1_000_000, "changes": changes, "removed": removed}
                    encoded[key] = (update, self._encode(client.binary, update))
            client.sent_version = version
            entry = encoded[key]
            if entry is not None:
                self._hand(client, "update", entry[1])
        self.push_count += 1
        self.metrics.pushes.inc()
        if skipped:
            self.metrics.skipped.inc(skipped)

    def _hand(self, client: Client, kind: str, data: bytes | str) -> None:
        client.outbox = (kind, data)
        client.busy_since = self._loop.time() if self._loop is not None else 1.0
        client.wake.set()

    def _drop(self, client: Client) -> None:
        """A client that has not taken its message for too long: cut it off (its reader ends and removes it)."""
        log.warning("dashboard client dropped: its last message was not written for %d ms",
                    self.config.slow_client_timeout_ms)
        self.metrics.dropped.inc()
        client.outbox = None
        if client.writer is not None:
            client.writer.cancel()
        if client.transport is not None:
            client.transport.abort()

    async def _writer(self, client: Client) -> None:
        """Writes the client's one pending message; the only task that waits on this client's socket."""
        try:
            while True:
                await client.wake.wait()
                client.wake.clear()
                item, client.outbox = client.outbox, None
                if item is None:
                    client.busy_since = 0.0
                    continue
                kind, data = item
                if isinstance(data, bytes):
                    await client.ws.send_bytes(data)
                else:
                    await client.ws.send_str(data)
                client.sent += 1
                client.busy_since = 0.0
                sent = self._sent_counters.get(kind)
                if sent is None:
                    sent = self._sent_counters[kind] = self.metrics.messages.labels(kind)
                sent.inc()
                if client.needs_snapshot or client.sent_version < self.state.version:
                    self.schedule_push()  # it was skipped while writing: it catches up with the next push
        except (ConnectionResetError, RuntimeError):
            client.busy_since = 0.0
            await client.ws.close()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_ms / 1000)
            timeout = self.config.slow_client_timeout_ms / 1000
            for client in list(self.clients):
                if client.busy_since and self._loop is not None and self._loop.time() - client.busy_since > timeout:
                    self._drop(client)  # stuck while nothing changed (pushes check this too)
                elif client.free:
                    self._hand(client, "heartbeat", self._encode(client.binary, {
                        "type": "heartbeat", "seq": client.sent_version, "ts": self.now_ns() // 1_000_000}))

    # -- HTTP -----------------------------------------------------------------------------------
    async def _index(self, request: web.Request) -> web.Response:
        return web.FileResponse(self.config.static_dir / "index.html")

    async def _metrics(self, request: web.Request) -> web.Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return web.Response(body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _api_state(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": "missing or wrong token"}, status=401)
        return web.Response(body=self._json.encode({"seq": self.state.version, "data": self.state.snapshot()}),
                            content_type="application/json")

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            body = await request.json()
        except (ValueError, RecursionError):
            raise web.HTTPBadRequest(text="expected a JSON body") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="expected a JSON object")
        return body

    async def _guarded(self, request: web.Request, action: Callable[[dict[str, Any]], Awaitable[Any]]) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": "missing or wrong token"}, status=401)
        if self.actions is None:
            return web.json_response({"error": "this dashboard is read-only"}, status=501)
        body = await self._body(request)
        try:
            result = await action(body)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(result if isinstance(result, dict) else {"ok": bool(result)})

    async def _api_halt(self, request: web.Request) -> web.Response:
        return await self._guarded(request, lambda b: self.actions.halt(  # type: ignore[union-attr]
            str(b.get("reason") or "halted from the dashboard"), str(b.get("by") or "dashboard")))

    async def _api_resume(self, request: web.Request) -> web.Response:
        async def resume(body: dict[str, Any]) -> Any:
            if not body.get("by"):
                raise ValueError("resuming needs 'by': the person re-enabling trading")
            return await self.actions.resume(str(body["by"]))  # type: ignore[union-attr]
        return await self._guarded(request, resume)

    async def _api_ack(self, request: web.Request) -> web.Response:
        alert_id = request.match_info["alert_id"]

        async def ack(body: dict[str, Any]) -> Any:
            if not await self.actions.acknowledge(alert_id, str(body.get("by") or "dashboard")):  # type: ignore[union-attr]
                raise ValueError(f"no alert {alert_id}")
            return {"ok": True, "alert_id": alert_id}
        return await self._guarded(request, ack)
