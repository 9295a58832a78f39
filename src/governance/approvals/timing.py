"""The SLA clock of one approval request, as pure functions of its times.

The rules `approvals.service.transitions` applies when it opens a request and records a
decision; the sample history (`governance.demo`) dates its generated requests with them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple


class Deadlines(NamedTuple):
    due_at: datetime
    remind_at: datetime


class Cycle(NamedTuple):
    cycle_seconds: int
    within_sla: bool


def deadlines(opened: datetime, hours: int) -> Deadlines:
    """A request opened (or escalated to a new holder) at `opened` with `hours` of SLA is due
    that many hours later; its group is reminded halfway there."""
    sla = timedelta(hours=hours)
    return Deadlines(opened + sla, opened + sla / 2)


def cycle(
    first_opened: datetime, due_at: datetime | None, escalation_level: int, decided: datetime
) -> Cycle:
    """What cycle-time analytics read of a decision: seconds the deal waited since the request
    first opened (through any escalation), and whether the first holder decided within its SLA
    (an escalated request did not)."""
    return Cycle(
        max(0, int((decided - first_opened).total_seconds())),
        escalation_level == 0 and (due_at is None or decided <= due_at),
    )
