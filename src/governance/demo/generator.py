"""A realistic, deterministic sample history for the analytics: `governance demo --deals N`.

Two years of deals across regions, teams and reps of every negotiation style, checked by the real
engine against the standard playbook (version 1, then version 2 with a tighter discount band),
with the approvals, outcomes and after-action reviews that would follow. Everything the API and
the analytics read is filled as the service itself fills it, by the domain's own functions:
stored checks, per-term latest figures, the deal's analytics columns, approval SLAs, escalations
and cycle times, and per-term outcome figures.

The parts: `people` (teams, styles, reps, approvers), `playbooks` (the timeline and the two
versions), `market` (segments, amounts, the terms reps agree), `approvals` (how a review plays
out), `history` (the rows of each deal) and `writer` (the tables and how rows reach them).

Determinism: each chunk of `CHUNK` deals draws from its own generator seeded by (seed, chunk),
and every id is derived from the deal's number (a deal's check, outcome and review share its id;
its approval requests and outcome terms take `id × 16 + k`), so the same seed and `as_of` give
identical rows whatever the database. The timeline is relative to `as_of` (today by default).

Speed: rows are built as plain tuples (no ORM objects, no API calls) and written per chunk in
one transaction: COPY on PostgreSQL, executemany inserts on SQLite.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from governance.db import Database
from governance.deals.repository import DealRepository
from governance.demo import repository
from governance.demo.history import Generator, Report
from governance.demo.people import STYLES, TEAMS, Rep, Team, ensure_reps, make_reps
from governance.demo.playbooks import (
    PLAYBOOK,
    V2_DISCOUNT_HIGH,
    Timeline,
    demo_document,
    prepare_playbooks,
    version_two,
)
from governance.demo.repository import TABLES, Rows, advance_sequences, copies, write_all
from governance.errors import Conflict
from governance.playbooks.registry import PlaybookRegistry

__all__ = [
    "CHUNK",
    "PLAYBOOK",
    "STYLES",
    "TABLES",
    "TEAMS",
    "V2_DISCOUNT_HIGH",
    "Generator",
    "Rep",
    "Report",
    "Team",
    "Timeline",
    "_demo_document",
    "ensure_no_deals",
    "generate",
    "make_reps",
    "version_two",
]

CHUNK = 5_000
_demo_document = demo_document  # the name the tests load the demo playbook by


def ensure_no_deals(session: Session) -> None:
    """Generated ids start at 1: refuse a database that has deals already."""
    if repository.has_deals(session):
        raise Conflict("the database already has deals; generate into a fresh database")


def _tally(
    total: Report, report: Report, started: float, progress: Callable[[Report], None] | None
) -> None:
    total.deals += report.deals
    total.checks += report.checks
    total.approvals += report.approvals
    total.outcomes += report.outcomes
    total.reviews += report.reviews
    for verdict, count in report.verdicts.items():
        total.verdicts[verdict] = total.verdicts.get(verdict, 0) + count
    total.seconds = time.perf_counter() - started
    if progress is not None:
        progress(total)


def generate(
    db: Database,
    deals: int,
    *,
    seed: int = 0,
    as_of: date | None = None,
    sla_hours: int = 24,
    progress: Callable[[Report], None] | None = None,
) -> Report:
    """Generate `deals` deals of history into an empty deals table (the demo playbook loaded).

    `sla_hours` is the service's default SLA (`Settings.approval_sla_hours`), for groups the
    playbook sets none for.
    """
    as_of = as_of or datetime.now(UTC).date()
    timeline = Timeline.ending(as_of)
    reps = make_reps()
    started = time.perf_counter()
    with db.unit_of_work() as session:
        ensure_no_deals(session)
        v1_id, v2_id = prepare_playbooks(session, timeline)
        profiles = ensure_reps(session, reps, timeline.start - timedelta(days=60))
        # The `zero_terms` bits, assigned (in key order) before any deal uses them.
        bits = DealRepository(session).term_bits(sorted(t.key for t in demo_document().terms))
    registry = PlaybookRegistry(db, 0)
    generator = Generator(
        seed,
        timeline,
        registry.version(v1_id),
        registry.version(v2_id),
        reps,
        sla_hours,
        deals,
        bits=bits,
        json_text=copies(db),
    )
    total = Report(rep_profiles=profiles)

    def chunks() -> Iterator[Rows]:
        chunk = CHUNK  # read when generating starts, so tests can make chunks smaller
        for index, first in enumerate(range(1, deals + 1, chunk)):
            rows, report = generator.chunk(index, first, min(chunk, deals - first + 1))
            _tally(total, report, started, progress)
            yield rows

    write_all(db, chunks())
    advance_sequences(db)
    total.seconds = time.perf_counter() - started
    return total
