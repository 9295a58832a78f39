"""Scaled integers for figures SQL aggregates: exact, and alike on PostgreSQL and SQLite.

SQLite keeps decimals as text (see `db.ExactDecimal`), so sums and orderings over them would be
text or float operations. Analytics columns therefore hold `round(value × scale)` as integers:
`*_micro` for ratios and term values (millionths), `*_cents` for money (hundredths).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

MICRO = Decimal(1_000_000)
CENTS = Decimal(100)


def to_micro(value: Decimal) -> int:
    """Millionths, rounded half to even."""
    return int((value * MICRO).to_integral_value(ROUND_HALF_EVEN))


def to_cents(value: Decimal) -> int:
    """Hundredths, rounded half to even."""
    return int((value * CENTS).to_integral_value(ROUND_HALF_EVEN))


def from_micro(value: int | Decimal) -> Decimal:
    return Decimal(value) / MICRO


def from_cents(value: int | Decimal) -> Decimal:
    return Decimal(value) / CENTS
