"""The one way the service reads a number written as text, wherever numbers enter.

Python reads far more than digits as a number: `Decimal` and `int` take "1_000", " 5 ", Arabic-
Indic and full-width digits, "NaN" and "Infinity"; `int(x, 0)` and YAML 1.1 take "0x10". A value
one part of the service reads as a number and another as text, or that is stored and only fails
when checked, is how a wrong answer gets through. So a number in text is ASCII digits with an
optional sign, fraction and exponent, within bounds (`1000`, `-2.5`, `1e3`), and text that any of those
readers would take for a number but that is not written so is refused, naming the field.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from pydantic_core import PydanticCustomError

# `[0-9]`, not `\d`: `\d` matches every Unicode digit.
_STRICT = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
# Bounds that keep every parse cheap and every figure far inside Decimal's and the columns'
# range ("1e999999999" is not a commercial figure): at most this many characters, numbers below
# 10**MAX_DIGITS in size, written with at most MAX_PLACES decimal places.
MAX_LENGTH = 100
MAX_DIGITS = 30
MAX_PLACES = 60
_fullmatch = _STRICT.fullmatch
# Plain notation this short is always inside the bounds.
_SHORT = 25
# Letters a number-like word can start with: NaN, sNaN, inf, Infinity.
_MAYBE_NUMBER_WORD = frozenset("nNsSiI")
_ZERO = Decimal(0)
# What Python, YAML 1.1 or a spreadsheet would read as a number: Unicode digits, separators,
# surrounding space, a bare point, hex/octal/binary prefixes, NaN and the infinities.
_NUMBER_LIKE = re.compile(
    r"\s*[-+]?(?:"
    r"(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][-+]?[\d_]+)?"
    r"|0[xXoObB][0-9a-fA-F_]+"
    r"|(?i:s?nan|inf(?:inity)?)"
    r")\s*"
)


class NotANumber(ValueError):
    """The text is not a number as this service writes them."""


class OutOfRange(ValueError):
    """The text is a number, but too large or too finely written."""


HOW = (
    "write numbers with ASCII digits, an optional sign, '.' and exponent (1000, -2.5, 1e3): "
    "no spaces, '_', other digits, hex, NaN or Infinity"
)


def parse_decimal(text: str) -> Decimal:
    """The finite Decimal `text` spells; NotANumber or OutOfRange (ValueErrors with a message
    for the client) otherwise. A zero has no sign: "-0" reads as 0."""
    if len(text) > MAX_LENGTH or _fullmatch(text) is None:
        raise NotANumber(f"{_shown(text)} is not a number: {HOW}")
    value = Decimal(text)
    # Checks ordered for the common case (a short number in plain notation): a fraction's
    # places are bounded by the length, so only an exponent needs the digits looked at.
    if not value:
        return value.copy_abs() if value.adjusted() <= 0 else _ZERO
    if value.adjusted() >= MAX_DIGITS or (
        ("e" in text or "E" in text) and value.as_tuple().exponent < -MAX_PLACES  # type: ignore[operator]
    ):
        raise OutOfRange(
            f"{_shown(text)} is out of range: numbers must be below 10^{MAX_DIGITS} in size, "
            f"with at most {MAX_PLACES} decimal places"
        )
    return value


def to_decimal(value: object) -> Decimal | None:
    """A finite Decimal from a number or strictly written numeric text; None for anything
    else (booleans, text that is not a number, NaN, the infinities)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return (value.copy_abs() if value.is_zero() else value) if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(unsigned_zero(value))) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return parse_decimal(value)
        except ValueError:
            return None
    return None


def looks_like_number(text: str) -> bool:
    """Whether some lenient reader (Python, YAML 1.1) would take `text` for a number."""
    return _NUMBER_LIKE.fullmatch(text) is not None


def checked_text(text: str) -> str:
    """Free text as stored: text that reads as a number must be written as one (else
    ValueError); a number's leading '+' and the sign of a zero are dropped ("-0" → "0")."""
    first = text[:1]
    if first.isalpha() and first not in _MAYBE_NUMBER_WORD:
        return text  # the common case, an option or a name: not a number by its first letter
    if len(text) <= MAX_LENGTH and _fullmatch(text):
        if len(text) > _SHORT or "e" in text or "E" in text:
            parse_decimal(text)  # bounds
        if first == "+" or (first == "-" and not text.strip("-0.")):
            return text[1:]
        return text
    if looks_like_number(text):
        raise ValueError(f"{_shown(text)} reads as a number but is not written as one: {HOW}")
    return text


def unsigned_zero(value: float) -> float:
    """-0.0 → 0.0 (other floats unchanged)."""
    return 0.0 if value == 0 else value


# --- as pydantic validators, so a refusal is a 422 naming the field ---------------------------


def number_from_text(value: object) -> object:
    """Before a Decimal field: text is read by `parse_decimal`, a zero loses its sign; other
    values pass on."""
    if isinstance(value, str):
        try:
            return parse_decimal(value)
        except ValueError as exc:
            raise PydanticCustomError("number_text", str(exc)) from None
    if isinstance(value, float):
        return unsigned_zero(value)
    if isinstance(value, Decimal) and value.is_zero():
        return value.copy_abs()
    return value


def text_checked(value: object) -> object:
    """After a field of text or numbers: text goes through `checked_text`, floats lose the
    sign of zero; other values pass on."""
    if isinstance(value, str):
        try:
            return checked_text(value)
        except ValueError as exc:
            raise PydanticCustomError("number_text", str(exc)) from None
    if isinstance(value, float):
        if abs(value) >= 10.0**MAX_DIGITS:
            raise PydanticCustomError(
                "number_text", f"{value!r} is out of range: numbers must be below 10^{MAX_DIGITS}"
            )
        return unsigned_zero(value)
    return value


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")
