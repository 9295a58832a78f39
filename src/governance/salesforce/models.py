"""Sync state: the pull's watermark and checkpoint, runs with their counts, and the push outbox."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from governance.db import Base, JSONType, Timestamped, UTCDateTime


class RunStatus(StrEnum):
    running = "running"
    done = "done"
    failed = "failed"
    paused = "paused"


class OutboxStatus(StrEnum):
    pending = "pending"  # due at next_attempt_at
    dead = "dead"  # gave up after the configured attempts; an operator may retry it


class SyncState(Timestamped, Base):
    """One row per synced sObject: how far the pull has safely read.

    `watermark` is the SystemModstamp up to which every record has been applied; it never passes
    a run's start time minus the overlap. The next run re-reads from `watermark - overlap`.
    """

    __tablename__ = "salesforce_sync_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    sobject: Mapped[str] = mapped_column(String(100), unique=True)
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime())
    watermark_id: Mapped[str | None] = mapped_column(String(18))
    full_load_done: Mapped[bool] = mapped_column(default=False)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pause_reason: Mapped[str | None] = mapped_column(String(500))
    api_used: Mapped[int | None]
    api_limit: Mapped[int | None]
    api_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A big load read through a Bulk API 2.0 query job: the job, the locator of the next set of
    # results to apply (None: the first), and the watermark the load sets once applied.
    bulk_job_id: Mapped[str | None] = mapped_column(String(18))
    bulk_locator: Mapped[str | None] = mapped_column(String(100))
    bulk_ceiling: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SyncRun(Timestamped, Base):
    __tablename__ = "salesforce_sync_runs"
    __table_args__ = (Index("ix_salesforce_sync_runs_kind_id", "kind", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # pull | push | fetch
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))  # a RunStatus
    counts: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(String(1000))
    api_calls: Mapped[int] = mapped_column(default=0)
    # Records the run could not apply (Id and why), for an operator; at most 100 are kept.
    problems: Mapped[list[dict[str, str]]] = mapped_column(JSONType, default=list)


class OutboxItem(Timestamped, Base):
    """A deal whose governance fields Salesforce has not seen yet: at most one row per deal.

    Changes bump `version`; the pusher reads the deal's current state when it sends, so
    updates coalesce and the latest values win. A send that raced a newer change leaves the
    row pending for the next pass.
    """

    __tablename__ = "salesforce_outbox"
    __table_args__ = (
        Index("ix_salesforce_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(String(10), default=OutboxStatus.pending)
    version: Mapped[int] = mapped_column(default=1)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_version: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(1000))
    last_values: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # The request behind the latest change (its X-Request-ID), for the pusher's log lines.
    request_id: Mapped[str | None] = mapped_column(String(100))


class FetchRequest(Timestamped, Base):
    """An opportunity Salesforce told us changed (Outbound Message): fetch it on the next pass."""

    __tablename__ = "salesforce_fetch_queue"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(18), unique=True)
