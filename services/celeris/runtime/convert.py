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


def decimal_str(value: common_pb2.Decimal) -> str:
    return format_units(value.mantissa, value.scale)


def decimal_fraction(value: common_pb2.Decimal) -> Fraction:
    return Fraction(value.mantissa, 10**value.scale)
