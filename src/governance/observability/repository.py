"""The SQL behind the business figures of `/metrics`: read at scrape time, so every API process
(and every replica) reports the same numbers, whoever did the work (an API process or a worker).

Counts over histories that only grow (the audit log, sync runs) are read in id ranges past
a mark the caller keeps, so a scrape costs the rows written since the last one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from governance.approvals.models import OPEN, ApprovalRequest
from governance.audit.models import AuditEntry
from governance.deals.models import Deal
from governance.heartbeats.models import WorkerHeartbeat
from governance.notifications.models import Notification, NotificationStatus
from governance.salesforce.models import OutboxItem, SyncRun, SyncState


def deals_by_verdict(session: Session) -> dict[str, int]:
    """Live deals by the verdict of their latest stored check."""
    rows = session.execute(
        select(Deal.last_verdict, func.count())
        .where(Deal.deleted_at.is_(None), Deal.last_verdict.is_not(None))
        .group_by(Deal.last_verdict)
    ).tuples()
    return {str(verdict): int(n) for verdict, n in rows}


def open_requests(session: Session) -> list[tuple[str, datetime]]:
    """Each open approval request's holder and since when it has waited."""
    rows = session.execute(
        select(
            ApprovalRequest.group,
            func.coalesce(ApprovalRequest.first_opened_at, ApprovalRequest.created_at),
        ).where(ApprovalRequest.status.in_(OPEN))
    ).tuples()
    return [(group, since) for group, since in rows]


def decisions_by_outcome(session: Session) -> dict[str, int]:
    """Decided approval requests by what was decided (from the cycle-time index)."""
    rows = session.execute(
        select(ApprovalRequest.status, func.count())
        .where(ApprovalRequest.decided_at.is_not(None))
        .group_by(ApprovalRequest.status)
    ).tuples()
    return {str(status): int(n) for status, n in rows}


def webhook_outbox(session: Session) -> dict[str, int]:
    """Webhook notifications waiting to be posted, and parked as dead."""
    rows = session.execute(
        select(Notification.status, func.count())
        .where(Notification.status.in_((NotificationStatus.pending, NotificationStatus.dead)))
        .group_by(Notification.status)
    ).tuples()
    return {str(status): int(n) for status, n in rows}


def salesforce_outbox(session: Session) -> dict[str, int]:
    """Deals whose push is pending, and those parked as dead."""
    rows = session.execute(
        select(OutboxItem.status, func.count()).group_by(OutboxItem.status)
    ).tuples()
    return {str(status): int(n) for status, n in rows}


def latest_beats(session: Session) -> dict[str, datetime]:
    """Each worker loop's freshest heartbeat, whichever worker process runs it."""
    rows = session.execute(
        select(WorkerHeartbeat.loop, func.max(WorkerHeartbeat.beat_at)).group_by(
            WorkerHeartbeat.loop
        )
    ).tuples()
    return {str(loop): beat for loop, beat in rows if beat is not None}


def sync_states(session: Session) -> list[SyncState]:
    """The sync's state per sObject: watermark, pause, last API usage seen."""
    return list(session.scalars(select(SyncState).order_by(SyncState.sobject)))


def audit_actions_between(
    session: Session, after_id: int, actions: tuple[str, ...]
) -> tuple[int, dict[str, int]]:
    """The audit log's last id, and how many entries past `after_id` (up to it) hold each of
    `actions`. Audit ids follow commit order, so nothing commits later below the mark."""
    last = session.scalar(select(func.max(AuditEntry.id))) or 0
    if last <= after_id:
        return after_id, {}
    rows = session.execute(
        select(AuditEntry.action, func.count())
        .where(
            AuditEntry.id > after_id,
            AuditEntry.id <= last,
            AuditEntry.action.in_(actions),
        )
        .group_by(AuditEntry.action)
    ).tuples()
    return int(last), {str(action): int(n) for action, n in rows}


def sync_records_between(
    session: Session, after_id: int, stale_before: datetime
) -> tuple[int, dict[str, int]]:
    """Records read by pulls and fetches, and pushed, in runs past `after_id` that have
    finished, up to the first still running (one started before `stale_before` is taken as
    dead and counted as it stands); returns the new mark and the sums."""
    running = session.scalar(
        select(func.min(SyncRun.id)).where(
            SyncRun.id > after_id,
            SyncRun.finished_at.is_(None),
            SyncRun.started_at >= stale_before,
        )
    )
    last = (
        int(running) - 1
        if running is not None
        else int(session.scalar(select(func.max(SyncRun.id))) or 0)
    )
    if last <= after_id:
        return after_id, {}
    read = SyncRun.counts["read"].as_integer()
    pushed = SyncRun.counts["pushed"].as_integer()
    window: Any = (SyncRun.id > after_id, SyncRun.id <= last)
    pulled_n = session.scalar(
        select(func.coalesce(func.sum(read), 0)).where(*window, SyncRun.kind.in_(("pull", "fetch")))
    )
    pushed_n = session.scalar(
        select(func.coalesce(func.sum(pushed), 0)).where(*window, SyncRun.kind == "push")
    )
    return last, {"pulled": int(pulled_n or 0), "pushed": int(pushed_n or 0)}
