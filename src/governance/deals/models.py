"""Deals (mirrors of Salesforce Opportunities) and their stored checks."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from governance.db import Base, JSONType, Money, Score, Timestamped, UTCDateTime


class Deal(Timestamped, Base):
    __tablename__ = "deals"
    __table_args__ = (Index("ix_deals_region_segment", "region", "segment"),)

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
    status: Mapped[str] = mapped_column(String(20), default="draft")
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


class Outcome(Timestamped, Base):
    """How a deal closed, with the terms it closed on."""

    __tablename__ = "deal_outcomes"

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), unique=True)
    won: Mapped[bool]
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    close_date: Mapped[date | None] = mapped_column(Date)
    final_terms: Mapped[dict[str, Any]] = mapped_column(JSONType)
    source: Mapped[str] = mapped_column(String(20))  # salesforce | api
    recorded_by: Mapped[str] = mapped_column(String(200))
