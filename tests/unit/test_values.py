from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celeris.domain.values import (
    DecimalFormatError, Grid, OffGridError, Side, format_units, money, money_str, normalize,
    parse_decimal, rescale, to_units,
)


@pytest.mark.parametrize("text,expected", [
    ("61800.20", (6180020, 2)), ("0", (0, 0)), ("-1.5", (-15, 1)), ("0.001", (1, 3)), (".5", (5, 1)),
    ("10.", (10, 0)),
])
def test_parse_decimal(text, expected):
    assert parse_decimal(text) == expected


@pytest.mark.parametrize("bad", ["", "abc", "1e5", "1_000", " 1", "1.2.3", "--1", "NaN", "inf", "+1"])
def test_malformed_decimals_are_refused(bad):
    with pytest.raises(DecimalFormatError):
        parse_decimal(bad)
    with pytest.raises(DecimalFormatError):
        to_units(bad, 8)


def test_to_units_refuses_to_round():
    assert to_units("0.0100", 3) == 10
    assert to_units("-0.5", 2) == -50
    with pytest.raises(DecimalFormatError):
        to_units("0.0105", 3)


@given(st.integers(-10**15, 10**15), st.integers(0, 12))
def test_format_parse_round_trip(units, scale):
    text = format_units(units, scale)
    assert to_units(text, scale) == units
    assert Decimal(text) == Decimal(units).scaleb(-scale)


def test_rescale_rounds_half_even():
    assert rescale(15, 1, 0) == 2 and rescale(25, 1, 0) == 2 and rescale(-15, 1, 0) == -2
    assert rescale(7, 2, 5) == 7000


def test_grid_with_display_precision_coarser_increment():
    grid = Grid.of("0.10", 2)  # BTCUSDT: 2 decimals shown, 0.1 tick
    assert grid == Grid(10, 2)
    assert grid.parse("61800.20") == 618002
    assert grid.format(618002) == "61800.20"
    with pytest.raises(OffGridError):
        grid.parse("61800.25")
    with pytest.raises(DecimalFormatError):
        grid.parse("61800.201")


def test_grid_refuses_increment_finer_than_precision():
    with pytest.raises(DecimalFormatError):
        Grid.of("0.001", 2)


def test_money_and_normalize():
    assert money("122624.12345678") == 12262412345678
    assert money_str(12262412345678) == "122624.12345678"
    assert money_str(-5, 8) == "-0.00000005"
    assert normalize("1.2300") == "1.23" and normalize("10") == "10" and normalize("5.000") == "5"


def test_side():
    assert Side.BUY.sign == 1 and Side.SELL.sign == -1 and Side.BUY.opposite is Side.SELL


from hypothesis import given, strategies as st  # noqa: E402

from celeris.domain.values import DecimalFormatError, to_units_general  # noqa: E402

_decimal_like = st.one_of(
    st.from_regex(r"-?[0-9]{0,8}(\.[0-9]{0,10})?", fullmatch=True),
    st.text(alphabet="0123456789.-+_ e٣²", max_size=12),
    st.text(max_size=10),
    # The fast path's own shape: digits, a point, then exactly `scale` characters of anything.
    st.builds(lambda w, f: w + "." + f, st.from_regex(r"-?[0-9]{0,6}", fullmatch=True),
              st.text(alphabet="0123456789_ +-٣²e", max_size=10)),
)


@given(text=_decimal_like, scale=st.integers(min_value=0, max_value=10))
def test_the_fast_path_of_to_units_answers_exactly_as_the_general_parser(text, scale):
    def outcome(parse):
        try:
            return parse(text, scale)
        except DecimalFormatError as exc:
            return type(exc)
    assert outcome(to_units) == outcome(to_units_general)


@given(whole=st.from_regex(r"-?[0-9]{0,6}", fullmatch=True),
       frac=st.text(alphabet="0123456789_ +-٣²e.", min_size=1, max_size=10))
def test_the_fast_path_shape_with_junk_in_its_decimals_answers_as_the_general_parser(whole, frac):
    # Exactly `scale` characters after the point: the strings the fast path takes, with junk among them.
    text, scale = whole + "." + frac, len(frac)

    def outcome(parse):
        try:
            return parse(text, scale)
        except DecimalFormatError as exc:
            return type(exc)
    assert outcome(to_units) == outcome(to_units_general)
