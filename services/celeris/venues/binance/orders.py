"""Execution's order venue for Binance USD-M: orders over REST (new orders over the WebSocket API when one
and cancels and amends over the WebSocket API when one is configured and connected), their events from the user data stream, and the venue's answers (orders,
trades, positions, balance) parsed into the domain's values.

The whole order surface: place, amend (PUT /fapi/v1/order), batches (POST/PUT/DELETE /fapi/v1/batchOrders),
and conditional and trailing orders through the Algo Order API (POST/DELETE/GET /fapi/v1/algoOrder,
openAlgoOrders, ALGO_UPDATE); the parameters and shapes are in order_wire.py. With `ws_api_url` a new
non-algo order is one `order.place` frame on the open WebSocket API connection (ws_api.py), the hot path,
and so are a cancel (`order.cancel`) and an amendment (`order.modify`, a requote's other half); while that
connection is down they go over REST, never over both. The answers have the REST endpoints' fields and are
parsed by the same code. Batches, queries (an unknown outcome is resolved over the other transport) and
algo orders stay on REST.

It implements celeris.execution.venue.OrderVenue without importing it (the port is a Protocol): the
venue package knows the domain and Binance, never an engine.
"""


from __future__ import annotations

import json
import logging
from fractions import Fraction
from typing import Any, Awaitable, Callable

from celeris.domain.clock import Clock
from celeris.domain.funding import MARGIN_ASSET, asset_units
from celeris.domain.instruments import Instrument
from celeris.domain.orders import Order
from celeris.domain.values import Side, money, parse_decimal, to_units
from celeris.domain.messages import BatchResult, Execution, VenueOrderEvent, VenueOrderState
from celeris.venues.binance import codec, errors, order_wire
from celeris.venues.binance.deadman import DeadMansSwitch
from celeris.venues.binance.rest import BinanceRestClient
from celeris.venues.binance.streams import StreamConfig
from celeris.venues.binance.userstream import UserDataStream
from celeris.venues.binance.ws_api import WsApiClient

log = logging.getLogger(__name__)

OnEvent = Callable[[VenueOrderEvent], None]
OnReconnect = Callable[[], Awaitable[None]]


_EXECUTIONS = {"NEW": Execution.NEW, "TRADE": Execution.TRADE, "CALCULATED": Execution.TRADE,
               "CANCELED": Execution.CANCELED, "EXPIRED": Execution.EXPIRED, "REJECTED": Execution.REJECTED,
               "AMENDMENT": Execution.AMENDMENT}


class BinanceOrderVenue:
    name = "live"

    def __init__(self, rest: BinanceRestClient, ws_url: str, instruments: dict[str, Instrument], clock: Clock,
                 keepalive_s: float = 30 * 60, stream_config: StreamConfig | None = None,
                 cancel_all_after_ms: int = 0, ws_api_url: str = "", ws_api: WsApiClient | None = None) -> None:
        self.rest = rest
        self.ws_api = ws_api or (WsApiClient(ws_api_url, rest) if ws_api_url else None)
        """New orders go over it while it is connected (`ws_api_url`: the venue's WebSocket API, optional)."""
        self.orders_over_ws_api = 0
        self.orders_over_rest = 0
        self.cancels_over_ws_api = 0
        self.amends_over_ws_api = 0
        self.deadman = DeadMansSwitch(rest, list(instruments), cancel_all_after_ms, clock)
        """Armed before the first order is sent (deadman.py): the venue cancels our orders if we die."""
        self.instruments = instruments
        self.clock = clock
        self._on_event: OnEvent | None = None
        self._on_reconnect: OnReconnect | None = None
        self._actual: dict[str, int] = {}
        """A triggered algo order's client id -> the actual order's id (it is cancelled by that id)."""
        self.user_stream = UserDataStream(rest, ws_url, self._on_user_event, self._reconnected, keepalive_s,
                                          stream_config)

    @property
    def listen_key(self) -> str:
        return self.user_stream.listen_key

    @property
    def listen_key_renewals(self) -> int:
        return self.user_stream.renewals

    async def start(self, on_event: OnEvent, on_reconnect: OnReconnect) -> None:
        await self.check_position_mode()
        self._on_event, self._on_reconnect = on_event, on_reconnect
        await self.user_stream.start()
        if self.ws_api is not None:
            await self.ws_api.start()

    async def check_position_mode(self) -> None:
        await check_position_mode(self.rest)

    async def stop(self) -> None:
        await self.deadman.stop()
        await self.user_stream.stop()
        if self.ws_api is not None:
            await self.ws_api.stop()

    async def _reconnected(self) -> None:
        if self._on_reconnect is not None:
            await self._on_reconnect()  # fills may have happened while we were away

    def _on_user_event(self, event: codec.UserEvent) -> None:
        if self._on_event is None:
            return
        converted: VenueOrderEvent | None = None
        if isinstance(event, codec.OrderTradeUpdate):
            converted = self._convert(event)
        elif isinstance(event, codec.AlgoUpdate):
            ins = self.instruments.get(event.o.s)
            converted = order_wire.algo_event(event, ins) if ins is not None else None
            if converted is not None and converted.venue_order_id:
                self._actual[event.o.caid] = converted.venue_order_id
        if converted is not None:
            self._on_event(converted)

    def _convert(self, event: codec.OrderTradeUpdate) -> VenueOrderEvent | None:
        o = event.o
        ins = self.instruments.get(o.s)
        execution = _EXECUTIONS.get(o.x)
        if ins is None or execution is None:
            return None
        last_qty = ins.qty(o.l) if o.l else 0
        if execution is Execution.TRADE and not last_qty:
            return None
        return VenueOrderEvent(
            symbol=o.s, client_order_id=o.c, venue_order_id=o.i, execution=execution, side=Side(o.S),
            last_qty_steps=last_qty, last_price_ticks=ins.price(o.L) if last_qty else 0, trade_id=o.t,
            commission=asset_units(o.n, o.N or MARGIN_ASSET) if o.n else 0, is_maker=o.m,
            realized_pnl=to_units(o.rp, 8), ts_event_ns=o.T * 1_000_000, order_type=o.o, orig_qty_steps=ins.qty(o.q),
            price_ticks=_price_or_zero(ins, o.p), reduce_only=o.R, order_status=o.X,
            commission_asset=o.N or MARGIN_ASSET)

    # -- REST ------------------------------------------------------------------------------------
    async def place(self, order: Order, on_write: Callable[[int], None] | None = None) -> VenueOrderState:
        if self.deadman.enabled and not self.deadman.armed:
            await self.deadman.arm()
        ins = self.instruments[order.symbol]
        params = order_wire.order_params(order, ins)
        if order.is_algo:
            body = await self.rest.request("POST", "/fapi/v1/algoOrder", params, signed=True, weight=0,
                                           on_write=on_write)
            return order_wire.algo_state(body, ins)
        ws_api = self.ws_api
        if ws_api is not None and ws_api.connected:
            self.orders_over_ws_api += 1
            body = await ws_api.request("order.place", params, weight=0, on_write=on_write)
        else:
            self.orders_over_rest += 1
            body = await self.rest.request("POST", "/fapi/v1/order", params, signed=True, weight=0,
                                           on_write=on_write)
        return _state(body, ins)

    async def amend(self, order: Order, qty_steps: int, price_ticks: int) -> VenueOrderState:
        ins = self.instruments[order.symbol]
        params = self._amend_params(order, qty_steps, price_ticks)
        ws_api = self.ws_api
        if ws_api is not None and ws_api.connected:
            self.amends_over_ws_api += 1
            body = await ws_api.request("order.modify", params, weight=1)
        else:
            body = await self.rest.request("PUT", "/fapi/v1/order", params, signed=True, weight=1)
        return _state(body, ins)

    def _amend_params(self, order: Order, qty_steps: int, price_ticks: int) -> dict[str, Any]:
        ins = self.instruments[order.symbol]
        return {"symbol": order.symbol, "origClientOrderId": order.client_order_id, "side": order.side.value,
                "quantity": ins.format_qty(qty_steps), "price": ins.format_price(price_ticks)}

    async def place_batch(self, orders: list[Order]) -> list[BatchResult]:
        if self.deadman.enabled and not self.deadman.armed:
            await self.deadman.arm()
        ins = self.instruments[orders[0].symbol]
        elements = [order_wire.batch_element(order_wire.order_params(o, self.instruments[o.symbol])) for o in orders]
        body = await self.rest.request("POST", "/fapi/v1/batchOrders", {"batchOrders": _compact(elements)},
                                       signed=True, weight=5)
        return order_wire.batch_results(body, ins, len(orders))

    async def amend_batch(self, amendments: list[tuple[Order, int, int]]) -> list[BatchResult]:
        ins = self.instruments[amendments[0][0].symbol]
        elements = [order_wire.batch_element(self._amend_params(o, q, p)) for o, q, p in amendments]
        body = await self.rest.request("PUT", "/fapi/v1/batchOrders", {"batchOrders": _compact(elements)},
                                       signed=True, weight=5)
        return order_wire.batch_results(body, ins, len(amendments))

    async def cancel_batch(self, symbol: str, client_order_ids: list[str]) -> list[BatchResult]:
        body = await self.rest.request("DELETE", "/fapi/v1/batchOrders",
                                       {"symbol": symbol, "origClientOrderIdList": _compact(client_order_ids)},
                                       signed=True, weight=1)
        return order_wire.batch_results(body, self.instruments[symbol], len(client_order_ids))

    async def cancel(self, symbol: str, client_order_id: str) -> VenueOrderState:
        actual = self._actual.get(client_order_id)
        ref: dict[str, Any] = {"orderId": actual} if actual else {"origClientOrderId": client_order_id}
        ws_api = self.ws_api
        if ws_api is not None and ws_api.connected:
            # A requote's cancel is on the hot path as much as its new order: the same warm socket, one frame.
            self.cancels_over_ws_api += 1
            body = await ws_api.request("order.cancel", {"symbol": symbol, **ref}, weight=1)
        else:
            body = await self.rest.request("DELETE", "/fapi/v1/order", {"symbol": symbol, **ref}, signed=True)
        return _state(body, self.instruments[symbol])

    async def query(self, symbol: str, client_order_id: str) -> VenueOrderState | None:
        actual = self._actual.get(client_order_id)
        ref: dict[str, Any] = {"orderId": actual} if actual else {"origClientOrderId": client_order_id}
        try:
            body = await self.rest.request("GET", "/fapi/v1/order", {"symbol": symbol, **ref}, signed=True)
        except errors.UnknownOrder:
            return None
        return _state(body, self.instruments[symbol])

    async def cancel_algo(self, symbol: str, client_order_id: str) -> VenueOrderState:
        body = await self.rest.request("DELETE", "/fapi/v1/algoOrder", {"clientAlgoId": client_order_id},
                                       signed=True, weight=1)
        # The cancel's answer is {algoId, clientAlgoId, code "200", msg "success"}: the order is cancelled.
        return VenueOrderState(client_order_id, 0, "CANCELED", 0, algo_id=int(body.get("algoId") or 0) or None)

    async def query_algo(self, symbol: str, client_order_id: str) -> VenueOrderState | None:
        try:
            body = await self.rest.request("GET", "/fapi/v1/algoOrder", {"clientAlgoId": client_order_id},
                                           signed=True, weight=1)
        except errors.UnknownOrder:
            return None
        return order_wire.algo_state(body, self.instruments[symbol])

    async def open_orders(self) -> list[VenueOrderEvent]:
        body = await self.rest.request("GET", "/fapi/v1/openOrders", signed=True, weight=40)
        out = []
        for o in body:
            ins = self.instruments.get(o["symbol"])
            if ins is None:
                continue
            out.append(VenueOrderEvent(
                symbol=o["symbol"], client_order_id=o["clientOrderId"], venue_order_id=o["orderId"],
                execution=Execution.NEW, side=Side(o["side"]), order_type=o["type"],
                orig_qty_steps=ins.qty(o["origQty"]), price_ticks=_price_or_zero(ins, o["price"]),
                last_qty_steps=ins.qty(o["executedQty"]), reduce_only=bool(o.get("reduceOnly"))))
        try:
            algo = await self.rest.request("GET", "/fapi/v1/openAlgoOrders", signed=True, weight=40)
        except errors.BadRequest as exc:
            if exc.status != 404:
                raise
            # A Binance-compatible venue without the Algo Order API (older gateways, testnets): it can hold
            # no conditional order of ours, so there is none to reconcile.
            log.warning("the venue has no Algo Order API (%s): no conditional orders to reconcile", exc.msg)
            algo = []
        for o in algo:
            ins = self.instruments.get(o["symbol"])
            if ins is not None:
                out.append(order_wire.open_algo_event(o, ins))
        return out

    async def trades(self, symbol: str) -> list[VenueOrderEvent]:
        ins = self.instruments[symbol]
        body = await self.rest.request("GET", "/fapi/v1/userTrades", {"symbol": symbol, "limit": 1000},
                                       signed=True, weight=5)
        return [VenueOrderEvent(symbol=symbol, client_order_id="", venue_order_id=t["orderId"],
                                execution=Execution.TRADE, side=Side(t["side"]), last_qty_steps=ins.qty(t["qty"]),
                                last_price_ticks=ins.price(t["price"]), trade_id=t["id"],
                                commission=asset_units(t["commission"], t.get("commissionAsset", MARGIN_ASSET)),
                                commission_asset=t.get("commissionAsset", MARGIN_ASSET), is_maker=t["maker"],
                                realized_pnl=to_units(t["realizedPnl"], 8), ts_event_ns=t["time"] * 1_000_000)
                for t in body]

    async def available_balance(self) -> int | None:
        body = await self.rest.request("GET", "/fapi/v2/account", signed=True, weight=5)
        return money(body["availableBalance"])

    async def positions(self) -> dict[str, tuple[int, Fraction]]:
        body = await self.rest.request("GET", "/fapi/v2/positionRisk", signed=True, weight=5)
        out = {}
        for p in body:
            ins = self.instruments.get(p["symbol"])
            if ins is None or p.get("positionSide", "BOTH") != "BOTH":
                continue
            entry_units = parse_decimal(p["entryPrice"])
            entry = Fraction(entry_units[0], 10 ** entry_units[1]) * 10**ins.price_grid.scale / ins.price_grid.step_units
            out[p["symbol"]] = (ins.qty(p["positionAmt"]), entry)
        return out


def _state(body: dict[str, Any], ins: Instrument) -> VenueOrderState:
    return order_wire.order_state(body, ins)


def _compact(value: Any) -> str:
    """JSON without spaces: the venue refuses batch lists with them."""
    return json.dumps(value, separators=(",", ":"))


def _price_or_zero(ins: Instrument, text: str) -> int:
    try:
        return ins.price(text)
    except ValueError:
        return 0  # "0" on market orders


async def check_position_mode(rest: BinanceRestClient) -> None:
    """Celeris trades one-way mode (positionSide BOTH): an account in hedge mode is refused at start, before
    any stream or order, rather than having its LONG/SHORT positions skipped."""
    body = await rest.request("GET", "/fapi/v1/positionSide/dual", {}, signed=True, weight=30)
    if isinstance(body, dict) and body.get("dualSidePosition") in (True, "true"):
        raise errors.UnsupportedAccountMode(
            "the venue account is in hedge mode (dualSidePosition=true) and Celeris trades one-way mode: "
            "switch it with POST /fapi/v1/positionSide/dual dualSidePosition=false (no open positions "
            "or orders), then start again")
