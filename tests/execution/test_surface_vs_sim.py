"""Execution's own checks of the order surface against the simulated venue's, end to end over real sockets:
hypothesis draws orders of every type with every surface parameter (trailing callback and activation,
workingType, priceProtect, closePosition, STP, priceMatch, GTD dates around the venue's 600 s boundary),
execution sends what it accepts, and the venue must never refuse one of them for a parameter rule. Such a
refusal is a rule execution lacks: a live order that a pre-trade check was there to stop. Refusals that
depend on the market at arrival (would trigger at once, margin, no book) are the venue's to give."""

from __future__ import annotations

import itertools

from celeris.domain.instruments import OrderType, PriceMatch, SelfTradePrevention, TimeInForce, WorkingType
from celeris.domain.messages import OrderRequest, RejectCode
from celeris.domain.values import Side
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.execution.conftest import live_venue  # noqa: F401

# The venue's codes for a parameter or combination of parameters (not for the market at that moment).
PARAMETER_CODES = {-1100, -1102, -1106, -1111, -1115, -1116, -1117, -1130, -1136, -2007, -4001, -4002, -4003,
                   -4004, -4005, -4006, -4007, -4013, -4014, -4015, -4023, -4031, -4061, -4120, -4137, -5037,
                   -5038, -5039, -5040}
_ids = itertools.count(1)


def _maybe(draw, value, wrong):
    """Mostly the value the order type takes, sometimes a wrong one: both sides of each rule get drawn."""
    return draw(st.sampled_from([value] * 7 + [wrong]))


@st.composite
def surface_orders(draw, bid: int, now_ms: int) -> OrderRequest:
    order_type = draw(st.sampled_from(list(OrderType)))
    side = draw(st.sampled_from(list(Side)))
    away = -1 if side is Side.BUY else 1  # resting, not crossing
    near = bid + away * draw(st.integers(50, 1500))
    trigger = bid - away * draw(st.integers(50, 1500))  # a stop on the far side: not triggered at once
    priced = order_type in (OrderType.LIMIT, OrderType.STOP, OrderType.TAKE_PROFIT)
    stopped = order_type not in (OrderType.LIMIT, OrderType.MARKET, OrderType.TRAILING_STOP_MARKET)
    trailing = order_type is OrderType.TRAILING_STOP_MARKET
    match = draw(st.sampled_from([PriceMatch.NONE] * 3 + list(PriceMatch))) if priced else \
        _maybe(draw, PriceMatch.NONE, PriceMatch.QUEUE)
    tif = draw(st.sampled_from(list(TimeInForce))) if priced else _maybe(draw, TimeInForce.GTC, TimeInForce.GTD)
    close = draw(st.booleans()) if order_type in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET) else \
        _maybe(draw, False, True)
    good_till = draw(st.sampled_from([now_ms + 599_000, now_ms + 600_000, now_ms + 600_500, now_ms + 601_000,
                                      now_ms + 3_600_000])) if tif is TimeInForce.GTD else _maybe(draw, 0, now_ms)
    return OrderRequest(
        f"sv-{next(_ids)}", "BTCUSDT", side, order_type, 0 if close else draw(st.sampled_from([1, 10, 10, 7, 0])),
        _maybe(draw, near if priced and match is PriceMatch.NONE else None, near), tif,
        reduce_only=_maybe(draw, False, True), stop_price_ticks=_maybe(draw, trigger if stopped else None, trigger),
        strategy_id="surface",
        callback_rate_bps=draw(st.sampled_from([10, 15, 100, 1000, 5, 1010])) if trailing else _maybe(draw, None, 100),
        activation_price_ticks=draw(st.sampled_from([None, trigger])) if trailing else _maybe(draw, None, trigger),
        working_type=draw(st.sampled_from(list(WorkingType))), price_protect=draw(st.booleans()),
        close_position=close, stp_mode=draw(st.sampled_from(list(SelfTradePrevention))), price_match=match,
        good_till_ms=good_till)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_what_execution_sends_the_venue_never_refuses_for_a_parameter(harness, data):
    h = harness
    now_ms = h.clock.now_ns() // 1_000_000
    request = data.draw(surface_orders(h.best(True), now_ms))
    outcome = await h.engine.submit(request)
    reason = outcome.rejection and (outcome.rejection.venue_code or outcome.rejection.message[:50])
    event("accepted" if outcome.accepted else f"{outcome.rejection.code.value} {reason}")
    if not outcome.accepted and outcome.rejection.code is RejectCode.VENUE_REJECTED:
        assert outcome.rejection.venue_code not in PARAMETER_CODES, (request, outcome.rejection)
    if outcome.accepted:
        await h.engine.cancel(f"{request.request_id}-c", "BTCUSDT", outcome.order.client_order_id)
