"""The simulated venue's order REST endpoints: new, query, cancel, open and all orders, batches, trades.

Owns the TRADE / USER_DATA order answers: /fapi/v1/order (POST, GET, DELETE, PUT), openOrders / openOrder /
allOrders, allOpenOrders, orderAmendment (an order's modification history), batchOrders (place up to 5, cancel
up to 10, one answer per element in request order) and userTrades; `cumQty` only in new/cancel answers and
`time` only in query answers, as the venue does. The engine decides; these handlers read parameters and shape answers.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from celeris.exchange_sim import params as strict
from celeris.exchange_sim.auth_weights import UnknownStatus
from celeris.exchange_sim.engine import Account, MatchingEngine, SimOrder, VenueError


class OrderRoutes:
    """Part of SimVenue: the signed order endpoints."""

    engine: MatchingEngine
    faults: Any
    stats: dict[str, int]
    probe: Any

    if TYPE_CHECKING:  # members of SimVenue and its other parts this one uses
        async def _signed(self, request: web.Request) -> tuple[Account, dict[str, str]]: ...
        def _count_order(self) -> None: ...
        async def _flush_users(self) -> None: ...

    async def new_order(self, request: web.Request) -> web.Response:
        received_ns = time.perf_counter_ns()  # request line and headers parsed (the latency probe's stamp)
        account, params = await self._signed(request)
        body = await self._place_order(account, params, received_ns)
        if self.faults.rest_unknown_503 > 0:
            self.faults.rest_unknown_503 -= 1
            raise UnknownStatus()
        return web.json_response(body)

    async def amend_order(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        return web.json_response(await self._amend_order(account, params))

    # The order operations themselves, shared by REST and the WebSocket API (ws_api.py): one place decides.
    async def _place_order(self, account: Account, params: dict[str, str], received_ns: int) -> dict[str, Any]:
        if self.probe is not None:
            self.probe.on_order(received_ns, params.get("symbol", ""))
        self._count_order()
        order = self.engine.place(account, params)
        self.stats["orders"] += 1
        await self._flush_users()
        return self._answer(order, params)

    async def _amend_order(self, account: Account, params: dict[str, str]) -> dict[str, Any]:
        self._count_order()  # the venue counts a modification as an order (1 on 10 s, 1 on 1 min)
        try:
            order = self.engine.amend(account, params)
        finally:  # a refused amendment may still have cancelled the order: its event goes out now
            await self._flush_users()
        return self._answer(order)

    async def _cancel_order(self, account: Account, params: dict[str, str]) -> dict[str, Any]:
        order = self.engine.cancel(account, params.get("symbol", ""), strict.optional_integer(params, "orderId"),
                                   params.get("origClientOrderId"))
        await self._flush_users()
        return self._answer(order)

    def _query_order(self, account: Account, params: dict[str, str]) -> dict[str, Any]:
        if not params.get("symbol"):
            raise VenueError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        order = self._find(account, params)
        if order is None:
            raise VenueError(-2013, "Order does not exist.")
        body = self.engine.order_json(order)
        body["time"] = order.time_ms
        return body

    async def order_amendments(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/orderAmendment: one order's modification history (by orderId or origClientOrderId),
        oldest first, within startTime / endTime, at most `limit` (default 50, at most 100)."""
        account, params = await self._signed(request)
        order = self._find(account, dict(params, symbol=strict.required(params, "symbol")))
        start, end = strict.optional_integer(params, "startTime"), strict.optional_integer(params, "endTime")
        limit = min(_limit(params, 50), 100)
        if order is None:
            return web.json_response([])
        out = [a for a in account.amendments if a["orderId"] == order.order_id
               and (start is None or a["time"] >= start) and (end is None or a["time"] <= end)]
        return web.json_response(out[:limit])

    async def batch_amend(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        amends = _batch(params)
        out: list[dict[str, Any]] = []
        for spec in amends:
            try:
                self._count_order()
                order = self.engine.amend(account, _element(spec))
                out.append(self._answer(order))
            except VenueError as exc:
                out.append(exc.body())
        await self._flush_users()
        return web.json_response(out)

    def _answer(self, order: SimOrder, placed: dict[str, str] | None = None) -> dict[str, Any]:
        """An order as place, amend and cancel answer it (the query answers add `time` instead of cumQty). A
        placement's answer follows its newOrderRespType: ACK (the default) is the order as accepted -- NEW,
        nothing executed, its fills follow on the user stream --, RESULT the order as it ended."""
        if placed is not None and (placed.get("newOrderRespType") or "ACK") == "ACK":
            order = dataclasses.replace(order, status="NEW", filled_steps=0, filled_quote=0, update_ms=order.time_ms)
        body = self.engine.order_json(order)
        body["cumQty"] = body["executedQty"]
        return body

    def _find(self, account: Account, params: dict[str, str]) -> SimOrder | None:
        return self.engine.find(account, params.get("symbol", ""), strict.optional_integer(params, "orderId"),
                                params.get("origClientOrderId"))

    async def query_order(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        return web.json_response(self._query_order(account, params))

    async def cancel_order(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        return web.json_response(await self._cancel_order(account, params))

    async def open_orders(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        symbol = params.get("symbol")
        if symbol:
            self.engine.instrument(symbol)
        out = []
        for order in account.orders.values():
            if order.is_open and (not symbol or order.symbol == symbol):
                body = self.engine.order_json(order)
                body["time"] = order.time_ms
                out.append(body)
        return web.json_response(out)

    async def open_order(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        order = self._find(account, params)
        if order is None or not order.is_open:
            raise VenueError(-2013, "Order does not exist.")
        body = self.engine.order_json(order)
        body["time"] = order.time_ms
        return web.json_response(body)

    async def all_orders(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        symbol = params.get("symbol", "")
        self.engine.instrument(symbol)
        out = [dict(self.engine.order_json(o), time=o.time_ms) for o in account.orders.values() if o.symbol == symbol]
        return web.json_response(out[-_limit(params, 500):])

    async def cancel_all(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        self.engine.cancel_all(account, params.get("symbol", ""))
        await self._flush_users()
        return web.json_response({"code": 200, "msg": "The operation of cancel all open order is done."})

    async def countdown_cancel_all(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        symbol = strict.required(params, "symbol")
        countdown = strict.required_integer(params, "countdownTime")
        self.engine.set_countdown(account, symbol, countdown)
        return web.json_response({"symbol": symbol, "countdownTime": str(countdown)})

    async def batch_orders(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        orders = _batch(params)
        out: list[dict[str, Any]] = []
        for spec in orders:
            try:
                self._count_order()
                element = _element(spec)
                order = self.engine.place(account, element)
                out.append(self._answer(order, element))
            except VenueError as exc:
                out.append(exc.body())
        await self._flush_users()
        return web.json_response(out)

    async def batch_cancel(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        lowered = {k.lower(): v for k, v in params.items()}
        ids = lowered.get("orderidlist")
        client_ids = lowered.get("origclientorderidlist")
        targets = [(i, None) for i in _id_list(ids)] if ids else [(None, c) for c in _client_id_list(client_ids)]
        if len(targets) > 10:
            raise VenueError(-4083, "Invalid number of batch cancel orders.")
        out: list[dict[str, Any]] = []
        for oid, cid in targets:
            try:
                order = self.engine.cancel(account, params.get("symbol", ""), oid, cid)
                out.append(self.engine.order_json(order))
            except VenueError as exc:
                out.append(exc.body())
        await self._flush_users()
        return web.json_response(out)

    async def user_trades(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        symbol = params.get("symbol", "")
        self.engine.instrument(symbol)
        trades = [t for t in account.trades if t["symbol"] == symbol]
        return web.json_response(trades[-_limit(params, 500):])

    async def income(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/income: the account's income records, filtered as the venue filters them."""
        account, params = await self._signed(request)
        start, end = strict.optional_integer(params, "startTime"), strict.optional_integer(params, "endTime")
        records = [r for r in account.income
                   if (not params.get("incomeType") or r["incomeType"] == params["incomeType"])
                   and (not params.get("symbol") or r["symbol"] == params["symbol"])
                   and (start is None or r["time"] >= start) and (end is None or r["time"] <= end)]
        limit = min(_limit(params, 100), 1000)
        return web.json_response(records[:limit] if start is not None else records[-limit:])


def _batch(params: dict[str, str]) -> list[dict[str, Any]]:
    """The `batchOrders` parameter: a JSON list of at most five objects."""
    try:
        specs = json.loads(params.get("batchOrders", ""))
        assert isinstance(specs, list) and all(isinstance(o, dict) for o in specs)
    except (ValueError, AssertionError):
        raise VenueError(-1102, "Mandatory parameter 'batchOrders' was not sent, was empty/null, "
                                "or malformed.") from None
    if len(specs) > 5:
        raise VenueError(-4082, "Invalid number of batch place orders.")
    return specs


def _element(spec: dict[str, Any]) -> dict[str, str]:
    """One batch element's values as the order logic reads parameters: JSON booleans as true/false, every
    other value as its text (a JSON number 0.01 reads as "0.01"; null, lists and objects read as junk)."""
    return {str(k): ("true" if v else "false") if isinstance(v, bool) else str(v) for k, v in spec.items()}


def _limit(params: dict[str, str], default: int) -> int:
    limit = strict.optional_integer(params, "limit")
    return default if limit is None else max(1, limit)


def _id_list(text: str) -> list[int]:
    """orderIdList: a JSON list of order ids, each a JSON integer (or its digits as a string)."""
    try:
        ids = json.loads(text)
    except (ValueError, RecursionError):
        raise strict.malformed("orderIdList") from None
    if not isinstance(ids, list):
        raise strict.malformed("orderIdList")
    out = []
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, (int, str)):
            raise strict.illegal("orderIdList", strict.INTEGER_RANGE)
        out.append(strict.integer("orderIdList", str(i)))
    return out


def _client_id_list(text: str | None) -> list[str]:
    try:
        ids = json.loads(text or "")
    except (ValueError, RecursionError):
        raise strict.malformed("origClientOrderIdList") from None
    if not isinstance(ids, list) or not all(isinstance(c, str) for c in ids):
        raise strict.malformed("origClientOrderIdList")
    return ids
