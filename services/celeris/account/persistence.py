"""Account history and hot state: snapshots to PostgreSQL, the current account to Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from decimal import Decimal
from typing import Any

from celeris.account.engine import AccountMonitor
from celeris.domain.ratios import MONEY_PER_UNIT, money_decimal
from celeris.domain.values import MONEY_SCALE
from celeris.transport.tasks import supervised

log = logging.getLogger(__name__)

_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)


def _d(value: Decimal | int | None) -> Decimal:
    """A real-unit figure rounded half-even to MONEY_SCALE decimals, in the stores' canonical form."""
    return Decimal(round(Decimal(value or 0) / _QUANTUM)) / Decimal(MONEY_PER_UNIT)


def state_document(m: AccountMonitor) -> dict[str, Any]:
    """The account as JSON-able data (decimals as strings), for Redis and the dashboard."""
    pnl = m.pnl()
    return {
        "ts_ns": m.clock.now_ns(), "wallet": str(money_decimal(m.wallet)), "equity": str(_d(pnl["equity"])),
        "margin_ratio": str(_d(m.margin_ratio())),
        "positions": {f"{s}:{side}": {"qty": p.instrument.format_qty(p.qty_steps), "entry": str(money_decimal(p.entry_price_units())),
                                      "unrealized": str(_d(m.unrealized((s, side)))),
                                      "mark": str(_d(m.marks.get(s)))}
                      for (s, side), p in m.positions.items() if p.qty_steps},
        "pnl": {k: (str(_d(v)) if v is not None else None) for k, v in pnl.items()},
        "reconciliation": {"runs": m.recon.runs, "mismatches": m.recon.mismatches,
                           "worst_pct": str(_d(m.recon.worst_pct))},
    }


class AccountPersistence:
    def __init__(self, monitor: AccountMonitor, pool: Any = None, redis: Any = None, interval_s: float = 5.0) -> None:
        self.monitor = monitor
        self.pool = pool
        self.redis = redis
        self.interval_s = interval_s
        self.snapshots = 0
        self.errors = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = supervised("account-persistence", self._loop)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _loop(self) -> None:
        while True:
            try:
                await self.write_once()
            except Exception:
                self.errors += 1
                log.exception("account snapshot failed")
            await asyncio.sleep(self.interval_s)

    async def write_once(self) -> None:
        m = self.monitor
        if self.redis is not None:
            await self.redis.set("celeris:account:state", json.dumps(state_document(m)))
        if self.pool is None:
            return
        now = dt.datetime.fromtimestamp(m.clock.now_ns() / 1e9, tz=dt.timezone.utc)
        pnl = m.pnl()
        equity = _d(pnl["equity"])
        rows = [(now, "ALL", _d(pnl["realized"]), _d(pnl["unrealized"]), _d(pnl["total"]), _d(pnl["fees"]), equity)]
        for (symbol, side), pos in m.positions.items():
            if pos.qty_steps or m.realized_by_symbol.get(symbol):
                unrealized = _d(m.unrealized((symbol, side)))
                realized = money_decimal(m.realized_by_symbol.get(symbol, 0))
                rows.append((now, f"{symbol}" if side == "BOTH" else f"{symbol}:{side}", realized, unrealized,
                             realized + unrealized, Decimal(0), equity))
        async with self.pool.acquire() as conn:
            await conn.execute("INSERT INTO balance_snapshots (ts, asset, wallet_balance, equity) VALUES ($1,$2,$3,$4)",
                               now, "USDT", money_decimal(m.wallet), equity)
            await conn.copy_records_to_table("pnl_snapshots", records=rows, columns=[
                "ts", "symbol", "realized_pnl", "unrealized_pnl", "total_pnl", "total_fees", "equity"])
        self.snapshots += 1
