"""Reading the bodies of the simulator's /_sim/ admin endpoints strictly: a bad body is a 400 with a reason.

Owns `BadBody` (the refusal, with the reason the caller is told) and the readers every admin endpoint uses:
the body as a JSON object with only known keys (an empty body is an empty object), integers in a range
(JSON integers only: not booleans, floats or strings), finite numbers in a range, known symbols, and
decimal strings in a range of ticks or steps. Nothing is applied before the whole body has been read,
so a refused body changes nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from celeris.exchange_sim.contract import Contract


class BadBody(ValueError):
    """An admin body the simulator refuses; `reason` is what the 400 answer says."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def refusal(reason: str) -> web.Response:
    """A refused admin body: 400 with the reason, in the venue's {code, msg} shape (and `error`, as before)."""
    return web.json_response({"code": -1130, "msg": reason, "error": reason}, status=400)


async def read_object(request: web.Request, allowed: Iterable[str]) -> dict[str, Any]:
    """The body as a JSON object whose keys are all in `allowed`; an empty body is {}."""
    text = await request.text()
    if not text.strip():
        return {}
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        raise BadBody("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadBody("the body must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadBody(f"unknown keys {', '.join(repr(k[:40]) for k in unknown[:5])}; known: "
                      f"{', '.join(sorted(allowed))}")
    return body


def integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadBody(f"{name} must be a JSON integer")
    if not low <= value <= high:
        raise BadBody(f"{name} must be in {low}..{high}")
    return value


def number(value: Any, name: str, low: float, high: float, *, low_open: bool = False) -> float:
    """A duration or similar setting (never money): a finite JSON number in the range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadBody(f"{name} must be a JSON number")
    if not math.isfinite(value) or not (low < value if low_open else low <= value) or value > high:
        raise BadBody(f"{name} must be in {'(' if low_open else '['}{low}, {high}]")
    return float(value)


def symbol(value: Any, known: Iterable[str], name: str = "symbol") -> str:
    if not isinstance(value, str):
        raise BadBody(f"{name} must be a string")
    upper = value.upper()
    if upper not in set(known):
        raise BadBody(f"unknown symbol {value[:40]!r}")
    return upper


def quantity(value: Any, contract: Contract, name: str = "qty") -> int:
    """A signed quantity string on the symbol's step, at most its largest order size -> steps."""
    if not isinstance(value, str):
        raise BadBody(f"{name} must be a decimal string")
    negative = value.startswith("-")
    try:
        steps = contract.qty(value[1:] if negative else value)
    except ValueError as exc:
        raise BadBody(f"{name}: {str(exc)[:120]}") from None
    if steps < 0:
        raise BadBody(f"{name} must be a decimal string")
    largest = max(contract.limit_qty_units[1], contract.market_qty_units[1]) // contract.step_units
    if steps > largest:
        raise BadBody(f"{name} must be at most {contract.format_qty(largest)} in size")
    return -steps if negative else steps


def price(value: Any, contract: Contract, name: str = "price") -> int:
    """A positive price string on the symbol's tick within its PRICE_FILTER range -> ticks."""
    if not isinstance(value, str):
        raise BadBody(f"{name} must be a decimal string")
    try:
        ticks = contract.price(value)
    except ValueError as exc:
        raise BadBody(f"{name}: {str(exc)[:120]}") from None
    low = max(1, -(-contract.min_price_units // contract.tick_units))
    high = contract.max_price_units // contract.tick_units
    if not low <= ticks <= high:
        raise BadBody(f"{name} must be in {contract.format_price(low)}..{contract.format_price(high)}")
    return ticks
