"""The SLA clock of a request: due and reminder times, and the cycle figures analytics read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from governance.approvals.timing import cycle, deadlines

OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_due_after_the_sla_and_reminded_halfway() -> None:
    due = deadlines(OPENED, 24)
    assert due == (OPENED + timedelta(hours=24), OPENED + timedelta(hours=12))
    assert deadlines(OPENED, 5).remind_at == OPENED + timedelta(hours=2, minutes=30)


def test_cycle_counts_from_the_first_opening() -> None:
    due = OPENED + timedelta(hours=24)
    decided = OPENED + timedelta(hours=3, seconds=0.9)
    assert cycle(OPENED, due, 0, decided) == (3 * 3600, True)
    assert cycle(OPENED, due, 0, due) == (24 * 3600, True)
    assert cycle(OPENED, due, 0, due + timedelta(seconds=1)).within_sla is False
    # An escalated request missed its first holder's SLA, whenever the new holder decides.
    assert cycle(OPENED, due + timedelta(hours=8), 1, OPENED + timedelta(hours=25)) == (
        25 * 3600,
        False,
    )
    assert cycle(OPENED, None, 0, OPENED - timedelta(hours=1)) == (0, True)
