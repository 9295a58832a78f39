"""The one strict reading of numbers in text (governance.number_text)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from governance.number_text import (
    NotANumber,
    OutOfRange,
    checked_text,
    looks_like_number,
    parse_decimal,
    to_decimal,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", "0"), ("-0", "0"), ("-0.00", "0.00"), ("+5", "5"), ("007", "7"), ("-2.5", "-2.5"),
     ("1e3", "1E+3"), ("1E-3", "0.001"), ("0e999999", "0")],
)  # fmt: skip
def test_numbers_written_as_numbers(text: str, value: str) -> None:
    parsed = parse_decimal(text)
    assert parsed == Decimal(value)
    assert str(parsed) == value


@pytest.mark.parametrize(
    "text",
    ["1_000", "١٢٣", "１２３", " 5", "5 ", "NaN", "Infinity", "inf", "0x10", ".5", "5.", "1e",
     "--5", "", "5e+", "1,000", "1" * 101],
)  # fmt: skip
def test_anything_else_is_not_a_number(text: str) -> None:
    with pytest.raises(NotANumber):
        parse_decimal(text)
    assert to_decimal(text) is None


@pytest.mark.parametrize("text", ["1e999999999", "1e30", "-1e30", "1e-61", "9" * 31])
def test_numbers_out_of_bounds(text: str) -> None:
    with pytest.raises(OutOfRange, match="out of range"):
        parse_decimal(text)


@pytest.mark.parametrize("text", ["1_000", " 5 ", "NaN", "-Infinity", "0x10", "٣", "1e999999999"])
def test_text_that_reads_as_a_number_must_be_written_as_one(text: str) -> None:
    assert looks_like_number(text) or text == "1e999999999"
    with pytest.raises(ValueError, match="number"):
        checked_text(text)


@pytest.mark.parametrize(
    "text", ["EMEA", "net 30", "+49 30 1234", "3-year", "v1.2.3", "x1", "01234"]
)
def test_other_text_is_text(text: str) -> None:
    assert checked_text(text) == text


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**29), max_value=10**29))
def test_every_finite_decimal_reads_back(value: Decimal) -> None:
    text = format(value, "f") if value.as_tuple().exponent >= -60 else None
    if text is not None:
        assert parse_decimal(text) == value
