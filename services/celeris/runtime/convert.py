"""Domain values <-> protobuf messages for the shells (the one place decimals cross the contract)."""

from __future__ import annotations

from fractions import Fraction

from celeris.api.v1 import common_pb2
from celeris.domain.values import format_units, parse_decimal


def decimal_pb(text: str) -> common_pb2.Decimal:
    mantissa, scale = parse_decimal(text)
    return common_pb2.Decimal(mantissa=mantissa, scale=scale)


def units_pb(units: int, scale: int) -> common_pb2.Decimal:
    return common_pb2.Decimal(mantissa=units, scale=scale)


WIRE_MAX_SCALE = 18
INT64 = 2**63


class BadDecimal(ValueError):
    """A Decimal on the wire that no price, quantity or amount can be (the message names the field)."""


def checked(value: common_pb2.Decimal, field: str = "decimal") -> common_pb2.Decimal:
    """The edge's bound on every Decimal that comes in: scale 0..18, mantissa within int64."""
    if not 0 <= value.scale <= WIRE_MAX_SCALE:
        raise BadDecimal(f"{field}: scale {value.scale} is out of range 0..{WIRE_MAX_SCALE}")
    if not -INT64 <= value.mantissa < INT64:
        raise BadDecimal(f"{field}: mantissa is out of the int64 range")
    return value


def decimal_str(value: common_pb2.Decimal, field: str = "decimal") -> str:
    checked(value, field)
    return format_units(value.mantissa, value.scale)


def decimal_fraction(value: common_pb2.Decimal, field: str = "decimal") -> Fraction:
    checked(value, field)
    return Fraction(value.mantissa, 10**value.scale)
