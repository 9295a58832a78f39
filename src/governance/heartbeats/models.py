"""One row per (loop, worker): the loop's last beat, its last pass and its last error."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from governance.db import Base, Timestamped, UTCDateTime


class WorkerLoop(StrEnum):
    """The worker's loops, each run apart so a long one never delays another."""

    pull = "pull"  # Outbound Message fetches and the scheduled pull
    push = "push"  # the Salesforce outbox
    approvals = "approvals"  # SLA reminders and escalations
    webhooks = "webhooks"  # the notification outbox


class WorkerHeartbeat(Timestamped, Base):
    """A loop of one worker process: alive as of `beat_at`; `last_error` is its last failure."""

    __tablename__ = "worker_heartbeats"

    loop: Mapped[str] = mapped_column(String(20), primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The end of the last pass (None while the first one runs) and whether it failed.
    pass_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    passes: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
