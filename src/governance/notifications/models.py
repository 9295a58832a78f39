"""The notification outbox: one row per message, written in the transaction of the change."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from governance.db import Base, JSONType, Timestamped, UTCDateTime


class NotificationStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    dead = "dead"


class Notification(Timestamped, Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event: Mapped[str] = mapped_column(String(50))
    group: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(10), default=NotificationStatus.pending)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(1000))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The request that queued it (its X-Request-ID), for the worker's log lines about it.
    request_id: Mapped[str | None] = mapped_column(String(100))
