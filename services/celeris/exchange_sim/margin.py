"""Margin, funding and liquidation in the simulated venue (one-way, USDT, cross and isolated margin).

Owns the account figures the venue computes at the mark price: unrealized PnL, position and open-order
initial margin, maintenance margin by leverage tier (brackets.py), available balance, the liquidation
price; isolated margin (notional / leverage moved into a position's own wallet as it opens, released in
proportion as it closes, funding paid from it; the position liquidated on that wallet alone); leverage
changes (refused above the first tier's leverage, -4028, or when the position is larger than the new
leverage's tier allows, -2027); funding payments between longs and shorts; and liquidation when
maintenance margin reaches the margin balance: orders canceled, positions closed against the book (the
rest taken at the mark by the insurance fund), one ORDER_TRADE_UPDATE of execution CALCULATED per closed
position in the venue's recorded shape, then the clearance fee (liquidated notional x the symbol's
liquidationFee, at most what margin is left) taken into the insurance fund (ACCOUNT_UPDATE INSURANCE_CLEAR).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from celeris.domain.values import MONEY_SCALE, Side, fraction_to_units, money_str
from celeris.exchange_sim import brackets
from celeris.exchange_sim.contract import OrderType, TimeInForce
from celeris.exchange_sim.history import FundingSettlement
from celeris.exchange_sim.positions import SimPosition
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
    insurance_fund: int
    """Money units the venue's insurance fund gained from clearance fees (less bankruptcies it covered)."""

    _order_ids: itertools.count[int]
    _income_ids = itertools.count(9_000_000_001)
    """tranId of income records (one sequence for the venue, as the venue's ids are global)."""

    if TYPE_CHECKING:  # the other mixins' members this one calls
        def now_ms(self) -> int: ...
        def instrument(self, symbol: str) -> object: ...
        def _notify(self, account: Account) -> None: ...
        def _order_event(self, account: Account, order: SimOrder, execution: str, **fill: object) -> None: ...
        def _account_update(self, account: Account, symbol: str, reason: str) -> None: ...
        def _execute(self, account: Account, order: SimOrder) -> None: ...
        def _fill(self, account: Account, order: SimOrder, price: int, qty: int, maker: bool) -> None: ...
        def _finish(self, account: Account, order: SimOrder, status: str) -> None: ...
        def _liquidation_event(self, account: Account, order: SimOrder, commission: int) -> None: ...

    def mark(self, symbol: str) -> int:
        book = self.books[symbol]
        return book.mark_ticks or book.last_price_ticks

    def unrealized(self, account: Account, cross_only: bool = False) -> int:
        return sum(p.unrealized_pnl(self.mark(s)) for s, p in account.positions.items()
                   if p.qty_steps and not (cross_only and self.isolated(account, s)))

    def isolated(self, account: Account, symbol: str) -> bool:
        return account.margin_type[symbol] == "isolated"

    def cross_wallet(self, account: Account) -> int:
        """The wallet less what the isolated positions hold."""
        return account.wallet - sum(account.isolated_wallet.values())

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

    def maint_margin(self, account: Account, cross_only: bool = False) -> int:
        return sum(p.maint_margin(self.mark(s)) for s, p in account.positions.items()
                   if p.qty_steps and not (cross_only and self.isolated(account, s)))

    def available_balance(self, account: Account) -> int:
        """Cross wallet + cross PnL - the cross positions' initial margin - open orders' (isolated positions
        hold their margin in their own wallet)."""
        used = sum(self.position_initial_margin(account, s) for s in account.positions if not self.isolated(account, s))
        return (self.cross_wallet(account) + self.unrealized(account, cross_only=True) - used
                - self.open_order_margin(account))

    def move_isolated_margin(self, account: Account, symbol: str, held_before: int, price_ticks: int) -> None:
        """After a fill of an isolated position: a reduction releases its share of the isolated wallet to the
        cross wallet, an increase (or the new side of a flip) moves notional / leverage into it."""
        if not self.isolated(account, symbol):
            return
        pos = account.positions[symbol]
        wallet = account.isolated_wallet.get(symbol, 0)
        before, after = abs(held_before), abs(pos.qty_steps)
        flipped = held_before and pos.qty_steps and (held_before > 0) != (pos.qty_steps > 0)
        if before and (after < before or flipped or not after):
            kept = 0 if flipped or not after else after
            wallet = wallet * kept // before
        opened = after if flipped or not before else max(after - before, 0)
        if opened:
            notional = pos.instrument.notional(price_ticks, opened)
            wallet += -(-notional // account.leverage[symbol])
        if after:
            account.isolated_wallet[symbol] = wallet
        else:
            account.isolated_wallet.pop(symbol, None)

    def liquidation_price_units(self, account: Account, symbol: str) -> int | None:
        """The cross liquidation price in units of 1e-8 quote, half-even (None when flat, 0 when never)."""
        pos = account.positions[symbol]
        if not pos.qty_steps:
            return None
        if self.isolated(account, symbol):  # its own wallet alone
            collateral = account.isolated_wallet.get(symbol, 0)
        else:
            others = [(s, p) for s, p in account.positions.items()
                      if s != symbol and p.qty_steps and not self.isolated(account, s)]
            collateral = (self.cross_wallet(account) - sum(p.maint_margin(self.mark(s)) for s, p in others)
                          + sum(p.unrealized_pnl(self.mark(s)) for s, p in others))
        num, den = brackets.liquidation_notional(brackets.table(symbol), long=pos.qty_steps > 0,
                                                 entry_value=pos.entry_value(), collateral=collateral)
        if num <= 0:
            return 0
        # price = notional / size: money units (1e-8) over qty units (10**-qty_scale) -> 1e-8 quote
        ins = pos.instrument
        return brackets.half_even(num * 10**ins.qty_scale, den * ins.qty_units(abs(pos.qty_steps)))

    def max_notional(self, account: Account, symbol: str) -> int:
        """maxNotionalValue at the account's leverage for the symbol, money units."""
        return brackets.max_notional(brackets.table(symbol), account.leverage[symbol])

    def check_max_notional(self, account: Account, symbol: str, side: Side, qty_steps: int, price_ticks: int) -> None:
        """-2027 when the position plus the open orders on its side plus this order pass the tier's cap."""
        pos = account.positions[symbol]
        same_side = sum(o.remaining for o in account.orders.values()
                        if o.is_open and o.symbol == symbol and o.side is side and not o.reduce_only)
        held = max(pos.qty_steps if side is Side.BUY else -pos.qty_steps, 0)
        ins = self.books[symbol].instrument
        if ins.notional(price_ticks, held + same_side + qty_steps) > self.max_notional(account, symbol):
            raise VenueError(-2027, "Exceeded the maximum allowable position at current leverage.")

    def set_leverage(self, account: Account, symbol: str, leverage: int) -> None:
        self.instrument(symbol)
        tiers = brackets.table(symbol)
        if not 1 <= leverage <= min(self.config.max_leverage, tiers[0].max_leverage):
            raise VenueError(-4028, f"Leverage {leverage} is not valid")
        pos = account.positions[symbol]
        if pos.qty_steps and pos.notional(self.mark(symbol)) > brackets.max_notional(tiers, leverage):
            raise VenueError(-2027, "Exceeded the maximum allowable position at current leverage.")
        account.leverage[symbol] = leverage
        account.events.append({"e": "ACCOUNT_CONFIG_UPDATE", "E": self.now_ms(), "T": self.now_ms(),
                               "ac": {"s": symbol, "l": leverage}})
        self._notify(account)

    def set_multi_assets(self, account: Account, on: bool) -> None:
        """Multi-Assets mode (POST /fapi/v1/multiAssetsMargin), with the venue's refusals; the account's user
        stream is told with ACCOUNT_CONFIG_UPDATE {"ai": {"j": on}}."""
        if on == account.multi_assets:
            raise VenueError(-4171, "Adjusted asset mode is currently set and does not need to be adjusted "
                                    "repeatedly.")
        if on and any(kind == "isolated" for kind in account.margin_type.values()):
            raise VenueError(-4167, "Unable to adjust to Multi-Assets mode with symbols of USD\u24c8-M Futures "
                                    "under isolated-margin mode.")
        if on and account.wallet < 0:
            raise VenueError(-4172, "Unable to adjust Multi-Assets Mode with a negative wallet balance of margin "
                                    "available asset in USD\u24c8-M Futures account.")
        account.multi_assets = on
        now = self.now_ms()
        account.events.append({"e": "ACCOUNT_CONFIG_UPDATE", "E": now, "T": now, "ai": {"j": on}})
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
            if symbol in account.isolated_wallet:  # an isolated position pays from its own margin
                account.isolated_wallet[symbol] += payment
            account.income.append({"symbol": symbol, "incomeType": "FUNDING_FEE", "income": money_str(payment),
                                   "asset": "USDT", "info": "FUNDING_FEE", "time": self.now_ms(),
                                   "tranId": next(self._income_ids), "tradeId": ""})
            self._account_update(account, "", "FUNDING_FEE")

    def check_liquidations(self, symbol: str) -> None:
        """Liquidate where the margin ratio reached 100 % at the mark: an isolated position on its own wallet,
        the cross positions together on the cross wallet."""
        for account in self.accounts.values():
            pos = account.positions[symbol]
            if not pos.qty_steps:
                continue
            if self.isolated(account, symbol):
                margin_left = account.isolated_wallet.get(symbol, 0) + pos.unrealized_pnl(self.mark(symbol))
                if pos.maint_margin(self.mark(symbol)) >= margin_left:
                    self._liquidate_isolated(account, symbol)
                continue
            balance = self.cross_wallet(account) + self.unrealized(account, cross_only=True)
            if self.maint_margin(account, cross_only=True) < balance:
                continue
            for order in list(account.orders.values()):
                if order.is_open and not self.isolated(account, order.symbol):
                    self._finish(account, order, "CANCELED")
            cleared = 0
            for sym, position in account.positions.items():
                if position.qty_steps and not self.isolated(account, sym):
                    cleared += self._liquidate(account, sym, position)
            self._clear(account, cleared, self.cross_wallet(account), "")

    def _liquidate_isolated(self, account: Account, symbol: str) -> None:
        for order in list(account.orders.values()):
            if order.is_open and order.symbol == symbol:
                self._finish(account, order, "CANCELED")
        held = account.isolated_wallet.get(symbol, 0)
        wallet_before = account.wallet
        cleared = self._liquidate(account, symbol, account.positions[symbol])
        # what the position's own margin has left: its wallet plus what closing it realized, less fees
        self._clear(account, cleared, held + account.wallet - wallet_before, symbol)

    def _clear(self, account: Account, cleared: int, margin_left: int, symbol: str) -> None:
        """After a liquidation: a negative margin left (bankrupt) is made good by the insurance fund; then the
        clearance fee, at most what is left, goes to it (ACCOUNT_UPDATE INSURANCE_CLEAR)."""
        if margin_left < 0:
            self.insurance_fund += margin_left
            account.wallet -= margin_left
            margin_left = 0
        fee = min(cleared, margin_left)
        if fee:
            account.wallet -= fee
            self.insurance_fund += fee
            self._account_update(account, symbol, "INSURANCE_CLEAR")

    def _liquidate(self, account: Account, symbol: str, position: SimPosition) -> int:
        """Close one position; returns its clearance fee (liquidated notional x liquidationFee), money units."""
        side = Side.SELL if position.qty_steps > 0 else Side.BUY
        now = self.now_ms()
        order = SimOrder(next(self._order_ids), f"autoclose-{now}{next(self._auto_ids):04d}", symbol, side,
                         OrderType.MARKET, TimeInForce.GTC, abs(position.qty_steps), 0, time_ms=now, update_ms=now,
                         liquidation=True)
        account.orders[order.order_id] = order
        book = self.books[symbol]
        first_event = len(account.events)
        wallet_before = account.wallet
        self._execute(account, order)
        if position.qty_steps:  # the book was too thin: the insurance fund takes the rest at the mark
            self._fill(account, order, book.mark_ticks or book.last_price_ticks, abs(position.qty_steps),
                       maker=False)
        # The venue reports a liquidation as one CALCULATED event (no NEW, no TRADE): drop the fills' own.
        account.events[first_event:] = [e for e in account.events[first_event:]
                                        if e.get("e") not in ("ORDER_TRADE_UPDATE", "TRADE_LITE")
                                        or (e.get("o", e).get("i") != order.order_id)]
        commission = order.realized_pnl - (account.wallet - wallet_before)  # the fills' taker fees
        self._liquidation_event(account, order, commission)
        ins = book.instrument
        notional = ins.notional(1, order.filled_quote) if order.filled_quote else 0
        return brackets.half_even(notional * ins.liquidation_fee_units, 10**8)
