"""Moving one approval request between states: open (with its SLA clock), close, and the
cycle-time figures a decision records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from governance.approvals import timing
from governance.approvals.models import ApprovalRequest, RequestStatus
from governance.auth.principal import Principal
from governance.engine.results import TermValue


def json_value(value: TermValue | None) -> Any:
    return value if value is None or isinstance(value, bool | str) else str(value)


def covered_values(request: ApprovalRequest) -> dict[str, Any]:
    return {entry["key"]: entry["value"] for entry in request.terms}


def open_request(request: ApprovalRequest, now: datetime, hours: int) -> None:
    request.status = RequestStatus.pending
    request.opened_at = now
    request.first_opened_at = request.first_opened_at or now
    request.due_at, request.remind_at = timing.deadlines(now, hours)
    request.reminded_at = None


def close_request(
    row: ApprovalRequest, status: str, actor: Principal, now: datetime, reason: str
) -> None:
    row.status = status
    row.decided_at = now
    row.decided_by = actor.actor
    row.reason = reason
    row.lock_version += 1


def cycle_figures(row: ApprovalRequest, now: datetime) -> dict[str, Any]:
    """What cycle-time analytics read of a decision (`timing.cycle`)."""
    opened = row.first_opened_at or row.opened_at or now
    return timing.cycle(opened, row.due_at, row.escalation_level, now)._asdict()
