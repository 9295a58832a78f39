"""Approval requests, approver groups and delegations."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from governance.auth.models import ApiKey
from governance.db import Base, JSONType, Timestamped, UTCDateTime


class RequestStatus(StrEnum):
    waiting = "waiting"  # an earlier step of one of its terms' chains is not approved yet
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    countered = "countered"
    expired = "expired"
    withdrawn = "withdrawn"


# Requests still to be decided: pending, or waiting for an earlier step of their chain.
OPEN = (RequestStatus.pending, RequestStatus.waiting)


class ApprovalRequest(Timestamped, Base):
    """One (deal, approver group, chain step) of a review round.

    `chain_group` is the group the playbook's chain names; `group` is who holds the request now
    (they differ after an escalation or a reassignment). Smart re-approval matches on
    `chain_group`. `terms` keeps, per covered term, what the approver needs to decide: value,
    band, variance, tier, owner, chain and the rep's justification.
    """

    __tablename__ = "approval_requests"
    __table_args__ = (
        Index("ix_approval_requests_status_group_id", "status", "group", "id"),
        Index("ix_approval_requests_deal_id_round", "deal_id", "round"),
        Index("ix_approval_requests_status_due_at", "status", "due_at"),
        # Covering, for the cycle-time report: it reads decided requests from the index alone.
        Index(
            "ix_approval_requests_decided_at",
            "decided_at",
            postgresql_include=[
                "status",
                "chain_group",
                "step",
                "cycle_seconds",
                "within_sla",
                "escalation_level",
                "region",
                "segment",
                "team",
                "owner_rep",
                "playbook_key",
                "playbook_version",
            ],
            postgresql_where=text("cycle_seconds IS NOT NULL"),
        ),
        # Open requests in id order: the queue of a caller with several groups (or an admin)
        # walks this instead of the whole history. Partial, so it stays the size of the queue.
        Index(
            "ix_approval_requests_open_id",
            "id",
            postgresql_where=text("status IN ('pending', 'waiting')"),
            sqlite_where=text("status IN ('pending', 'waiting')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    round: Mapped[int]
    check_id: Mapped[int] = mapped_column(ForeignKey("deal_checks.id"))
    playbook_version_id: Mapped[int] = mapped_column(ForeignKey("playbook_versions.id"))
    playbook_key: Mapped[str] = mapped_column(String(64))
    playbook_version: Mapped[int]
    group: Mapped[str] = mapped_column(String(100))
    chain_group: Mapped[str] = mapped_column(String(100))
    step: Mapped[int]
    terms: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20))
    lock_version: Mapped[int] = mapped_column(default=1)
    submitted_by: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalation_level: Mapped[int] = mapped_column(default=0)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(200))
    on_behalf_of: Mapped[str | None] = mapped_column(String(200))
    admin_override: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    decided_values: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    counter_terms: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    counter_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    counter_accepted_by: Mapped[str | None] = mapped_column(String(200))
    # Analytics: seconds from opening to decision, and whether the holder decided within its SLA
    # (an escalated request did not), set when the request is decided.
    # When the request first became pending: escalation re-opens it for the new holder, but the
    # deal has waited since then.
    first_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cycle_seconds: Mapped[int | None] = mapped_column(BigInteger)
    within_sla: Mapped[bool | None]
    # The deal as submitted, so cycle-time reports filter and group without a join.
    region: Mapped[str | None] = mapped_column(String(100))
    segment: Mapped[str | None] = mapped_column(String(100))
    team: Mapped[str | None] = mapped_column(String(100))
    owner_rep: Mapped[str | None] = mapped_column(String(100))


class ApprovalGroup(Timestamped, Base):
    """Per-group settings: SLA, Slack-compatible webhook, where overdue requests escalate."""

    __tablename__ = "approval_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    sla_hours: Mapped[int | None]
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    escalation_group: Mapped[str | None] = mapped_column(String(100))


class Delegation(Timestamped, Base):
    """While away, the delegator's key lets the delegate's key decide for the groups the
    delegator held when delegating. Both are named by key id: names can be reused, ids cannot."""

    __tablename__ = "delegations"

    id: Mapped[int] = mapped_column(primary_key=True)
    delegator_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), unique=True
    )
    delegator_groups: Mapped[list[str]] = mapped_column(JSONType)
    delegate_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())

    delegator: Mapped[ApiKey] = relationship(foreign_keys=[delegator_key_id], lazy="raise")
    delegate: Mapped[ApiKey] = relationship(foreign_keys=[delegate_key_id], lazy="raise")
