"""Deals (mirrors of Salesforce Opportunities) and their stored checks."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from governance.db import Base, DealContext, JSONType, Money, Score, Timestamped, UTCDateTime


class DealStatus(StrEnum):
    """draft → in_review → approved | rejected | countered (and back to draft on withdrawal)."""

    draft = "draft"
    in_review = "in_review"
    approved = "approved"
    rejected = "rejected"
    countered = "countered"


# A deal whose review is under way or done: any change to its terms re-checks its approvals.
REVIEWING = (DealStatus.in_review, DealStatus.approved)


class Deal(Timestamped, Base):
    __tablename__ = "deals"
    __table_args__ = (
        Index("ix_deals_region_segment", "region", "segment"),
        # Analytics read deals through this index alone (an index-only scan on PostgreSQL, a
        # fraction of the table's size): every column the reports need is in it.
        Index(
            "ix_deals_last_checked_at",
            "last_checked_at",
            postgresql_include=[
                "last_verdict",
                "variance_micro",
                "zero_terms",
                "region",
                "segment",
                "team",
                "owner_rep",
                "checked_playbook",
                "checked_version",
            ],
            postgresql_where=text("deleted_at IS NULL AND last_verdict IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str | None] = mapped_column(String(255))
    region: Mapped[str | None] = mapped_column(String(100))
    segment: Mapped[str | None] = mapped_column(String(100))
    product_line: Mapped[str | None] = mapped_column(String(100))
    team: Mapped[str | None] = mapped_column(String(100))
    currency: Mapped[str | None] = mapped_column(String(3))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    stage: Mapped[str | None] = mapped_column(String(100))
    close_date: Mapped[date | None] = mapped_column(Date)
    owner_rep: Mapped[str | None] = mapped_column(String(100))
    value_position: Mapped[str | None] = mapped_column(String(10))
    extra_attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    terms: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    playbook_key: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default=DealStatus.draft)
    lock_version: Mapped[int] = mapped_column(default=1)
    # The latest stored check, denormalised so deal lists need no join.
    last_verdict: Mapped[str | None] = mapped_column(String(20))
    last_variance_score: Mapped[Decimal | None] = mapped_column(Score)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Approval review: the playbook version the current review is pinned to (approvals under way
    # keep the version they started with), and which round of requests is current (a withdrawal
    # starts a new round; earlier rounds stay as history).
    review_version_id: Mapped[int | None] = mapped_column(ForeignKey("playbook_versions.id"))
    approval_round: Mapped[int] = mapped_column(default=1)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Salesforce: the SystemModstamp of the opportunity version last applied (a re-read of the
    # same or an older version is skipped, so nothing is applied twice).
    sf_modstamp: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Analytics: the playbook version of the latest stored check, and its variance score in
    # millionths (an integer, so SQL aggregates are exact and alike on PostgreSQL and SQLite).
    checked_playbook: Mapped[str | None] = mapped_column(String(64))
    checked_version: Mapped[int | None]
    variance_micro: Mapped[int | None] = mapped_column(BigInteger)
    # Stated terms whose latest variance ratio is 0, one bit per term (`AnalyticsTermBit`): they
    # are counted from here rather than stored as rows (see `DealTermCheck`).
    zero_terms: Mapped[int | None] = mapped_column(BigInteger)


class DealCheck(Timestamped, Base):
    __tablename__ = "deal_checks"
    __table_args__ = (Index("ix_deal_checks_deal_id_id", "deal_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    playbook_version_id: Mapped[int] = mapped_column(ForeignKey("playbook_versions.id"))
    playbook_key: Mapped[str] = mapped_column(String(64))
    playbook_version: Mapped[int]
    verdict: Mapped[str] = mapped_column(String(20))
    variance_score: Mapped[Decimal] = mapped_column(Score)
    terms: Mapped[dict[str, Any]] = mapped_column(JSONType)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType)
    result: Mapped[dict[str, Any]] = mapped_column(JSONType)
    checked_by: Mapped[str] = mapped_column(String(200))


class DealTermCheck(DealContext, Timestamped, Base):
    """Per term, the deal's latest stored check: what variance analytics aggregate.

    Replaced whenever the deal is checked, so each deal counts once whatever its history. Only
    terms outside the band (a ratio above 0) get a row, and terms without a bit in
    `AnalyticsTermBit`; the many within-band terms are bits in `Deal.zero_terms`, which keeps
    this table a fraction of deals × terms.
    """

    __tablename__ = "deal_term_checks"
    __table_args__ = (
        Index(
            "ix_deal_term_checks_checked_at",
            "checked_at",
            postgresql_include=[
                "term_key",
                "status",
                "variance_ratio_micro",
                "region",
                "segment",
                "team",
                "owner_rep",
                "playbook_key",
                "playbook_version",
            ],
        ),
    )

    deal_id: Mapped[int] = mapped_column(
        ForeignKey("deals.id", ondelete="CASCADE"), primary_key=True
    )
    term_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    variance_ratio_micro: Mapped[int] = mapped_column(BigInteger)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AnalyticsTermBit(Timestamped, Base):
    """Which bit of `Deal.zero_terms` stands for which term key (63 at most; later keys get
    rows instead)."""

    __tablename__ = "analytics_term_bits"

    term_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    bit: Mapped[int] = mapped_column(unique=True)
