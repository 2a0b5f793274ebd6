"""Strict reading of request parameter values, with the codes and messages Binance USD-M answers them with.

Owns the grammar of a parameter value as the venue reads it, for every signed endpoint (REST, batches and
the WebSocket API alike): a DECIMAL is `^([0-9]{1,20})(\\.[0-9]{1,20})?$` and an integer (LONG / INT)
`^[0-9]{1,20}$` within int64; anything else -- an exponent ("1e3"), a sign ("-0", "+1"), NaN, Infinity, a
space, a non-ASCII digit, an underscore, more than 20 digits -- is -1100 "Illegal characters found in
parameter 'X'; legal range is '...'.", the venue's own wording with the pattern it names (seen in real
answers for price, quantity and orderId). A value that is missing or empty where it is mandatory is -1102;
a boolean or enum value outside its set is -1130 "Data sent for parameter 'X' is not valid." (Binance does
not document the code for a junk boolean; -1130 is the simulator's choice, in the same family).
Why one module: Python's int() and float() read "1_000", " 7", "+5", "٣" and "nan"; every handler reading
values its own way is how the simulator came to answer "(ValueError)" and -1111 where Binance says -1100.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from celeris.exchange_sim.state import VenueError

DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
INTEGER_RANGE = r"^[0-9]{1,20}$"
_DECIMAL = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?")
_INTEGER = re.compile(r"[0-9]{1,20}")
INT64_MAX = 2**63 - 1
MAX_NAME = 64
"""A parameter name echoed in a message is cut to this (names come from the request on the WebSocket API)."""


def illegal(name: str, legal_range: str) -> VenueError:
    return VenueError(-1100, f"Illegal characters found in parameter '{name[:MAX_NAME]}'; legal range is "
                             f"'{legal_range}'.")


def malformed(name: str) -> VenueError:
    return VenueError(-1102, f"Mandatory parameter '{name[:MAX_NAME]}' was not sent, was empty/null, or malformed.")


def invalid(name: str) -> VenueError:
    return VenueError(-1130, f"Data sent for parameter '{name[:MAX_NAME]}' is not valid.")


def required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise malformed(name)
    return value


def decimal(name: str, text: str) -> str:
    """A DECIMAL value as sent, once it is one (the caller reads its precision against the asset's)."""
    if _DECIMAL.fullmatch(text) is None:
        raise illegal(name, DECIMAL_RANGE)
    return text


def integer(name: str, text: str) -> int:
    """A LONG / INT value: ASCII digits only, at most 20 of them, and no more than int64 holds."""
    if _INTEGER.fullmatch(text) is None:
        raise illegal(name, INTEGER_RANGE)
    value = int(text)
    if value > INT64_MAX:
        raise illegal(name, INTEGER_RANGE)
    return value


def optional_integer(params: Mapping[str, str], name: str) -> int | None:
    """An optional integer: None when absent or empty (as the venue treats an empty optional value)."""
    text = params.get(name)
    if text is None or text == "":
        return None
    return integer(name, text)


def required_integer(params: Mapping[str, str], name: str) -> int:
    return integer(name, required(params, name))


def boolean(params: Mapping[str, str], name: str, default: bool = False) -> bool:
    """A BOOLEAN value: "true" or "false" in any case; absent is the default."""
    text = params.get(name)
    if text is None:
        return default
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise invalid(name)
    return lowered == "true"


def choice(params: Mapping[str, str], name: str, allowed: Iterable[str], default: str) -> str:
    """An ENUM value outside the venue's codes for side, type and timeInForce: absent or empty is the default."""
    text = params.get(name) or default
    if text not in tuple(allowed):
        raise invalid(name)
    return text
