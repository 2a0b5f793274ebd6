"""The order surface on the wire: an `Order` as the venue's request parameters, and the venue's order and
algo-order answers and stream events as domain values.

Owns the mapping of every order field to its parameter (price, stopPrice or triggerPrice, callbackRate,
activatePrice, workingType, priceProtect, closePosition, selfTradePreventionMode, priceMatch,
goodTillDate), the Algo Order API's shapes (POST /fapi/v1/algoOrder, its answers, openAlgoOrders and
ALGO_UPDATE), and the batch answers (one element per order: an order object or `{"code","msg"}`).
"""

from __future__ import annotations

from typing import Any

from celeris.domain.instruments import (
    CALLBACK_RATE_SCALE,
    Instrument,
    PriceMatch,
    SelfTradePrevention,
    TimeInForce,
    WorkingType,
)
from celeris.domain.messages import (
    BatchResult,
    Execution,
    VenueOrderEvent,
    VenueOrderState,
)
from celeris.domain.orders import Order
from celeris.domain.values import Side
from celeris.venues.binance import codec, errors

ALGO_STATUS = {"NEW": "NEW", "TRIGGERING": "NEW", "TRIGGERED": "NEW", "FINISHED": "FILLED",
               "CANCELED": "CANCELED", "EXPIRED": "EXPIRED", "REJECTED": "REJECTED"}
"""An algo order's algoStatus as an order status (FINISHED: the actual order is done; its own events say
how, so it is treated as a filled one that the fills complete)."""

_ALGO_EXECUTIONS = {"NEW": Execution.NEW, "CANCELED": Execution.CANCELED, "EXPIRED": Execution.EXPIRED,
                    "REJECTED": Execution.REJECTED, "TRIGGERED": Execution.TRIGGERED}
"""ALGO_UPDATE statuses that move our order (TRIGGERING is a moment; FINISHED follows the actual order)."""


def callback_rate_text(bps: int) -> str:
    """Basis points as the venue's percent string: 10 -> "0.1", 150 -> "1.5", 1000 -> "10"."""
    whole, frac = divmod(bps, CALLBACK_RATE_SCALE)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".")


def order_params(order: Order, ins: Instrument) -> dict[str, Any]:
    """The request parameters of one order, for /fapi/v1/order, batchOrders or /fapi/v1/algoOrder."""
    params: dict[str, Any] = {"symbol": order.symbol, "side": order.side.value, "type": order.order_type.value}
    if not order.close_position:
        params["quantity"] = ins.format_qty(order.qty_steps)
    if order.is_algo:
        params["algoType"] = "CONDITIONAL"
        params["clientAlgoId"] = order.client_order_id
    else:
        params["newClientOrderId"] = order.client_order_id
    params["newOrderRespType"] = "ACK"
    if order.price_ticks is not None:
        params["price"] = ins.format_price(order.price_ticks)
    if order.price_ticks is not None or order.price_match is not PriceMatch.NONE or \
            order.time_in_force is not TimeInForce.GTC:
        params["timeInForce"] = order.time_in_force.value
    if order.stop_price_ticks is not None:
        params["triggerPrice" if order.is_algo else "stopPrice"] = ins.format_price(order.stop_price_ticks)
    if order.callback_rate_bps is not None:
        params["callbackRate"] = callback_rate_text(order.callback_rate_bps)
    if order.activation_price_ticks is not None:
        params["activatePrice" if order.is_algo else "activationPrice"] = ins.format_price(
            order.activation_price_ticks)
    if order.working_type is not WorkingType.CONTRACT_PRICE:
        params["workingType"] = order.working_type.value
    if order.price_protect:
        params["priceProtect"] = "TRUE"
    if order.close_position:
        params["closePosition"] = True
    if order.reduce_only:
        params["reduceOnly"] = True
    if order.stp_mode is not SelfTradePrevention.NONE:
        params["selfTradePreventionMode"] = order.stp_mode.value
    if order.price_match is not PriceMatch.NONE:
        params["priceMatch"] = order.price_match.value
    if order.good_till_ms:
        params["goodTillDate"] = order.good_till_ms
    return params


def batch_element(params: dict[str, Any]) -> dict[str, str]:
    """One element of the batchOrders JSON: every value a string, as the venue documents it."""
    return {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in params.items()}


def order_state(body: dict[str, Any], ins: Instrument) -> VenueOrderState:
    return VenueOrderState(body["clientOrderId"], body["orderId"], body["status"], ins.qty(body["executedQty"]),
                           ins.qty(body["origQty"]) if "origQty" in body else None,
                           price_or_none(ins, body.get("price", "0")))


def algo_state(body: dict[str, Any], ins: Instrument) -> VenueOrderState:
    actual = str(body.get("actualOrderId") or "")
    executed = body.get("executedQty") or "0"
    return VenueOrderState(body["clientAlgoId"], int(actual) if actual.isdigit() else 0,
                           ALGO_STATUS.get(body.get("algoStatus", "NEW"), "NEW"), ins.qty(executed),
                           ins.qty(body["quantity"]) if body.get("quantity") else None,
                           price_or_none(ins, body.get("price") or "0"), algo_id=int(body["algoId"]))


def batch_results(body: list[dict[str, Any]], ins: Instrument, count: int) -> list[BatchResult]:
    """The venue's batch answer, element by element; a short answer leaves the rest unknown."""
    out = []
    for element in body[:count]:
        if "code" in element and "orderId" not in element:
            out.append(BatchResult(error=errors.from_response(400, element, None)))
        else:
            out.append(BatchResult(state=order_state(element, ins)))
    while len(out) < count:
        out.append(BatchResult(error=errors.UnknownExecutionStatus(-1007, "no answer for this element", 200)))
    return out


def open_algo_event(o: dict[str, Any], ins: Instrument) -> VenueOrderEvent:
    return VenueOrderEvent(
        symbol=o["symbol"], client_order_id=o["clientAlgoId"], venue_order_id=0, execution=Execution.NEW,
        side=Side(o["side"]), order_type=o["type"], orig_qty_steps=ins.qty(o["quantity"]) if o.get("quantity") else 0,
        price_ticks=price_or_none(ins, o.get("price") or "0") or 0, reduce_only=bool(o.get("reduceOnly")),
        algo_id=int(o["algoId"]))


def algo_event(event: codec.AlgoUpdate, ins: Instrument) -> VenueOrderEvent | None:
    o = event.o
    execution = _ALGO_EXECUTIONS.get(o.X)
    if execution is None:
        return None
    actual = int(o.ai) if o.ai.isdigit() else 0
    return VenueOrderEvent(
        symbol=o.s, client_order_id=o.caid, venue_order_id=actual if execution is Execution.TRIGGERED else 0,
        execution=execution, side=Side(o.S), ts_event_ns=event.T * codec.NS_PER_MS, order_type=o.o,
        orig_qty_steps=ins.qty(o.q) if o.q and o.q != "0" else 0, price_ticks=price_or_none(ins, o.p) or 0,
        reduce_only=o.R, order_status=o.X, algo_id=o.aid)


def price_or_none(ins: Instrument, text: str) -> int | None:
    try:
        ticks = ins.price(text)
    except ValueError:
        return None  # "0" on market orders, or more decimals than the grid ("0.00000")
    return ticks or None
