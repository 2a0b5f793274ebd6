"""The risk manager's ports made real: the venue's account, Redis flag, PostgreSQL policies and audit,
and the emergency actions (execution through its control port, and the venue's REST API).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from decimal import Decimal
from typing import Any

from celeris.domain.clock import NS_PER_S
from celeris.domain.instruments import Instrument
from celeris.domain.margin import BracketTable
from celeris.domain.risk import Policy, PolicyKind, Scope
from celeris.risk.engine import HaltResult
from celeris.risk.metrics import AccountSnapshot
from celeris.venues.binance.account import read_account, read_leverage_brackets
from celeris.venues.binance.rest import BinanceRestClient

log = logging.getLogger(__name__)


class VenueAccountSource:
    """The account as the venue reports it: /fapi/v2/account (wallet, positions, leverage) + marks, parsed
    by celeris.venues.binance.account, and the leverage brackets (read on the first snapshot and again for
    a symbol whose leverage changed; unreadable -> exchangeInfo's flat rate, logged). One-way positions
    only: the risk rules are per symbol."""

    def __init__(self, rest: BinanceRestClient, instruments: dict[str, Instrument]) -> None:
        self.rest = rest
        self.instruments = instruments
        self.brackets: dict[str, BracketTable] = {}
        self._leverage: dict[str, int] | None = None

    async def snapshot(self) -> AccountSnapshot:
        account, marks = await read_account(self.rest, self.instruments)
        positions = {symbol: pos for (symbol, side), pos in account.positions.items() if side == "BOTH"}
        leverage = {symbol: account.leverage[symbol] for symbol in positions}
        if self._leverage is None:
            await self._read_brackets(None)
        else:
            for symbol in [s for s, lev in account.leverage.items() if self._leverage.get(s, lev) != lev]:
                await self._read_brackets(symbol)
        self._leverage = dict(account.leverage)
        return AccountSnapshot(account.total_wallet, positions, marks, leverage, account.open_order_margin,
                               brackets=self.brackets)

    async def leverage_brackets(self) -> dict[str, BracketTable]:
        """The venue's brackets (read once if no snapshot read them yet), for a paper account that trades the
        venue's symbols and must be judged on the venue's maintenance margin."""
        if self._leverage is None and not self.brackets:
            await self._read_brackets(None)
            self._leverage = {}
        return self.brackets

    async def _read_brackets(self, symbol: str | None) -> None:
        try:
            tables = await read_leverage_brackets(self.rest, symbol)
        except Exception as exc:
            log.warning("could not read the leverage brackets (%s); maintenance margin uses %s",
                        getattr(exc, "msg", "") or repr(exc),
                        "the previous ones" if self.brackets else "exchangeInfo's flat rate")
            return
        self.brackets.update({s: t for s, t in tables.items() if s in self.instruments})


class RedisTradingFlag:
    """The trading-disabled flag, in the key execution reads at start (celeris.execution.store)."""

    def __init__(self, redis: Any, key: str = "celeris:execution:trading_disabled") -> None:
        self.redis = redis
        self.key = key

    async def set(self, disabled: bool, reason: str) -> None:
        if disabled:
            await self.redis.set(self.key, reason or "emergency stop")
        else:
            await self.redis.delete(self.key)

    async def get(self) -> tuple[bool, str]:
        raw = await self.redis.get(self.key)
        return (raw is not None, raw.decode() if isinstance(raw, bytes) else (raw or ""))


class VenueEmergencyActions:
    """Halt (and flatten) through execution's control port (celeris.clients.execution_control in another
    process); the venue's REST API only counts open orders and, if execution does not answer, cancels
    them (a cancel never adds exposure)."""

    def __init__(self, rest: BinanceRestClient, instruments: dict[str, Instrument], execution: Any = None) -> None:
        self.rest = rest
        self.instruments = instruments
        self.execution = execution

    async def halt_execution(self, reason: str, flatten: bool) -> HaltResult:
        if self.execution is None:
            raise RuntimeError("no execution_target configured: execution cannot be halted from here")
        canceled, flat = await self.execution.halt(reason, flatten)
        return HaltResult(canceled, flat)

    async def resume_execution(self, by: str) -> None:
        if self.execution is not None:
            await self.execution.resume(by)

    async def open_order_count(self) -> int:
        return len(await self.rest.request("GET", "/fapi/v1/openOrders", signed=True, weight=40))

    async def cancel_all_orders(self) -> int:
        open_orders = await self.rest.request("GET", "/fapi/v1/openOrders", signed=True, weight=40)
        symbols = sorted({o["symbol"] for o in open_orders})
        await asyncio.gather(*(self.rest.request("DELETE", "/fapi/v1/allOpenOrders", {"symbol": s}, signed=True)
                               for s in symbols))
        return len(open_orders)


class PostgresPolicyStore:
    def __init__(self, pool: Any, seed: list[Policy] | None = None) -> None:
        self.pool = pool
        self.seed = seed or []

    async def load(self) -> list[Policy]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM risk_policies ORDER BY priority, name")
            if not rows and self.seed:
                for policy in self.seed:
                    await self._upsert(conn, policy)
                rows = await conn.fetch("SELECT * FROM risk_policies ORDER BY priority, name")
        return [Policy(r["name"], r["metric"], r["operator"], _decimal_text(r["threshold"]), PolicyKind(r["kind"]),
                       Scope(r["scope"]), r["scope_id"], r["enabled"], r["priority"]) for r in rows]

    async def upsert(self, policy: Policy) -> None:
        async with self.pool.acquire() as conn:
            await self._upsert(conn, policy)

    async def _upsert(self, conn: Any, policy: Policy) -> None:
        await conn.execute(
            "INSERT INTO risk_policies (name, metric, operator, threshold, kind, scope, scope_id, enabled, priority) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (name) DO UPDATE SET metric=$2, operator=$3, "
            "threshold=$4, kind=$5, scope=$6, scope_id=$7, enabled=$8, priority=$9, updated_at=now()",
            policy.name, policy.metric, policy.operator, Decimal(policy.threshold), policy.kind.value,
            policy.scope.value, policy.scope_id, policy.enabled, policy.priority)

    async def delete(self, name: str) -> bool:
        async with self.pool.acquire() as conn:
            result = await conn.execute("DELETE FROM risk_policies WHERE name = $1", name)
        return result.endswith(" 1")


def _decimal_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


class PostgresAudit:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def check(self, record: dict[str, Any]) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO pre_trade_checks (ts, request_id, symbol, side, quantity, price, approved, violations, "
                "processing_time_us, leverage, margin_ratio) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
                _ts(record["ts_ns"]), record["request_id"], record["symbol"], record["side"],
                Decimal(record["quantity"]), Decimal(record["price"]), record["approved"],
                json.dumps(record["violations"]), record["processing_time_us"], Decimal(record["leverage"]),
                Decimal(record["margin_ratio"]))

    async def stop_started(self, record: dict[str, Any]) -> int:
        async with self.pool.acquire() as conn:
            return await conn.fetchval(
                "INSERT INTO emergency_stops (triggered_at, reason, triggered_by, account_state) "
                "VALUES ($1,$2,$3,$4) RETURNING id", _ts(record["triggered_at_ns"]), record["reason"],
                record["triggered_by"], json.dumps(record["account_state"]))

    async def stop_finished(self, stop_id: int, canceled: int, closed: int) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute("UPDATE emergency_stops SET orders_canceled=$2, positions_closed=$3, "
                               "completed_at=now() WHERE id=$1", stop_id, canceled, closed)

    async def re_enabled(self, stop_id: int, by: str) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute("UPDATE emergency_stops SET re_enabled_at=now(), re_enabled_by=$2 WHERE id=$1",
                               stop_id, by)


def _ts(ns: int) -> dt.datetime:
    seconds, rest_ns = divmod(ns, NS_PER_S)  # exact: a float of nanoseconds since 1970 loses microseconds
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc) + dt.timedelta(microseconds=rest_ns // 1000)
