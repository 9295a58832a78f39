"""The two rounding rules every response, CSV and Salesforce field follows.

- **Ratios** (a term's variance ratio, a deal's variance score, shares, rates, margin kept): at
  most 6 decimal places, rounded half to even, trailing zeros dropped (`0.256098`, `0.4`, `1`).
- **Money** (costs, amounts): exactly 2 decimal places, rounded half to even (`1250.00`).

Figures are kept exact (or in millionths and cents, see `governance.scaled`) and rounded only
when shown, here, so the same figure reads the same wherever it appears. Schemas declare their
fields `Ratio` or `Money`; the hot path (`POST /v1/checks`) writes `ratio_text` directly.
"""

from __future__ import annotations

import contextlib
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated

from pydantic import AfterValidator

RATIO_STEP = Decimal("0.000001")
MONEY_STEP = Decimal("0.01")
_ONE = Decimal(1)


def ratio(value: Decimal) -> Decimal:
    """A ratio by the ratio rule: 6 places at most, no trailing zeros, never an exponent."""
    if not value:
        return Decimal(0)
    # Beyond 28 digits (only far past a bottom line) a ratio is shown as it is.
    with contextlib.suppress(InvalidOperation):
        value = value.quantize(RATIO_STEP, ROUND_HALF_EVEN)
    value = value.normalize()
    if not value:
        return Decimal(0)
    if value.as_tuple().exponent > 0:  # type: ignore[operator]
        value = value.quantize(_ONE)
    return value


def money(value: Decimal) -> Decimal:
    """Money by the money rule: exactly 2 places."""
    try:
        return value.quantize(MONEY_STEP, ROUND_HALF_EVEN)
    except InvalidOperation:
        return value


def ratio_text(value: Decimal) -> str:
    """A ratio as JSON text."""
    return format(ratio(value), "f")


def maybe_ratio(value: Decimal | None) -> Decimal | None:
    return None if value is None else ratio(value)


def maybe_money(value: Decimal | None) -> Decimal | None:
    return None if value is None else money(value)


Ratio = Annotated[Decimal, AfterValidator(ratio)]
"""A response field holding a ratio (see the module docstring)."""
Money = Annotated[Decimal, AfterValidator(money)]
"""A response field holding money (see the module docstring)."""
