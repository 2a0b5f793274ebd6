"""The simulated venue's account REST endpoints: positions, account, balance, leverage, margin type, fees.

Owns the USER_DATA account answers in their v2 and v3 shapes (positionRisk, account, balance), the
settings endpoints (leverage, marginType, positionSide/dual, multiAssetsMargin, symbolConfig), leverageBracket
and commissionRate. The figures come from the engine's margin part; these handlers only print them as the venue does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from celeris.domain.values import MONEY_SCALE, money_str
from celeris.exchange_sim.contract import Contract
from celeris.exchange_sim.engine import Account, MatchingEngine, VenueError
from celeris.exchange_sim import brackets, params as strict
from celeris.exchange_sim.wire import mark_str, price_str, rate_str, units8_str


class AccountRoutes:
    """Part of SimVenue: the signed account endpoints."""

    engine: MatchingEngine
    contracts: list[Contract]

    if TYPE_CHECKING:  # members of SimVenue and its other parts this one uses
        def now_ms(self) -> int: ...
        async def _params(self, request: web.Request) -> dict[str, str]: ...
        async def _signed(self, request: web.Request) -> tuple[Account, dict[str, str]]: ...
        async def _flush_users(self) -> None: ...

    def _position_entry(self, account: Account, symbol: str) -> dict[str, Any]:
        pos = account.positions[symbol]
        ins = pos.instrument
        mark = self.engine.mark(symbol)
        liq = self.engine.liquidation_price_units(account, symbol)
        notional = pos.instrument.notional(mark, pos.qty_steps) if pos.qty_steps else 0
        isolated = account.isolated_wallet.get(symbol, 0)
        upnl = pos.unrealized_pnl(mark)
        return {"symbol": symbol, "positionAmt": ins.format_qty(pos.qty_steps),
                "entryPrice": price_str(pos.entry_price), "breakEvenPrice": price_str(pos.entry_price),
                "markPrice": mark_str(ins, mark), "unRealizedProfit": money_str(upnl),
                "liquidationPrice": units8_str(liq) if liq is not None else "0",
                "notional": money_str(notional), "isolatedMargin": money_str(isolated + upnl if isolated else 0),
                "isolatedWallet": money_str(isolated),
                "positionSide": "BOTH", "updateTime": self.now_ms(),
                "initialMargin": money_str(self.engine.position_initial_margin(account, symbol)),
                "maintMargin": money_str(pos.maint_margin(mark))}

    async def position_risk_v2(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        symbols = [params["symbol"]] if params.get("symbol") else list(account.positions)
        out = []
        for symbol in symbols:
            self.engine.instrument(symbol)
            entry = self._position_entry(account, symbol)
            out.append({k: entry[k] for k in ("entryPrice", "breakEvenPrice", "isolatedMargin", "liquidationPrice",
                                              "markPrice", "positionAmt", "notional", "isolatedWallet", "symbol",
                                              "positionSide", "updateTime")} |
                       {"marginType": account.margin_type[symbol], "isAutoAddMargin": "false",
                        "leverage": str(account.leverage[symbol]),
                        "maxNotionalValue": _whole(self.engine.max_notional(account, symbol)),
                        "unRealizedProfit": entry["unRealizedProfit"]})
        return web.json_response(out)

    async def position_risk_v3(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        symbols = [params["symbol"]] if params.get("symbol") else list(account.positions)
        out = []
        for symbol in symbols:
            self.engine.instrument(symbol)
            has_orders = any(o.is_open and o.symbol == symbol for o in account.orders.values())
            if account.positions[symbol].qty_steps or has_orders:
                entry = self._position_entry(account, symbol)
                entry.update(marginAsset="USDT", positionInitialMargin=entry["initialMargin"],
                             openOrderInitialMargin=money_str(self.engine.open_order_margin(account, symbol)),
                             adl=0, bidNotional="0", askNotional="0")
                out.append(entry)
        return web.json_response(out)

    def _totals(self, account: Account) -> dict[str, str]:
        upnl = self.engine.unrealized(account)
        position_im = sum(self.engine.position_initial_margin(account, s) for s in account.positions)
        order_im = self.engine.open_order_margin(account)
        available = self.engine.available_balance(account)
        return {"totalInitialMargin": money_str(position_im + order_im),
                "totalMaintMargin": money_str(self.engine.maint_margin(account)),
                "totalWalletBalance": money_str(account.wallet), "totalUnrealizedProfit": money_str(upnl),
                "totalMarginBalance": money_str(account.wallet + upnl),
                "totalPositionInitialMargin": money_str(position_im),
                "totalOpenOrderInitialMargin": money_str(order_im),
                "totalCrossWalletBalance": money_str(self.engine.cross_wallet(account)),
                "totalCrossUnPnl": money_str(self.engine.unrealized(account, cross_only=True)),
                "availableBalance": money_str(available), "maxWithdrawAmount": money_str(max(available, 0))}

    def _asset(self, account: Account) -> dict[str, Any]:
        t = self._totals(account)
        return {"asset": "USDT", "walletBalance": t["totalWalletBalance"], "unrealizedProfit": t["totalUnrealizedProfit"],
                "marginBalance": t["totalMarginBalance"], "maintMargin": t["totalMaintMargin"],
                "initialMargin": t["totalInitialMargin"], "positionInitialMargin": t["totalPositionInitialMargin"],
                "openOrderInitialMargin": t["totalOpenOrderInitialMargin"],
                "crossWalletBalance": t["totalCrossWalletBalance"], "crossUnPnl": t["totalCrossUnPnl"],
                "availableBalance": t["availableBalance"], "maxWithdrawAmount": t["maxWithdrawAmount"],
                "updateTime": self.now_ms()}

    async def account_v2(self, request: web.Request) -> web.Response:
        account, _ = await self._signed(request)
        positions = []
        for symbol in account.positions:
            e = self._position_entry(account, symbol)
            positions.append({"symbol": symbol, "initialMargin": e["initialMargin"], "maintMargin": e["maintMargin"],
                              "unrealizedProfit": e["unRealizedProfit"], "positionInitialMargin": e["initialMargin"],
                              "openOrderInitialMargin": money_str(self.engine.open_order_margin(account, symbol)),
                              "leverage": str(account.leverage[symbol]),
                              "isolated": self.engine.isolated(account, symbol),
                              "entryPrice": e["entryPrice"],
                              "maxNotional": _whole(self.engine.max_notional(account, symbol)), "bidNotional": "0",
                              "askNotional": "0", "positionSide": "BOTH", "positionAmt": e["positionAmt"],
                              "updateTime": e["updateTime"]})
        return web.json_response({"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True,
                                  "updateTime": 0, "multiAssetsMargin": account.multi_assets, "tradeGroupId": -1,
                                  **self._totals(account), "assets": [dict(self._asset(account), marginAvailable=True)],
                                  "positions": positions})

    async def account_v3(self, request: web.Request) -> web.Response:
        account, _ = await self._signed(request)
        positions = []
        for symbol, pos in account.positions.items():
            if pos.qty_steps:
                e = self._position_entry(account, symbol)
                positions.append({"symbol": symbol, "positionSide": "BOTH", "positionAmt": e["positionAmt"],
                                  "unrealizedProfit": e["unRealizedProfit"], "isolatedMargin": e["isolatedMargin"],
                                  "notional": e["notional"], "isolatedWallet": e["isolatedWallet"],
                                  "initialMargin": e["initialMargin"], "maintMargin": e["maintMargin"],
                                  "updateTime": e["updateTime"]})
        return web.json_response({**self._totals(account), "assets": [self._asset(account)], "positions": positions})

    async def balance(self, request: web.Request) -> web.Response:
        account, _ = await self._signed(request)
        t = self._totals(account)
        return web.json_response([{"accountAlias": "SgsR", "asset": "USDT", "balance": t["totalWalletBalance"],
                                   "crossWalletBalance": t["totalCrossWalletBalance"], "crossUnPnl": t["totalCrossUnPnl"],
                                   "availableBalance": t["availableBalance"], "maxWithdrawAmount": t["maxWithdrawAmount"],
                                   "marginAvailable": True, "updateTime": self.now_ms()}])

    async def leverage(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        lev = strict.required_integer(params, "leverage")
        symbol = params.get("symbol", "")
        self.engine.set_leverage(account, symbol, lev)
        await self._flush_users()
        return web.json_response({"leverage": lev, "symbol": symbol,
                                  "maxNotionalValue": _whole(self.engine.max_notional(account, symbol))})

    async def margin_type(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        symbol = params.get("symbol", "")
        self.engine.instrument(symbol)
        kind = params.get("marginType", "").upper()
        if kind not in ("ISOLATED", "CROSSED"):
            raise VenueError(-1102, "Mandatory parameter 'marginType' was not sent, was empty/null, or malformed.")
        wanted = "isolated" if kind == "ISOLATED" else "cross"
        if account.margin_type[symbol] == wanted:
            raise VenueError(-4046, "No need to change margin type.")
        if any(o.is_open and o.symbol == symbol for o in account.orders.values()):
            raise VenueError(-4047, "Margin type cannot be changed if there exists open orders.")
        if wanted == "isolated" and account.multi_assets:
            raise VenueError(-4168, "Unable to adjust to isolated-margin mode under the Multi-Assets mode.")
        if account.positions[symbol].qty_steps:
            raise VenueError(-4048, "Margin type cannot be changed if there exists position.")
        account.margin_type[symbol] = wanted
        return web.json_response({"code": 200, "msg": "success"})

    async def multi_assets_margin(self, request: web.Request) -> web.Response:
        account, _ = await self._signed(request)
        return web.json_response({"multiAssetsMargin": account.multi_assets})

    async def set_multi_assets_margin(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        text = params.get("multiAssetsMargin", "").lower()
        if text not in ("true", "false"):
            raise VenueError(-1102, "Mandatory parameter 'multiAssetsMargin' was not sent, was empty/null, "
                                    "or malformed.")
        self.engine.set_multi_assets(account, text == "true")
        await self._flush_users()
        return web.json_response({"code": 200, "msg": "success"})

    async def symbol_config(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/symbolConfig: each symbol's margin type (here spelled CROSSED / ISOLATED) and leverage."""
        account, params = await self._signed(request)
        symbols = [params["symbol"]] if params.get("symbol") else list(account.positions)
        out = []
        for symbol in symbols:
            self.engine.instrument(symbol)
            out.append({"symbol": symbol, "marginType": "ISOLATED" if account.margin_type[symbol] == "isolated"
                        else "CROSSED", "isAutoAddMargin": False, "leverage": account.leverage[symbol],
                        "maxNotionalValue": _whole(self.engine.max_notional(account, symbol))})
        return web.json_response(out)

    async def position_side(self, request: web.Request) -> web.Response:
        account, _ = await self._signed(request)
        return web.json_response({"dualSidePosition": account.dual_side})

    async def set_position_side(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        text = params.get("dualSidePosition", "").lower()
        if text not in ("true", "false"):
            raise VenueError(-1102, "Mandatory parameter 'dualSidePosition' was not sent, was empty/null, "
                                    "or malformed.")
        dual = text == "true"
        if dual == account.dual_side:
            raise VenueError(-4059, "No need to change position side.")
        if any(o.is_open for o in account.orders.values()):
            raise VenueError(-4067, "Position side cannot be changed if there exists open orders.")
        if any(p.qty_steps for p in account.positions.values()):
            raise VenueError(-4068, "Position side cannot be changed if there exists position.")
        account.dual_side = dual
        return web.json_response({"code": 200, "msg": "success"})

    async def leverage_bracket(self, request: web.Request) -> web.Response:
        """The tiers the venue computes with (brackets.py): a list, or one object when `symbol` is sent."""
        _, params = await self._signed(request)
        symbol = params.get("symbol")
        if symbol:
            self.engine.instrument(symbol)
            return web.json_response(brackets.wire_entry(symbol, brackets.table(symbol)))
        return web.json_response([brackets.wire_entry(i.symbol, brackets.table(i.symbol)) for i in self.contracts])

    async def commission_rate(self, request: web.Request) -> web.Response:
        _, params = await self._signed(request)
        self.engine.instrument(params.get("symbol", ""))
        return web.json_response({"symbol": params["symbol"],
                                  "makerCommissionRate": rate_str(self.engine.config.maker_fee, 4),
                                  "takerCommissionRate": rate_str(self.engine.config.taker_fee, 4)})


def _whole(units: int) -> str:
    """maxNotionalValue as the venue prints it: whole USDT ("250000")."""
    return str(units // 10**MONEY_SCALE)
