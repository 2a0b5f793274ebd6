"""Wire rendering of the simulated venue's state: order answers and user-data events as the venue shapes them.

Owns the JSON dicts the engine hands out: the order body of REST answers (`order_json`), and the user-data
events appended to an account's queue (ORDER_TRADE_UPDATE, a liquidation's CALCULATED one, TRADE_LITE,
ACCOUNT_UPDATE), plus the number formats they use (average prices, mark prices, rates). Nothing here
decides anything; it only prints what matching and margin decided, with the venue's key names and
decimal strings.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any, Callable

from celeris.domain.values import Side, format_units, fraction_to_units, money_str
from celeris.exchange_sim.contract import Contract, OrderType
from celeris.exchange_sim.state import Account, EngineConfig, SimOrder, SymbolBook


class WireRendering:
    """Mixin of MatchingEngine: renders orders and queues user-data events."""

    # Provided by MatchingEngine (engine.py).
    books: dict[str, SymbolBook]
    accounts: dict[str, Account]
    config: EngineConfig

    on_account_event: Callable[[Account], None] | None

    if TYPE_CHECKING:  # the other mixins' members this one calls
        def now_ms(self) -> int: ...
        def mark(self, symbol: str) -> int: ...
        def _after_order_event(self, account: Account, order: SimOrder) -> None: ...
        def _next_trade_id(self) -> int: ...

    def order_json(self, order: SimOrder) -> dict[str, Any]:
        ins = self.books[order.symbol].instrument
        scale = ins.price_scale
        avg = format_units(0, scale)
        if order.filled_steps:
            # The venue prints average prices with more decimals than the tick (e.g. "7100.50000").
            avg_units = Fraction(order.filled_quote * ins.tick_units, order.filled_steps)
            avg = format_units(fraction_to_units(avg_units / 10**scale, scale + 3), scale + 3)
        cum_quote = format_units(order.filled_quote * ins.tick_units * ins.step_units,
                                 ins.notional_scale)
        out = {
            "orderId": order.order_id, "symbol": order.symbol, "status": order.status,
            "clientOrderId": order.client_order_id, "price": ins.format_price(order.price_ticks),
            "avgPrice": avg, "origQty": ins.format_qty(order.qty_steps),
            "executedQty": ins.format_qty(order.filled_steps), "cumQuote": cum_quote,
            "timeInForce": order.time_in_force.value, "type": order.order_type.value,
            "reduceOnly": order.reduce_only, "closePosition": order.close_position, "side": order.side.value,
            "positionSide": "BOTH", "stopPrice": ins.format_price(order.stop_price_ticks),
            "workingType": order.working_type, "priceProtect": False, "origType": order.order_type.value,
            "priceMatch": order.price_match, "selfTradePreventionMode": order.stp_mode,
            "goodTillDate": order.good_till_ms,
            "updateTime": order.update_ms,
        }
        if order.order_type is OrderType.TRAILING_STOP_MARKET:
            out["activatePrice"] = ins.format_price(order.activation_ticks)
            out["priceRate"] = str(float(order.callback_rate or 0))
        return out

    def _order_event(self, account: Account, order: SimOrder, execution: str, *, last_qty: int = 0,
                     last_price: int = 0, commission: int = 0, trade_id: int = 0, maker: bool = False,
                     realized: int = 0, notify: bool = True) -> None:
        ins = self.books[order.symbol].instrument
        body = self.order_json(order)
        now = self.now_ms()
        o = {"s": order.symbol, "c": order.client_order_id, "S": order.side.value, "o": order.order_type.value,
             "f": order.time_in_force.value, "q": body["origQty"], "p": body["price"], "ap": body["avgPrice"],
             "sp": body["stopPrice"], "x": execution, "X": order.status, "i": order.order_id,
             "l": ins.format_qty(last_qty), "z": body["executedQty"], "L": ins.format_price(last_price),
             "N": "USDT", "n": money_str(commission), "T": now, "t": trade_id, "b": "0", "a": "0",
             "m": maker, "R": order.reduce_only, "wt": order.working_type, "ot": order.order_type.value,
             "ps": "BOTH", "cp": order.close_position, "rp": money_str(realized), "pP": False, "si": 0,
             "ss": 0, "V": order.stp_mode, "pm": order.price_match, "gtd": order.good_till_ms, "er": "0"}
        if order.order_type is OrderType.TRAILING_STOP_MARKET:  # the venue adds these for trailing stops only
            o["AP"], o["cr"] = body["activatePrice"], body["priceRate"]
        account.events.append({"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": o})
        self._after_order_event(account, order)
        if notify:
            self._notify(account)

    def _liquidation_event(self, account: Account, order: SimOrder, commission: int) -> None:
        """A liquidation's ORDER_TRADE_UPDATEs as the venue records them: execution CALCULATED with status NEW
        (samples/nautilus/rs_order_update_calculated_pending.json), then CALCULATED / FILLED with the whole
        size at its average price (rs_order_update_calculated.json, py_ws_futures_order_update_liquidation.json).
        Absent stop, activation and callback prices are "0" and STP "NONE", as in the venue's other updates."""
        body = self.order_json(order)
        now = self.now_ms()
        average = body["avgPrice"]
        base = {"s": order.symbol, "c": order.client_order_id, "S": order.side.value, "o": "MARKET", "f": "GTC",
                "q": body["origQty"], "p": "0", "sp": "0", "x": "CALCULATED", "i": order.order_id, "T": now,
                "b": "0", "a": "0", "m": False, "R": False, "wt": "CONTRACT_PRICE", "ot": "MARKET", "ps": "BOTH",
                "cp": False, "AP": "0", "cr": "0", "pP": False, "si": 0, "ss": 0, "gtd": 0, "V": "NONE"}
        zero_qty = self.books[order.symbol].instrument.format_qty(0)
        pending = {**base, "ap": "0", "X": "NEW", "l": zero_qty, "z": zero_qty, "L": "0", "N": "USDT", "n": "0",
                   "t": 0, "rp": "0"}
        filled = {**base, "ap": average, "X": "FILLED", "l": body["executedQty"], "z": body["executedQty"],
                  "L": average, "N": "USDT", "n": money_str(commission), "t": self._next_trade_id(),
                  "rp": money_str(order.realized_pnl)}
        for o in (pending, filled):
            account.events.append({"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": o})

    def _trade_events(self, account: Account, order: SimOrder, price: int, qty: int, maker: bool,
                      fee_units: int, realized: int, trade_id: int) -> None:
        """The userTrades entry and the TRADE_LITE / ORDER_TRADE_UPDATE events of one fill."""
        ins = self.books[order.symbol].instrument
        now = self.now_ms()
        trade = {"symbol": order.symbol, "id": trade_id, "orderId": order.order_id, "side": order.side.value,
                 "price": ins.format_price(price), "qty": ins.format_qty(qty),
                 "realizedPnl": money_str(realized), "marginAsset": "USDT",
                 "quoteQty": format_units(ins.price_units(price) * ins.qty_units(qty), ins.notional_scale),
                 "commission": money_str(fee_units), "commissionAsset": "USDT", "time": now,
                 "positionSide": "BOTH", "buyer": order.side is Side.BUY, "maker": maker}
        account.trades.append(trade)
        account.events.append({"e": "TRADE_LITE", "E": now, "T": now, "s": order.symbol,
                               "q": ins.format_qty(order.qty_steps), "p": ins.format_price(order.price_ticks),
                               "m": maker, "c": order.client_order_id, "S": order.side.value,
                               "L": ins.format_price(price), "l": ins.format_qty(qty), "t": trade_id,
                               "i": order.order_id})
        if order.liquidation:  # the public liquidation stream's snapshot of this order
            self.books[order.symbol].liquidation_out = {
                "s": order.symbol, "S": order.side.value, "o": order.order_type.value,
                "f": order.time_in_force.value, "q": ins.format_qty(order.qty_steps), "p": ins.format_price(price),
                "ap": self.order_json(order)["avgPrice"], "X": order.status, "l": ins.format_qty(qty),
                "z": ins.format_qty(order.filled_steps), "T": now}
        # A liquidation's fills are execution type CALCULATED ("Liquidation Execution"), not TRADE.
        self._order_event(account, order, "CALCULATED" if order.liquidation else "TRADE", last_qty=qty,
                          last_price=price, commission=fee_units,
                          trade_id=trade_id, maker=maker, realized=realized, notify=False)

    def _account_update(self, account: Account, symbol: str, reason: str) -> None:
        """ACCOUNT_UPDATE with the balance and, for a symbol, its position (FUNDING_FEE: balance only)."""
        now = self.now_ms()
        positions = []
        if symbol:
            pos = account.positions[symbol]
            mark = self.mark(symbol)
            positions.append({
                "s": symbol, "pa": pos.instrument.format_qty(pos.qty_steps),
                "ep": price_str(pos.entry_price), "bep": price_str(pos.entry_price),
                "cr": money_str(pos.realized_pnl), "up": money_str(pos.unrealized_pnl(mark) if mark else 0),
                "mt": account.margin_type[symbol], "iw": money_str(account.isolated_wallet.get(symbol, 0)),
                "ps": "BOTH", "ma": "USDT"})
        account.events.append({"e": "ACCOUNT_UPDATE", "E": now, "T": now, "a": {
            "m": reason,
            "B": [{"a": "USDT", "wb": money_str(account.wallet),
                   "cw": money_str(account.wallet - sum(account.isolated_wallet.values())), "bc": "0"}],
            "P": positions,
        }})
        self._notify(account)

    def _notify(self, account: Account) -> None:
        if self.on_account_event is not None:
            self.on_account_event(account)


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def units8_str(units: int) -> str:
    """A price held in units of 1e-8 as the venue prints computed prices: up to 8 decimals, zeros trimmed."""
    return _trim(format_units(units, 8)) or "0"


def price_str(value: Fraction) -> str:
    """An average price as the venue prints it: up to 8 decimals, trailing zeros trimmed."""
    units = fraction_to_units(value, 8)
    text = format_units(units, 8).rstrip("0").rstrip(".")
    return text or "0"


def mark_str(ins: Contract, ticks: int) -> str:
    """Mark and index prices carry 8 decimals on the wire, whatever the symbol's precision."""
    return ins.format_price(ticks) + "000000"[: max(0, 8 - ins.price_scale)]


def rate_str(rate: Any, decimals: int = 8) -> str:
    return format_units(fraction_to_units(rate, decimals), decimals)
