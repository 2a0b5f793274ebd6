"""The simulated venue's Algo Order API endpoints (conditional orders since 2025-12), signed like every TRADE
/ USER_DATA endpoint.

Owns POST /fapi/v1/algoOrder (new), DELETE /fapi/v1/algoOrder (cancel by algoId or clientAlgoId: answered
{algoId, clientAlgoId, code "200", msg "success"}), GET /fapi/v1/algoOrder (query), GET
/fapi/v1/openAlgoOrders (symbol optional), GET /fapi/v1/allAlgoOrders (symbol required; algoId, startTime,
endTime, page, limit) and DELETE /fapi/v1/algoOpenOrders (cancel all of a symbol). The engine decides
(exchange_sim/algo.py); these handlers read parameters and shape answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from celeris.exchange_sim import params as strict
from celeris.exchange_sim.engine import Account, MatchingEngine, VenueError


class AlgoRoutes:
    """Part of SimVenue: the signed Algo Order API endpoints."""

    engine: MatchingEngine
    stats: dict[str, int]

    if TYPE_CHECKING:  # members of SimVenue and its other parts this one uses
        async def _signed(self, request: web.Request) -> tuple[Account, dict[str, str]]: ...
        def _count_order(self) -> None: ...
        async def _flush_users(self) -> None: ...

    async def new_algo_order(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        self._count_order()
        algo = self.engine.place_algo(account, params)
        self.stats["orders"] += 1
        await self._flush_users()
        return web.json_response(self.engine.algo_json(account, algo, placed=True))

    async def cancel_algo_order(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        algo = self.engine.cancel_algo(account, _algo_id(params), params.get("clientAlgoId"))
        await self._flush_users()
        return web.json_response({"algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "code": "200",
                                  "msg": "success"})

    async def query_algo_order(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        algo = self.engine.find_algo(account, _algo_id(params), params.get("clientAlgoId"))
        if algo is None:
            raise VenueError(-2013, "Order does not exist.")
        return web.json_response(self.engine.algo_json(account, algo))

    async def open_algo_orders(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        symbol = params.get("symbol")
        if symbol:
            self.engine.instrument(symbol)
        algo_type = params.get("algoType")
        if algo_type and algo_type != "CONDITIONAL":
            raise VenueError(-1130, "Data sent for parameter 'algoType' is not valid.")
        algo_id = _algo_id(params)
        out = [self.engine.algo_json(account, a) for a in account.algo_orders.values()
               if a.status.is_open and (not symbol or a.symbol == symbol) and (algo_id is None or a.algo_id == algo_id)]
        return web.json_response(out)

    async def all_algo_orders(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        symbol = params.get("symbol")
        if not symbol:
            raise VenueError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        self.engine.instrument(symbol)
        limit, page = _int(params, "limit"), _int(params, "page")
        limit, page = 500 if limit is None else limit, 1 if page is None else page
        if not 1 <= limit <= 1000 or page < 1:
            raise VenueError(-1130, "Data sent for parameter 'limit' is not valid.")
        start, end, algo_id = _int(params, "startTime"), _int(params, "endTime"), _algo_id(params)
        if start is not None and end is not None and start > end:
            raise VenueError(-1023, "Start time is greater than end time.")
        chosen = [a for a in account.algo_orders.values() if a.symbol == symbol
                  and (algo_id is None or a.algo_id >= algo_id)
                  and (start is None or a.create_ms >= start) and (end is None or a.create_ms <= end)]
        if algo_id is None and start is None and end is None:
            window = chosen[-limit:]  # without a start: the most recent, as allOrders answers
        else:
            window = chosen[(page - 1) * limit: page * limit]
        return web.json_response([self.engine.algo_json(account, a) for a in window])

    async def cancel_all_algo_orders(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        symbol = params.get("symbol")
        if not symbol:
            raise VenueError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        self.engine.cancel_all_algos(account, symbol)
        await self._flush_users()
        return web.json_response({"code": 200, "msg": "The operation of cancel all open order is done."})


_int = strict.optional_integer


def _algo_id(params: dict[str, str]) -> int | None:
    return _int(params, "algoId")
