"""Storage adapters: PostgreSQL/TimescaleDB (asyncpg), Redis, and their SQL migrations."""
