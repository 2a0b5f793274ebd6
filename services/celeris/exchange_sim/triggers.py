"""Conditional orders in the simulated venue: STOP / TAKE_PROFIT (limit and market) and trailing stops.

Owns when a working conditional order fires: its stop reached by the last price (CONTRACT_PRICE) or the
mark price (MARK_PRICE) in the direction its type implies, a trailing stop's activation and its callback
from the extreme since activation; a fired order is then matched like a new one. The algo service
(algo.py) asks the same questions of its orders.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Protocol

from celeris.domain.values import Side
from celeris.exchange_sim.contract import OrderType
from celeris.exchange_sim.state import Account, EngineConfig, SimOrder, SymbolBook


class Trailing(Protocol):
    """What a trailing stop's trail reads and keeps: a SimOrder on /fapi/v1/order or a SimAlgoOrder."""

    side: Side
    working_type: str
    activation_ticks: int
    callback_rate: Fraction | None
    trail_extreme_ticks: int


class Triggers:
    """Mixin of MatchingEngine: fires conditional orders."""

    # Provided by MatchingEngine (engine.py).
    books: dict[str, SymbolBook]
    accounts: dict[str, Account]
    config: EngineConfig

    if TYPE_CHECKING:  # the other mixins' members this one calls
        def now_ms(self) -> int: ...
        def _execute(self, account: Account, order: SimOrder) -> None: ...

    def check_triggers(self, symbol: str) -> None:
        """Trigger conditional orders whose stop is reached by last or mark price; trail trailing stops."""
        book = self.books[symbol]
        for account in list(self.accounts.values()):
            for order in list(account.orders.values()):
                if order.symbol != symbol or not order.is_open or not order.order_type.is_conditional \
                        or order.triggered:
                    continue
                if order.order_type is OrderType.TRAILING_STOP_MARKET:
                    if not self._trail(book, order):
                        continue
                elif not self._triggered(book, order.order_type, order.side, order.stop_price_ticks,
                                         order.working_type):
                    continue
                order.triggered = True
                self._execute(account, order)

    def _reference(self, book: SymbolBook, working_type: str) -> int:
        return book.mark_ticks if working_type == "MARK_PRICE" else book.last_price_ticks

    def _triggered(self, book: SymbolBook, order_type: OrderType, side: Side, stop: int, working_type: str) -> bool:
        ref = self._reference(book, working_type)
        if not ref:
            return False
        if order_type in (OrderType.STOP, OrderType.STOP_MARKET):
            return ref >= stop if side is Side.BUY else ref <= stop
        return ref <= stop if side is Side.BUY else ref >= stop

    def _trail(self, book: SymbolBook, order: Trailing) -> bool:
        ref = self._reference(book, order.working_type)
        if not ref:
            return False
        if order.activation_ticks and not order.trail_extreme_ticks:
            reached = ref <= order.activation_ticks if order.side is Side.BUY else ref >= order.activation_ticks
            if not reached:
                return False
        if not order.trail_extreme_ticks:
            order.trail_extreme_ticks = ref
        rate = (order.callback_rate or Fraction(1)) / 100
        if order.side is Side.SELL:  # protects a long: trails the high
            order.trail_extreme_ticks = max(order.trail_extreme_ticks, ref)
            return ref <= order.trail_extreme_ticks * (1 - rate)
        order.trail_extreme_ticks = min(order.trail_extreme_ticks, ref)
        return ref >= order.trail_extreme_ticks * (1 + rate)
