"""Outcomes with their per-term figures, deal preparations and after-action reviews.

Figures analytics aggregate are kept as scaled integers (`*_micro`: millionths, `*_cents`:
hundredths of the deal's currency) so SQL sums and orderings are exact and identical on
PostgreSQL and SQLite; the exact decimals stay beside them for reading.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from governance.db import Base, DealContext, JSONType, Money, Score, Timestamped, UTCDateTime


class Outcome(DealContext, Timestamped, Base):
    """How a deal closed, with the terms it closed on."""

    __tablename__ = "deal_outcomes"
    __table_args__ = (
        # Covering indexes: analytics scan these instead of the wide tables (see bench/RESULTS.md).
        Index(
            "ix_deal_outcomes_close_date",
            "close_date",
            postgresql_include=[
                "won",
                "verdict",
                "variance_micro",
                "currency",
                "checked_on",
                "amount_cents",
                "cost_cents",
                "conceded_terms",
                "missed_targets",
                "region",
                "segment",
                "team",
                "owner_rep",
                "playbook_key",
                "playbook_version",
            ],
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), unique=True)
    won: Mapped[bool]
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    close_date: Mapped[date | None] = mapped_column(Date)
    final_terms: Mapped[dict[str, Any]] = mapped_column(JSONType)
    source: Mapped[str] = mapped_column(String(20))  # salesforce | api
    recorded_by: Mapped[str] = mapped_column(String(200))
    loss_reason: Mapped[str | None] = mapped_column(String(500))
    # What was agreed in return for what: [{"gave": term, "got": [term, ...], "note", "inferred"}].
    trades: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # The deal's context at close (`DealContext`: region … playbook version the final terms
    # were measured against), and the figures at close.
    amount: Mapped[Decimal | None] = mapped_column(Money)
    # Money figures are in the deal's currency: reports filter or group by it.
    currency: Mapped[str | None] = mapped_column(String(3))
    # The day of the check the final terms were measured against: a playbook version's deals
    # are the ones checked while it was live, which is how `versions` windows them.
    checked_on: Mapped[date | None] = mapped_column(Date)
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    verdict: Mapped[str | None] = mapped_column(String(20))
    variance_micro: Mapped[int | None] = mapped_column(BigInteger)
    cost: Mapped[Decimal | None] = mapped_column(Money)
    cost_cents: Mapped[int | None] = mapped_column(BigInteger)
    # How many terms were conceded, and how many closed worse than their target.
    conceded_terms: Mapped[int | None]
    missed_targets: Mapped[int | None]


class OutcomeTerm(DealContext, Timestamped, Base):
    """One term of a closed deal: opening, target and final; conceded, held, traded, cost."""

    __tablename__ = "deal_outcome_terms"
    __table_args__ = (
        Index("ix_deal_outcome_terms_term_key", "term_key"),
        # Every report on term outcomes reads won deals only.
        Index(
            "ix_deal_outcome_terms_close_date",
            "close_date",
            postgresql_include=[
                "term_key",
                "conceded_share_micro",
                "held",
                "traded",
                "currency",
                "cost_cents",
                "final_micro",
                "amount_cents",
                "deal_variance_micro",
                "region",
                "segment",
                "team",
                "owner_rep",
                "playbook_key",
                "playbook_version",
            ],
            postgresql_where=text("won"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    outcome_id: Mapped[int] = mapped_column(ForeignKey("deal_outcomes.id", ondelete="CASCADE"))
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    term_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(10))
    unit: Mapped[str | None] = mapped_column(String(32))
    # Values as the wire shows them: numbers as decimal strings, options, booleans.
    opening: Mapped[Any] = mapped_column(JSONType, nullable=True)
    target: Mapped[Any] = mapped_column(JSONType, nullable=True)
    final: Mapped[Any] = mapped_column(JSONType, nullable=True)
    walk_away: Mapped[Any] = mapped_column(JSONType, nullable=True)
    # Number terms: the final value in millionths, for averages (e.g. average discount).
    final_micro: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))
    variance_ratio_micro: Mapped[int] = mapped_column(BigInteger)
    # Distance from opening toward walk-away: in the unit (steps for choices and flags) and as a
    # share of that range (0 = held the opening, 1 = conceded to the bottom line).
    conceded: Mapped[Decimal | None] = mapped_column(Score)
    conceded_share_micro: Mapped[int | None] = mapped_column(BigInteger)
    held: Mapped[bool | None]
    # Traded: the concession got something in return (explicitly recorded or inferred from the
    # rules that widened the term); `gets` lists what.
    traded: Mapped[bool]
    gets: Mapped[list[str]] = mapped_column(JSONType, default=list)
    cost: Mapped[Decimal | None] = mapped_column(Money)
    cost_cents: Mapped[int | None] = mapped_column(BigInteger)
    # Copied from the outcome (with `DealContext`) so reports need no join.
    close_date: Mapped[date | None] = mapped_column(Date)
    won: Mapped[bool | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    deal_variance_micro: Mapped[int | None] = mapped_column(BigInteger)


class Preparation(Timestamped, Base):
    """The rep's preparation for a deal: goals per key term, interests, a pre-mortem."""

    __tablename__ = "deal_preparations"

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), unique=True)
    goal: Mapped[str | None] = mapped_column(Text)
    # {term: {"goal": v, "opening": v, "bottom_line": v}}
    terms: Mapped[dict[str, Any]] = mapped_column(JSONType)
    customer_interests: Mapped[list[str]] = mapped_column(JSONType)
    # Three ways it could fail, each with its mitigation: [{"risk": ..., "mitigation": ...}].
    premortem: Mapped[list[dict[str, str]]] = mapped_column(JSONType)
    prepared_by: Mapped[str] = mapped_column(String(200))
    lock_version: Mapped[int] = mapped_column(default=1)


class AfterActionReview(DealContext, Timestamped, Base):
    """The rep's subjective value inventory after closing: four dimensions scored 1 to 7."""

    __tablename__ = "deal_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), unique=True)
    instrumental: Mapped[int]
    process: Mapped[int]
    relationship: Mapped[int]
    self_score: Mapped[int]
    note: Mapped[str | None] = mapped_column(Text)
    filed_by: Mapped[str] = mapped_column(String(200))
    # Copied from the outcome (with `DealContext`) so reports need no join.
    close_date: Mapped[date | None] = mapped_column(Date)
