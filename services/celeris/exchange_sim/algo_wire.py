"""Wire rendering of algo orders: the Algo Order API's REST bodies and the ALGO_UPDATE user-data event.

Owns the JSON the venue shows of a SimAlgoOrder, with Binance's keys and value types: the New Algo Order
answer, the query body (GET algoOrder, openAlgoOrders, allAlgoOrders: adds actualOrderId / actualPrice and
the TP/SL fields the venue always prints), and ALGO_UPDATE with its short keys, which differ by status as
the venue's recordings do (data/binance/samples/nautilus/*algo_update*): TRIGGERING carries no fill keys
(ap, aq, act), NEW / CANCELED / REJECTED / EXPIRED carry the reject reason `rm`, TRIGGERED / FINISHED do not.
Nothing here decides anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from celeris.domain.values import format_units
from celeris.exchange_sim.algo_state import AlgoStatus, SimAlgoOrder
from celeris.exchange_sim.contract import OrderType
from celeris.exchange_sim.state import Account, SimOrder, SymbolBook

_NO_FILL_KEYS = (AlgoStatus.TRIGGERING,)
_REASON_KEYS = (AlgoStatus.NEW, AlgoStatus.CANCELED, AlgoStatus.REJECTED, AlgoStatus.EXPIRED)


class AlgoWire:
    """Mixin of MatchingEngine: renders algo orders and queues ALGO_UPDATE events."""

    books: dict[str, SymbolBook]
    on_account_event: Callable[[Account], None] | None

    if TYPE_CHECKING:  # the other mixins' members this one calls
        def now_ms(self) -> int: ...
        def order_json(self, order: SimOrder) -> dict[str, Any]: ...
        def _notify(self, account: Account) -> None: ...

    def algo_json(self, account: Account, algo: SimAlgoOrder, *, placed: bool = False) -> dict[str, Any]:
        """The order as New Algo Order answers it (`placed`) or as the queries show it."""
        ins = self.books[algo.symbol].instrument
        out: dict[str, Any] = {
            "algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "algoType": "CONDITIONAL",
            "orderType": algo.order_type.value, "symbol": algo.symbol, "side": algo.side.value,
            "positionSide": "BOTH", "timeInForce": algo.time_in_force.value,
            "quantity": ins.format_qty(algo.qty_steps), "algoStatus": algo.status.value,
        }
        if not placed:
            actual = self._actual(account, algo)
            out["actualOrderId"] = str(algo.actual_order_id) if algo.actual_order_id is not None else ""
            out["actualPrice"] = actual["avgPrice"] if actual else _zero_avg(ins.price_scale)
        out.update({
            "triggerPrice": ins.format_price(algo.trigger_ticks), "price": ins.format_price(algo.price_ticks),
            "icebergQuantity": None,
        })
        if not placed:
            zero = ins.format_price(0)
            out.update({"tpTriggerPrice": zero, "tpPrice": zero, "slTriggerPrice": zero, "slPrice": zero,
                        "tpOrderType": ""})
        out.update({
            "selfTradePreventionMode": algo.stp_mode, "workingType": algo.working_type,
            "priceMatch": algo.price_match, "closePosition": algo.close_position,
            "priceProtect": algo.price_protect, "reduceOnly": algo.reduce_only,
        })
        trailing = algo.order_type is OrderType.TRAILING_STOP_MARKET
        if placed or trailing:  # the answer to a new order always has them ("" unless trailing)
            out["activatePrice"] = ins.format_price(algo.activation_ticks) if trailing else ""
            out["callbackRate"] = _rate(algo) if trailing else ""
        out.update({"createTime": algo.create_ms, "updateTime": algo.update_ms, "triggerTime": algo.trigger_ms,
                    "goodTillDate": algo.good_till_ms})
        return out

    def _actual(self, account: Account, algo: SimAlgoOrder) -> dict[str, Any] | None:
        order = account.orders.get(algo.actual_order_id) if algo.actual_order_id is not None else None
        return self.order_json(order) if order is not None else None

    def _algo_event(self, account: Account, algo: SimAlgoOrder) -> None:
        """Queue one ALGO_UPDATE for the algo order's current status."""
        ins = self.books[algo.symbol].instrument
        now = self.now_ms()
        o: dict[str, Any] = {
            "caid": algo.client_algo_id, "aid": algo.algo_id, "at": "CONDITIONAL", "o": algo.order_type.value,
            "s": algo.symbol, "S": algo.side.value, "ps": "BOTH", "f": algo.time_in_force.value,
            "q": ins.format_qty(algo.qty_steps), "X": algo.status.value,
            "ai": str(algo.actual_order_id) if algo.actual_order_id is not None else "",
        }
        if algo.status not in _NO_FILL_KEYS:
            actual = self._actual(account, algo)
            if actual is None:
                o.update(ap=_zero_avg(ins.price_scale), aq=ins.format_qty(0), act="0")
            else:
                o.update(ap=actual["avgPrice"], aq=actual["executedQty"], act=algo.actual_type.value)
        o.update({"tp": ins.format_price(algo.trigger_ticks), "p": ins.format_price(algo.price_ticks),
                  "V": algo.stp_mode, "wt": algo.working_type, "pm": algo.price_match, "cp": algo.close_position,
                  "pP": algo.price_protect, "R": algo.reduce_only, "tt": algo.trigger_ms, "gtd": algo.good_till_ms})
        if algo.status in _REASON_KEYS:
            o["rm"] = algo.reject_reason
        account.events.append({"e": "ALGO_UPDATE", "T": now, "E": now, "o": o})
        self._notify(account)


def _zero_avg(price_scale: int) -> str:
    # Average prices carry three decimals more than the tick, as order bodies print them.
    return format_units(0, price_scale + 3)


def _rate(algo: SimAlgoOrder) -> str:
    rate = algo.callback_rate or 0
    tenths = int(rate * 10)
    return format_units(tenths, 1)
