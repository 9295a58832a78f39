"""SQL for the sync: state, runs, the outbox (upserted per deal) and the fetch queue."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, func, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from governance.approvals.models import OPEN, ApprovalRequest
from governance.db import JSONType, UTCDateTime, in_values
from governance.deals.models import Deal, DealCheck
from governance.deals.repository import DealRepository
from governance.outcomes.models import Outcome
from governance.salesforce.models import (
    FetchRequest,
    OutboxItem,
    OutboxStatus,
    SyncRun,
    SyncState,
)


class PushDeal(NamedTuple):
    id: int
    external_id: str
    deleted_at: datetime | None
    last_verdict: str | None
    last_variance_score: Decimal | None
    status: str


class PushRequest(NamedTuple):
    status: str
    step: int
    group: str


class PushOutcome(NamedTuple):
    won: bool
    cost: Decimal | None


# The lease of one claimed row, as an executemany: compiled once (a text() statement), with the
# column types' bind processing for the stamps and the JSON.
_LEASE = text(
    f"UPDATE {OutboxItem.__tablename__} SET claimed_until = :until,"
    " claimed_version = :version, last_values = :last_values, updated_at = :now"
    " WHERE id = :item_id"
).bindparams(
    bindparam("until", type_=UTCDateTime()),
    bindparam("now", type_=UTCDateTime()),
    bindparam("last_values", type_=JSONType),
)


class SalesforceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # --- state and runs ------------------------------------------------------------------------

    def state(self, sobject: str, *, for_update: bool = False) -> SyncState:
        query = select(SyncState).where(SyncState.sobject == sobject)
        if for_update:
            query = query.with_for_update()
        state = self.session.scalar(query)
        if state is None:
            # Several workers may start on an empty database at once: the first insert wins,
            # the others find its row (instead of failing on the unique sobject).
            dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
            self.session.execute(
                dialect.insert(SyncState)
                .values(sobject=sobject, full_load_done=False)
                .on_conflict_do_nothing(index_elements=[SyncState.sobject])
            )
            state = self.session.scalars(query).one()
        return state

    def add_run(self, run: SyncRun) -> SyncRun:
        self.session.add(run)
        self.session.flush()
        return run

    def run(self, run_id: int) -> SyncRun:
        run = self.session.get(SyncRun, run_id)
        assert run is not None
        return run

    def runs(self, limit: int, kind: str | None = None) -> Sequence[SyncRun]:
        query = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(SyncRun.kind == kind)
        return self.session.scalars(query).all()

    # --- deals -----------------------------------------------------------------------------------

    def deals_by_external_id(
        self, external_ids: Collection[str], *, reread: bool = False
    ) -> dict[str, Deal]:
        """The deals with these Ids; `reread` refreshes those the session already holds."""
        if not external_ids:
            return {}
        query = select(Deal).where(in_values(self.session, Deal.external_id, sorted(external_ids)))
        if reread:
            query = query.execution_options(populate_existing=True)
        return {d.external_id: d for d in self.session.scalars(query)}

    def hold_write_lock(self) -> None:
        """Begin writing now. On SQLite a no-op UPDATE opens the transaction (the driver begins
        one only at a write) and takes the database's write lock, so the savepoints that follow
        nest inside it rather than standing in for it. PostgreSQL needs nothing."""
        if self.session.get_bind().dialect.name == "sqlite":
            self.session.execute(
                update(SyncState)
                .where(SyncState.id == -1)
                .values(sobject=SyncState.sobject)
                .execution_options(synchronize_session=False)
            )

    def push_sources(
        self, deal_ids: Collection[int]
    ) -> tuple[
        dict[int, PushDeal],
        dict[int, list[PushRequest]],
        dict[int, PushOutcome],
        dict[int, list[str]],
    ]:
        """What the push reads of these deals (the columns `values_for` needs, no ORM objects):
        the deals, their open requests, their outcomes, and, for deals with no open request, the
        steps their latest check asked for."""
        deals = {
            row.id: PushDeal(*row)
            for row in self.session.execute(
                select(
                    Deal.id,
                    Deal.external_id,
                    Deal.deleted_at,
                    Deal.last_verdict,
                    Deal.last_variance_score,
                    Deal.status,
                ).where(in_values(self.session, Deal.id, deal_ids))
            )
        }
        open_requests: dict[int, list[PushRequest]] = defaultdict(list)
        for deal_id, status, step, group in self.session.execute(
            select(
                ApprovalRequest.deal_id,
                ApprovalRequest.status,
                ApprovalRequest.step,
                ApprovalRequest.group,
            ).where(
                in_values(self.session, ApprovalRequest.deal_id, deals),
                ApprovalRequest.status.in_(OPEN),
            )
        ).tuples():
            open_requests[deal_id].append(PushRequest(status, step, group))
        outcomes = {
            deal_id: PushOutcome(won, cost)
            for deal_id, won, cost in self.session.execute(
                select(Outcome.deal_id, Outcome.won, Outcome.cost).where(
                    in_values(self.session, Outcome.deal_id, deals)
                )
            ).tuples()
        }
        steps = DealRepository(self.session).latest_step_groups(
            [d for d in deals if d not in open_requests]
        )
        return deals, open_requests, outcomes, steps

    # --- the outbox ------------------------------------------------------------------------------

    def claim(
        self, now: datetime, limit: int, *, skip_locked: bool
    ) -> list[tuple[int, int, int, str | None]]:
        """Due pending rows no other pusher holds, locked (PostgreSQL: skipped by the others
        until this transaction ends): (id, deal id, version, request id) each. `lease` then
        writes them, once each."""
        query = (
            select(OutboxItem.id, OutboxItem.deal_id, OutboxItem.version, OutboxItem.request_id)
            .where(
                OutboxItem.status == OutboxStatus.pending,
                OutboxItem.next_attempt_at <= now,
                or_(OutboxItem.claimed_until.is_(None), OutboxItem.claimed_until < now),
            )
            .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
            .limit(limit)
        )
        if skip_locked:
            query = query.with_for_update(skip_locked=True)
        else:
            # SQLite has no row locks: a no-op UPDATE takes the database's write lock before
            # the read, so a concurrent pusher's claim waits and then sees these leases.
            self.session.execute(
                update(OutboxItem)
                .where(OutboxItem.id == -1)
                .values(status=OutboxItem.status)
                .execution_options(synchronize_session=False)
            )
        return list(self.session.execute(query).tuples())

    def lease(
        self, rows: Collection[tuple[int, int, dict[str, Any]]], until: datetime, now: datetime
    ) -> None:
        """Lease claimed (id, version, values sent) rows until `until`: one UPDATE per row, in
        one executemany (as fast, measured, as one UPDATE ... FROM unnest(...) on PostgreSQL).
        Never a second UPDATE of a row in the claim's transaction: PostgreSQL would re-check its
        foreign key (a KEY SHARE lock on the deal), against the pull's order: deal, then row."""
        if not rows:
            return
        self.session.execute(
            _LEASE,
            [
                {
                    "item_id": item_id,
                    "version": version,
                    "until": until,
                    "now": now,
                    "last_values": values,
                }
                for item_id, version, values in sorted(rows, key=lambda r: r[0])
            ],
        )

    def item(self, item_id: int) -> OutboxItem | None:
        return self.session.get(OutboxItem, item_id)

    def items(self, ids: Collection[int]) -> list[OutboxItem]:
        if not ids:
            return []
        return list(
            self.session.scalars(
                select(OutboxItem).where(in_values(self.session, OutboxItem.id, ids))
            )
        )

    def existing(self, ids: Collection[int]) -> set[int]:
        """Which of these outbox rows still exist."""
        if not ids:
            return set()
        return set(
            self.session.scalars(
                select(OutboxItem.id).where(in_values(self.session, OutboxItem.id, ids))
            )
        )

    def delete_if_unchanged_many(self, rows: Collection[tuple[int, int]]) -> set[int]:
        """Done: drop these (id, version) rows in one statement, each unless a newer change
        arrived while it was being sent (its version moved on). Returns the ids dropped."""
        if not rows:
            return set()
        result = self.session.execute(
            delete(OutboxItem)
            .where(
                in_values(  # by the primary key
                    self.session, OutboxItem.id, sorted(item_id for item_id, _ in rows)
                ),
                tuple_(OutboxItem.id, OutboxItem.version).in_(sorted(rows)),
            )
            .returning(OutboxItem.id)
            .execution_options(synchronize_session=False)
        )
        return set(result.scalars().all())

    def analyze_outbox(self) -> None:
        """Refresh PostgreSQL's statistics of the outbox and of the tables the push reads for
        its rows (after a full load filled them). Without them, until autovacuum gets there, the
        planner takes the freshly loaded tables for nearly empty and may read each batch's deals
        by scanning the whole table (EXPLAIN showed it for the deals)."""
        if self.session.get_bind().dialect.name == "postgresql":
            tables = (OutboxItem, Deal, DealCheck, ApprovalRequest, Outcome)
            self.session.execute(text(f"ANALYZE {', '.join(t.__tablename__ for t in tables)}"))

    def release(self, ids: Collection[int]) -> None:
        if ids:
            self.session.execute(
                update(OutboxItem)
                .where(in_values(self.session, OutboxItem.id, ids))
                .values(claimed_until=None, claimed_version=None)
                .execution_options(synchronize_session=False)
            )

    def outbox_page(
        self, *, status: str | None, after_id: int | None, limit: int
    ) -> list[tuple[OutboxItem, str]]:
        """Outbox rows with their opportunity Ids, oldest first."""
        query = (
            select(OutboxItem, Deal.external_id)
            .join(Deal, Deal.id == OutboxItem.deal_id)
            .order_by(OutboxItem.id)
            .limit(limit)
        )
        if status is not None:
            query = query.where(OutboxItem.status == status)
        if after_id is not None:
            query = query.where(OutboxItem.id > after_id)
        return [(item, external_id) for item, external_id in self.session.execute(query).tuples()]

    def item_with_deal(self, item_id: int) -> tuple[OutboxItem, str] | None:
        row = self.session.execute(
            select(OutboxItem, Deal.external_id)
            .join(Deal, Deal.id == OutboxItem.deal_id)
            .where(OutboxItem.id == item_id)
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    def fetch_queue_size(self) -> int:
        return int(self.session.scalar(select(func.count()).select_from(FetchRequest)) or 0)

    def outbox_counts(self) -> dict[str, int]:
        rows = self.session.execute(
            select(OutboxItem.status, func.count()).group_by(OutboxItem.status)
        ).tuples()
        return dict(rows.all())

    # --- the fetch queue -------------------------------------------------------------------------

    def queue_fetch(self, external_ids: Collection[str], now: datetime) -> None:
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        rows: list[dict[str, Any]] = [
            {"external_id": e, "created_at": now, "updated_at": now}
            for e in sorted(set(external_ids))
        ]
        if rows:
            self.session.execute(
                dialect.insert(FetchRequest).on_conflict_do_nothing(
                    index_elements=[FetchRequest.external_id]
                ),
                rows,
            )

    def take_fetches(self, limit: int, *, skip_locked: bool) -> list[FetchRequest]:
        query = select(FetchRequest).order_by(FetchRequest.id).limit(limit)
        if skip_locked:
            query = query.with_for_update(skip_locked=True)
        return list(self.session.scalars(query))

    def drop_fetches_for(self, external_ids: Collection[str]) -> None:
        self.session.execute(
            delete(FetchRequest)
            .where(FetchRequest.external_id.in_(external_ids))
            .execution_options(synchronize_session=False)
        )
