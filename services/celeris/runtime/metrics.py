"""Prometheus metrics: one registry per process and an aiohttp /metrics endpoint on it.

Engines receive the registry (no module-level metrics), so tests can build isolated ones.
"""

from __future__ import annotations

from typing import Any, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class TaskRestarts:
    """celeris_task_restarts_total{task}: long-lived tasks that failed and were started again."""

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        from celeris.transport import tasks

        family = CounterMetricFamily("celeris_task_restarts", "Long-lived tasks that failed and were restarted",
                                     labels=["task"])
        for name, count in sorted(tasks.failures.items()):
            family.add_metric([name], count)
        yield family

    def describe(self) -> Any:
        return []


def new_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(TaskRestarts())
    return registry


def metrics_app(registry: CollectorRegistry, health: Callable[[], dict[str, Any]] | None = None) -> web.Application:
    """/metrics, /healthz (process alive) and, when given, /health (the component's own document;
    503 unless its "status" is "ok")."""
    async def handle_metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def handle_health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def handle_component_health(_: web.Request) -> web.Response:
        assert health is not None
        doc = health()
        return web.json_response(doc, status=200 if doc.get("status") == "ok" else 503)

    app = web.Application()
    app.router.add_get("/metrics", handle_metrics)
    app.router.add_get("/healthz", handle_health)
    if health is not None:
        app.router.add_get("/health", handle_component_health)
    return app


async def start_metrics_server(registry: CollectorRegistry, host: str, port: int,
                               health: Callable[[], dict[str, Any]] | None = None) -> tuple[web.AppRunner, int]:
    """Serve /metrics (and /health); returns the runner and the bound port (port 0 picks one)."""
    runner = web.AppRunner(metrics_app(registry, health), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = site._server.sockets if site._server else []  # aiohttp exposes no public getter
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, bound
