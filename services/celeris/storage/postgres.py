"""PostgreSQL (and TimescaleDB when the extension exists): connection, migrations, hypertables.

Owns applying the SQL files in storage/migrations in order (recorded in `schema_migrations`) and turning
time-series tables into hypertables when TimescaleDB is available; plain tables otherwise.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
HYPERTABLES = {"book_snapshots": "ts", "trades": "ts", "balance_snapshots": "ts", "pnl_snapshots": "ts"}


async def connect_pool(dsn: str, min_size: int = 1, max_size: int = 5) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)


async def migrate(pool: Any) -> dict[str, Any]:
    """Apply pending migrations; returns {"applied": [...], "timescaledb": bool}."""
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, "
                           "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        applied = []
        for path in sorted(MIGRATIONS.glob("*.sql")):
            if path.name in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", path.name)
            applied.append(path.name)
        timescale = await _enable_timescale(conn)
    return {"applied": applied, "timescaledb": timescale}


async def _enable_timescale(conn: Any) -> bool:
    available = await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
    if not available:
        return False
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        for table, column in HYPERTABLES.items():
            await conn.execute(f"SELECT create_hypertable('{table}', '{column}', if_not_exists => TRUE, "
                               f"migrate_data => TRUE)")
        return True
    except asyncpg.PostgresError as exc:  # e.g. not preloaded: keep plain tables, say so
        log.warning("TimescaleDB present but not usable (%s); using plain tables", exc)
        return False
