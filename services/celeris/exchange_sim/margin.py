"""Margin, funding and liquidation in the simulated venue (one-way, cross margin, USDT).

Owns the account figures the venue computes at the mark price: unrealized PnL, position and open-order
initial margin, maintenance margin, available balance, the liquidation price; leverage changes; funding
payments between longs and shorts; and liquidation when maintenance margin reaches the margin balance
(orders canceled, positions closed against the book, the rest taken at the mark by the insurance fund).
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import TYPE_CHECKING

from celeris.domain.values import MONEY_SCALE, Side, fraction_to_units
from celeris.exchange_sim.contract import OrderType, TimeInForce
from celeris.exchange_sim.history import FundingSettlement
from celeris.exchange_sim.positions import SimPosition, cross_liquidation_price
from celeris.exchange_sim.state import (
    Account,
    EngineConfig,
    SimOrder,
    SymbolBook,
    VenueError,
)


class Margin:
    """Mixin of MatchingEngine: the account side of the venue."""

    # Provided by MatchingEngine (engine.py).
    books: dict[str, SymbolBook]
    accounts: dict[str, Account]
    config: EngineConfig

    _order_ids: itertools.count[int]

    if TYPE_CHECKING:  # the other mixins' members this one calls
        def now_ms(self) -> int: ...
        def instrument(self, symbol: str) -> object: ...
        def _notify(self, account: Account) -> None: ...
        def _order_event(self, account: Account, order: SimOrder, execution: str, **fill: object) -> None: ...
        def _account_update(self, account: Account, symbol: str, reason: str) -> None: ...
        def _execute(self, account: Account, order: SimOrder) -> None: ...
        def _fill(self, account: Account, order: SimOrder, price: int, qty: int, maker: bool) -> None: ...
        def _finish(self, account: Account, order: SimOrder, status: str) -> None: ...

    def mark(self, symbol: str) -> int:
        book = self.books[symbol]
        return book.mark_ticks or book.last_price_ticks

    def unrealized(self, account: Account) -> int:
        return sum(p.unrealized_pnl(self.mark(s)) for s, p in account.positions.items() if p.qty_steps)

    def position_initial_margin(self, account: Account, symbol: str) -> int:
        pos = account.positions[symbol]
        return -(-pos.notional(self.mark(symbol)) // account.leverage[symbol]) if pos.qty_steps else 0

    def open_order_margin(self, account: Account, symbol: str | None = None) -> int:
        total = 0
        for order in account.orders.values():
            if order.is_open and not order.reduce_only and (symbol is None or order.symbol == symbol):
                ins = self.books[order.symbol].instrument
                price = order.price_ticks or self.mark(order.symbol)
                total += ins.notional(price, order.remaining) // account.leverage[order.symbol]
        return total

    def maint_margin(self, account: Account) -> int:
        return sum(p.maint_margin(self.mark(s)) for s, p in account.positions.items() if p.qty_steps)

    def available_balance(self, account: Account) -> int:
        used = sum(self.position_initial_margin(account, s) for s in account.positions)
        return account.wallet + self.unrealized(account) - used - self.open_order_margin(account)

    def liquidation_price(self, account: Account, symbol: str) -> Fraction | None:
        pos = account.positions[symbol]
        if not pos.qty_steps:
            return None
        others = [(s, p) for s, p in account.positions.items() if s != symbol and p.qty_steps]
        other_maint = sum(p.maint_margin(self.mark(s)) for s, p in others)
        other_upnl = sum(p.unrealized_pnl(self.mark(s)) for s, p in others)
        scale = Fraction(1, 10**MONEY_SCALE)
        return cross_liquidation_price(
            wallet=account.wallet * scale, qty=pos.instrument.qty_fraction(pos.qty_steps), entry=pos.entry_price,
            maint_rate=pos.instrument.maint_margin_rate, other_maint=other_maint * scale,
            other_unrealized=other_upnl * scale)

    def set_leverage(self, account: Account, symbol: str, leverage: int) -> None:
        self.instrument(symbol)
        if not 1 <= leverage <= self.config.max_leverage:
            raise VenueError(-4028, f"Leverage {leverage} is not valid")
        account.leverage[symbol] = leverage
        account.events.append({"e": "ACCOUNT_CONFIG_UPDATE", "E": self.now_ms(), "T": self.now_ms(),
                               "ac": {"s": symbol, "l": leverage}})
        self._notify(account)

    def apply_funding(self, symbol: str) -> None:
        """Funding: longs pay shorts notional x rate when the rate is positive (and vice versa)."""
        book = self.books[symbol]
        mark = self.mark(symbol)
        if mark:
            book.history.fundings.append(FundingSettlement(symbol, self.now_ms(), book.funding_rate, mark))
        for account in self.accounts.values():
            pos = account.positions[symbol]
            if not pos.qty_steps or not mark:
                continue
            notional = pos.instrument.price_fraction(mark) * pos.instrument.qty_fraction(pos.qty_steps)
            payment = fraction_to_units(-notional * book.funding_rate, MONEY_SCALE)
            account.wallet += payment
            self._account_update(account, "", "FUNDING_FEE")

    def check_liquidations(self, symbol: str) -> None:
        """Close every position of an account whose margin ratio reached 100 % at the mark price."""
        for account in self.accounts.values():
            pos = account.positions[symbol]
            if not pos.qty_steps:
                continue
            balance = account.wallet + self.unrealized(account)
            if self.maint_margin(account) < balance:
                continue
            for order in list(account.orders.values()):
                if order.is_open:
                    self._finish(account, order, "CANCELED")
            for sym, position in account.positions.items():
                if position.qty_steps:
                    self._liquidate(account, sym, position)

    def _liquidate(self, account: Account, symbol: str, position: SimPosition) -> None:
        side = Side.SELL if position.qty_steps > 0 else Side.BUY
        now = self.now_ms()
        order = SimOrder(next(self._order_ids), f"autoclose-{now}", symbol, side, OrderType.MARKET,
                         TimeInForce.IOC, abs(position.qty_steps), 0, reduce_only=True, time_ms=now, update_ms=now,
                         liquidation=True)
        account.orders[order.order_id] = order
        book = self.books[symbol]
        self._order_event(account, order, "NEW")
        self._execute(account, order)
        if position.qty_steps:  # the book was too thin: the insurance fund takes the rest at the mark
            self._fill(account, order, book.mark_ticks or book.last_price_ticks, abs(position.qty_steps),
                       maker=False)
        if account.wallet < 0:
            account.wallet = 0
