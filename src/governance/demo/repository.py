"""The sample history's SQL: what it reads before generating (deals, rep profiles, the demo
playbook's versions), the generated tables and their columns, and one transaction per chunk of
rows (COPY on PostgreSQL, executemany inserts elsewhere) on a writer thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, insert, select, text
from sqlalchemy.orm import Session

from governance.approvals.models import ApprovalRequest
from governance.db import Database
from governance.deals.models import Deal, DealCheck, DealTermCheck
from governance.outcomes.models import AfterActionReview, Outcome, OutcomeTerm
from governance.playbooks.models import Playbook, PlaybookVersion, Signoff
from governance.reps.models import RepProfile

ID_STRIDE = 16  # approval requests and outcome terms per deal, at most (their ids: deal × 16 + k)

# The tables in the order their rows are written (foreign keys first), each with its columns in
# the order of its rows' tuples.
COLUMNS: dict[Table, tuple[str, ...]] = {
    Deal.__table__: (  # type: ignore[dict-item]
        "id", "external_id", "name", "region", "segment", "product_line", "team", "currency",
        "amount", "stage", "close_date", "owner_rep", "value_position", "extra_attributes",
        "terms", "playbook_key", "status", "lock_version", "last_verdict",
        "last_variance_score", "last_checked_at", "review_version_id", "approval_round",
        "submitted_at", "checked_playbook", "checked_version", "variance_micro", "created_at",
        "updated_at", "zero_terms",
    ),
    DealCheck.__table__: (  # type: ignore[dict-item]
        "id", "deal_id", "playbook_version_id", "playbook_key", "playbook_version", "verdict",
        "variance_score", "terms", "attributes", "result", "checked_by", "created_at",
        "updated_at",
    ),
    DealTermCheck.__table__: (  # type: ignore[dict-item]
        "deal_id", "term_key", "status", "variance_ratio_micro", "created_at", "updated_at",
        "region", "segment", "team", "owner_rep", "playbook_key", "playbook_version", "checked_at",
    ),
    ApprovalRequest.__table__: (  # type: ignore[dict-item]
        "id", "deal_id", "round", "check_id", "playbook_version_id", "playbook_key",
        "playbook_version", "group", "chain_group", "step", "terms", "status", "lock_version",
        "submitted_by", "opened_at", "due_at", "remind_at", "reminded_at", "escalated_at",
        "escalation_level", "decided_at", "decided_by", "on_behalf_of", "admin_override",
        "reason", "decided_values", "counter_terms", "counter_accepted_at", "first_opened_at",
        "cycle_seconds", "within_sla", "created_at", "updated_at", "region", "segment", "team",
        "owner_rep",
    ),
    Outcome.__table__: (  # type: ignore[dict-item]
        "id", "deal_id", "won", "closed_at", "close_date", "final_terms", "source",
        "recorded_by", "loss_reason", "trades", "playbook_key", "playbook_version", "amount",
        "amount_cents", "verdict", "variance_micro", "cost", "cost_cents", "created_at",
        "updated_at", "region", "segment", "team", "owner_rep", "conceded_terms",
        "missed_targets", "currency", "checked_on",
    ),
    OutcomeTerm.__table__: (  # type: ignore[dict-item]
        "id", "outcome_id", "deal_id", "term_key", "kind", "unit", "opening", "target", "final",
        "walk_away", "final_micro", "status", "variance_ratio_micro", "conceded",
        "conceded_share_micro", "held", "traded", "gets", "cost", "cost_cents", "created_at",
        "updated_at", "region", "segment", "team", "owner_rep", "playbook_key",
        "playbook_version", "close_date", "won", "amount_cents", "deal_variance_micro",
        "currency",
    ),
    AfterActionReview.__table__: (  # type: ignore[dict-item]
        "id", "deal_id", "instrumental", "process", "relationship", "self_score", "note",
        "filed_by", "created_at", "updated_at", "region", "segment", "team", "owner_rep",
        "playbook_key", "playbook_version", "close_date",
    ),
}  # fmt: skip
TABLES = tuple(COLUMNS)
DEALS, CHECKS, TERM_CHECKS, REQUESTS, OUTCOMES, OUTCOME_TERMS, REVIEWS = range(len(TABLES))


@dataclass
class Rows:
    """One chunk's rows per table, as tuples in `COLUMNS` order."""

    by_table: list[list[tuple[Any, ...]]] = field(default_factory=lambda: [[] for _ in TABLES])

    def add(self, table: int, row: tuple[Any, ...]) -> None:
        self.by_table[table].append(row)


def write_postgresql(db: Database, rows: Rows) -> None:
    """COPY each table's rows (JSON already encoded), in the batch's one unit of work."""
    with db.unit_of_work() as session:
        driver = session.connection().connection.driver_connection
        with driver.cursor() as cursor:  # type: ignore[union-attr]
            for table, batch in zip(TABLES, rows.by_table, strict=True):
                if not batch:
                    continue
                columns = ", ".join(f'"{c}"' for c in COLUMNS[table])
                with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
                    for row in batch:
                        copy.write_row(row)


def write_other(db: Database, rows: Rows) -> None:
    """Executemany inserts of each table's rows, in one transaction."""
    with db.engine.begin() as connection:
        for table, batch in zip(TABLES, rows.by_table, strict=True):
            if batch:
                names = COLUMNS[table]
                connection.execute(insert(table), [dict(zip(names, r, strict=True)) for r in batch])


def copies(db: Database) -> bool:
    """Whether rows are written with COPY, which takes JSON columns as encoded text."""
    return db.engine.dialect.name == "postgresql"


def write_all(db: Database, batches: Iterable[Rows]) -> None:
    """Write each batch in its own transaction on one writer thread, so the database works on one
    batch while the caller's thread builds the next (the writer mostly waits on the server, so
    it hardly competes for the interpreter). The first write error is raised here, after no
    further batch is built."""
    write = write_postgresql if copies(db) else write_other
    pending: queue.Queue[Rows | None] = queue.Queue(maxsize=2)
    failure: list[BaseException] = []

    def writer() -> None:
        while (rows := pending.get()) is not None:
            if failure:
                continue  # drain, so the producer never blocks on a dead writer
            try:
                write(db, rows)
            except BaseException as exc:  # re-raised in the caller's thread below
                failure.append(exc)

    thread = threading.Thread(target=writer, name="demo-writer", daemon=True)
    thread.start()
    try:
        for rows in batches:
            pending.put(rows)
            if failure:
                break
    finally:
        pending.put(None)
        thread.join()
    if failure:
        raise failure[0]


def advance_sequences(db: Database) -> None:
    """Explicit ids leave PostgreSQL's sequences behind; move them past the generated rows."""
    if db.engine.dialect.name != "postgresql":
        return
    with db.engine.begin() as connection:
        for table in TABLES:
            if "id" not in COLUMNS[table]:
                continue
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                    f'GREATEST((SELECT max(id) FROM "{table.name}"), 1))'
                )
            )


# --- what generation reads first ---------------------------------------------------------------


def has_deals(session: Session) -> bool:
    return session.scalar(select(Deal.id).limit(1)) is not None


def rep_names(session: Session) -> set[str]:
    return set(session.scalars(select(RepProfile.rep)))


def add_reps(session: Session, rows: list[dict[str, Any]]) -> None:
    session.execute(insert(RepProfile), rows)


def playbook(session: Session, key: str) -> Playbook | None:
    return session.scalar(select(Playbook).where(Playbook.key == key))


def versions(session: Session, playbook_id: int) -> list[PlaybookVersion]:
    query = (
        select(PlaybookVersion)
        .where(PlaybookVersion.playbook_id == playbook_id)
        .order_by(PlaybookVersion.number)
    )
    return list(session.scalars(query))


def signoffs(session: Session, version_id: int) -> list[Signoff]:
    return list(session.scalars(select(Signoff).where(Signoff.version_id == version_id)))
