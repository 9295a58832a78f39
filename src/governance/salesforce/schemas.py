"""Sync status and outbox payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class RunRead(BaseModel):
    id: int
    kind: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, int] = Field(
        description="read, created, updated, unchanged, skipped, deleted, checked, submitted, "
        "closed, failed (pull); pushed, failed, dead (push)."
    )
    api_calls: int
    error: str | None
    problems: list[dict[str, str]] = Field(description="Records the run could not apply, and why.")


class ApiUsageRead(BaseModel):
    used: int
    limit: int
    seen_at: datetime | None


class HeartbeatRead(BaseModel):
    loop: str = Field(description="pull, push, approvals or webhooks.")
    worker_id: str = Field(description="The worker process: host:pid:tag.")
    started_at: datetime
    beat_at: datetime = Field(description="When the loop last said it was alive.")
    pass_at: datetime | None = Field(description="When its last pass ended.")
    passes: int
    last_error: str | None
    last_error_at: datetime | None
    stale: bool = Field(
        description="No beat for three worker intervals (at least a minute): stopped or stuck."
    )


class SyncStatus(BaseModel):
    configured: bool = Field(description="Whether a mapping file is set (the sync can run).")
    sobject: str
    watermark: datetime | None = Field(description="Every change up to here has been applied.")
    full_load_done: bool
    paused_until: datetime | None
    pause_reason: str | None
    api_usage: ApiUsageRead | None
    outbox: dict[str, int] = Field(description="Outbox rows by status (pending, dead).")
    fetch_queue: int = Field(description="Opportunities Outbound Messages asked us to fetch.")
    runs: list[RunRead]
    workers: list[HeartbeatRead] = Field(
        description="Each worker loop's latest heartbeat, most recent first."
    )


class OutboxItemRead(BaseModel):
    id: int
    external_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    last_values: dict[str, Any] | None = Field(description="What the last attempt sent.")
    updated_at: datetime


class OutboxPage(BaseModel):
    items: list[OutboxItemRead]
    next_cursor: str | None
