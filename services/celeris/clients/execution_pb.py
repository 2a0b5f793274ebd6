"""Execution values <-> protobuf (used by the gRPC servicer and by gRPC clients of execution)."""

from __future__ import annotations

from typing import Any

from celeris.api.v1 import common_pb2, execution_pb2
from celeris.domain.funding import asset_scale
from celeris.domain.instruments import (
    Instrument,
    OrderType,
    PriceMatch,
    SelfTradePrevention,
    TimeInForce,
    WorkingType,
)
from celeris.domain.messages import AmendRequest, Fill, OrderRequest, Outcome
from celeris.domain.modes import Mode
from celeris.domain.orders import Order, OrderStatus
from celeris.domain.values import MONEY_SCALE, DecimalFormatError, OffGridError, Side
from celeris.runtime.convert import BadDecimal, decimal_str

SIDE = {Side.BUY: common_pb2.SIDE_BUY, Side.SELL: common_pb2.SIDE_SELL}
SIDE_IN = {v: k for k, v in SIDE.items()}
TYPE = {t: getattr(execution_pb2, f"ORDER_TYPE_{t.value}") for t in OrderType}
TYPE_IN = {v: k for k, v in TYPE.items()}
TIF = {TimeInForce.GTC: execution_pb2.TIME_IN_FORCE_GTC, TimeInForce.IOC: execution_pb2.TIME_IN_FORCE_IOC,
       TimeInForce.FOK: execution_pb2.TIME_IN_FORCE_FOK, TimeInForce.GTX: execution_pb2.TIME_IN_FORCE_GTX,
       TimeInForce.GTD: execution_pb2.TIME_IN_FORCE_GTD}
TIF_IN = {v: k for k, v in TIF.items()}
WORKING_IN = {execution_pb2.WORKING_TYPE_UNSPECIFIED: WorkingType.CONTRACT_PRICE,
              **{getattr(execution_pb2, f"WORKING_TYPE_{w.value}"): w for w in WorkingType}}
STP_IN = {execution_pb2.SELF_TRADE_PREVENTION_UNSPECIFIED: SelfTradePrevention.NONE,
          **{getattr(execution_pb2, f"SELF_TRADE_PREVENTION_{m.value}"): m for m in SelfTradePrevention}}
PRICE_MATCH_IN = {execution_pb2.PRICE_MATCH_UNSPECIFIED: PriceMatch.NONE,
                  **{getattr(execution_pb2, f"PRICE_MATCH_{m.value}"): m for m in PriceMatch}}
STATUS = {s: getattr(execution_pb2, f"ORDER_STATUS_{s.value}") for s in OrderStatus}
MODE = {Mode.OBSERVATION: common_pb2.MODE_OBSERVATION, Mode.SIMULATION: common_pb2.MODE_SIMULATION,
        Mode.LIVE: common_pb2.MODE_LIVE}


class BadRequest(ValueError):
    """A request that cannot be turned into an order (the message says which field)."""


def _grid_value(ins: Instrument, dec: common_pb2.Decimal, qty: bool, field: str) -> int:
    grid = ins.qty_grid if qty else ins.price_grid
    try:
        return grid.parse(decimal_str(dec, field))
    except BadDecimal as exc:
        raise BadRequest(str(exc)) from None
    except OffGridError:
        raise BadRequest(f"{field} is not a multiple of {grid.increment}") from None
    except DecimalFormatError:
        raise BadRequest(f"{field} has more than {grid.scale} decimals") from None


def order_request(pb: execution_pb2.SubmitOrderRequest, instruments: dict[str, Instrument]) -> OrderRequest:
    if len(pb.request_id) > 128 or len(pb.strategy_id) > 64 or len(pb.client_order_id) > 36:
        raise BadRequest("request_id (128), strategy_id (64) or client_order_id (36 characters) is too long")
    ins = instruments.get(pb.symbol)
    if ins is None:
        raise BadRequest(f"unknown symbol {pb.symbol!r}")
    if pb.side not in SIDE_IN:
        raise BadRequest("side must be BUY or SELL")
    if pb.type not in TYPE_IN:
        raise BadRequest("type is required")
    order_type = TYPE_IN[pb.type]
    if pb.time_in_force != execution_pb2.TIME_IN_FORCE_UNSPECIFIED and pb.time_in_force not in TIF_IN:
        raise BadRequest("time_in_force is not one of the venue's values")  # not silently GTC
    tif = TIF_IN.get(pb.time_in_force, TimeInForce.GTC)
    if not pb.HasField("quantity") and not pb.close_position:
        raise BadRequest("quantity is required")
    for value, table, name in ((pb.working_type, WORKING_IN, "working_type"), (pb.stp_mode, STP_IN, "stp_mode"),
                               (pb.price_match, PRICE_MATCH_IN, "price_match")):
        if value not in table:
            raise BadRequest(f"{name} is not one of the venue's values")
    price = _grid_value(ins, pb.price, False, "price") if pb.HasField("price") else None
    stop = _grid_value(ins, pb.stop_price, False, "stop_price") if pb.HasField("stop_price") else None
    activation = (_grid_value(ins, pb.activation_price, False, "activation_price")
                  if pb.HasField("activation_price") else None)
    qty = _grid_value(ins, pb.quantity, True, "quantity") if pb.HasField("quantity") else 0
    return OrderRequest(pb.request_id, pb.symbol, SIDE_IN[pb.side], order_type, qty, price, tif, pb.reduce_only, stop,
                        pb.strategy_id, pb.client_order_id, pb.ts_signal_ns,
                        callback_rate_bps=pb.callback_rate_bps or None, activation_price_ticks=activation,
                        working_type=WORKING_IN[pb.working_type], price_protect=pb.price_protect,
                        close_position=pb.close_position, stp_mode=STP_IN[pb.stp_mode],
                        price_match=PRICE_MATCH_IN[pb.price_match], good_till_ms=pb.good_till_ms)


def amend_request(pb: execution_pb2.AmendOrderRequest, instruments: dict[str, Instrument]) -> AmendRequest:
    ins = instruments.get(pb.symbol)
    if ins is None:
        raise BadRequest(f"unknown symbol {pb.symbol!r}")
    if not pb.HasField("quantity") or not pb.HasField("price"):
        raise BadRequest("an amendment needs quantity and price")
    return AmendRequest(pb.request_id, pb.symbol, pb.client_order_id, _grid_value(ins, pb.quantity, True, "quantity"),
                        _grid_value(ins, pb.price, False, "price"))


def _price(ins: Instrument, ticks: int | None) -> common_pb2.Decimal | None:
    if ticks is None:
        return None
    return common_pb2.Decimal(mantissa=ins.price_grid.units(ticks), scale=ins.price_grid.scale)


def _qty(ins: Instrument, steps: int) -> common_pb2.Decimal:
    return common_pb2.Decimal(mantissa=ins.qty_grid.units(steps), scale=ins.qty_grid.scale)


def order_pb(order: Order, ins: Instrument, mode: Mode) -> execution_pb2.Order:
    avg = None
    if order.filled_steps:
        # Average price with 4 more decimals than the tick, truncated: exact enough for people.
        scale = ins.price_grid.scale + 4
        units = order.filled_quote * ins.price_grid.step_units * 10**4 // order.filled_steps
        avg = common_pb2.Decimal(mantissa=units, scale=scale)
    return execution_pb2.Order(
        client_order_id=order.client_order_id, venue_order_id=order.venue_order_id or 0, symbol=order.symbol,
        side=SIDE[order.side], type=TYPE[order.order_type], time_in_force=TIF.get(order.time_in_force, 0),
        status=STATUS[order.status], quantity=_qty(ins, order.qty_steps), price=_price(ins, order.price_ticks),
        stop_price=_price(ins, order.stop_price_ticks), filled_quantity=_qty(ins, order.filled_steps),
        average_price=avg, reduce_only=order.reduce_only, strategy_id=order.strategy_id, mode=MODE[mode],
        reject_reason=order.reject_reason, ts_created_ns=order.ts_created_ns, ts_updated_ns=order.ts_updated_ns)


def ack_pb(outcome: Outcome, instruments: dict[str, Instrument], mode: Mode) -> execution_pb2.OrderAck:
    ack = execution_pb2.OrderAck(request_id=outcome.request_id, accepted=outcome.accepted)
    if outcome.order is not None:
        ack.order.CopyFrom(order_pb(outcome.order, instruments[outcome.order.symbol], mode))
    if outcome.rejection is not None:
        ack.error.CopyFrom(common_pb2.Error(code=outcome.rejection.code.value, message=outcome.rejection.message,
                                            venue_code=outcome.rejection.venue_code))
    return ack


def fill_pb(fill: Fill, ins: Instrument, sequence: int, now_ns: int) -> execution_pb2.Fill:
    return execution_pb2.Fill(
        header=common_pb2.StreamHeader(sequence=sequence, ts_event_ns=fill.ts_event_ns, ts_publish_ns=now_ns),
        symbol=fill.symbol, client_order_id=fill.client_order_id, venue_order_id=fill.venue_order_id,
        trade_id=fill.trade_id, side=SIDE[fill.side], price=_price(ins, fill.price_ticks),
        quantity=_qty(ins, fill.qty_steps),
        commission=common_pb2.Decimal(mantissa=fill.commission, scale=asset_scale(fill.commission_asset)),
        commission_asset=fill.commission_asset, is_maker=fill.is_maker,
        realized_pnl=common_pb2.Decimal(mantissa=fill.realized_pnl, scale=MONEY_SCALE), strategy_id=fill.strategy_id,
        mode=MODE[Mode(fill.mode)])


def paper_account_pb(paper: Any, request_id: str = "") -> execution_pb2.PaperAccount:
    """The paper venue's account on the wire (wallet, signed positions with exact entries, book mids, the
    funding payments settled)."""
    out = execution_pb2.PaperAccount(request_id=request_id, available=True, leverage=paper.leverage,
                                     wallet=common_pb2.Decimal(mantissa=paper.wallet, scale=MONEY_SCALE))
    for symbol, position in paper.account_positions.items():
        ins = paper.instruments[symbol]
        entry = round(position.entry_price * 10**10)
        out.positions.add(symbol=symbol, quantity=_qty(ins, position.qty_steps),
                          entry_price=common_pb2.Decimal(mantissa=entry, scale=10))
    for symbol, book in paper.books.items():
        mid = book.mid()
        if mid is not None and paper.live[symbol]:
            out.marks.add(symbol=symbol, price=_price(paper.instruments[symbol], int(mid)))
    for number, paid in enumerate(paper.fundings, 1):
        out.fundings.add(id=number, symbol=paid.symbol, funding_time_ms=paid.funding_time_ms,
                         amount=common_pb2.Decimal(mantissa=paid.amount, scale=MONEY_SCALE))
    return out
