"""Binance's real BTCUSDT leverage brackets, as GET /fapi/v1/leverageBracket answers (for tests).

Source: a recorded ccxt `fapiPrivate_get_leverage_bracket` answer for BTCUSDT (public repository
boolean404/heikin-ashi-trading-bot, json/fapiPrivate_get_leverage_bracket.py, found with the `search`
tool). ccxt hands the values back as strings; the venue itself sends JSON numbers, so BODY_NUMBERS is the
same table as the venue spells it. Every cum follows cum_k = cum_(k-1) + floor_k x (rate_k - rate_(k-1)).
"""

from __future__ import annotations

ROWS = [  # bracket, initialLeverage, notionalFloor, notionalCap, maintMarginRatio, cum
    (1, 125, 0, 50_000, "0.004", "0.0"),
    (2, 100, 50_000, 250_000, "0.005", "50.0"),
    (3, 50, 250_000, 3_000_000, "0.01", "1300.0"),
    (4, 20, 3_000_000, 20_000_000, "0.025", "46300.0"),
    (5, 10, 20_000_000, 40_000_000, "0.05", "546300.0"),
    (6, 5, 40_000_000, 100_000_000, "0.1", "2546300.0"),
    (7, 4, 100_000_000, 120_000_000, "0.125", "5046300.0"),
    (8, 3, 120_000_000, 200_000_000, "0.15", "8046300.0"),
    (9, 2, 200_000_000, 300_000_000, "0.25", "28046300.0"),
    (10, 1, 300_000_000, 500_000_000, "0.5", "103046300.0"),
]

BODY_STRINGS = [{"symbol": "BTCUSDT", "brackets": [
    {"bracket": str(b), "initialLeverage": str(lev), "notionalCap": str(cap), "notionalFloor": str(floor),
     "maintMarginRatio": rate, "cum": cum} for b, lev, floor, cap, rate, cum in ROWS]}]
"""As ccxt recorded it."""

BODY_NUMBERS = [{"symbol": "BTCUSDT", "notionalCoef": 1.0, "brackets": [
    {"bracket": b, "initialLeverage": lev, "notionalCap": cap, "notionalFloor": floor,
     "maintMarginRatio": float(rate), "cum": float(cum)} for b, lev, floor, cap, rate, cum in ROWS]}]
"""As the venue sends it (JSON numbers, decoded to int / float)."""
