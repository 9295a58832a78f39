"""SQL for the sync: state, runs, the outbox (upserted per deal) and the fetch queue."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from governance.approvals.models import OPEN, ApprovalRequest
from governance.deals.models import Deal
from governance.deals.repository import DealRepository
from governance.outcomes.models import Outcome
from governance.salesforce.models import (
    FetchRequest,
    OutboxItem,
    OutboxStatus,
    SyncRun,
    SyncState,
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
        query = select(Deal).where(Deal.external_id.in_(sorted(external_ids)))
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
        dict[int, Deal],
        dict[int, list[ApprovalRequest]],
        dict[int, Outcome],
        dict[int, list[dict[str, Any]]],
    ]:
        """What the push reads of these deals: the deals, their open requests, their outcomes,
        and, for deals with no open request, the steps their latest check asked for."""
        deals = {d.id: d for d in self.session.scalars(select(Deal).where(Deal.id.in_(deal_ids)))}
        open_requests: dict[int, list[ApprovalRequest]] = defaultdict(list)
        for request in self.session.scalars(
            select(ApprovalRequest).where(
                ApprovalRequest.deal_id.in_(deals), ApprovalRequest.status.in_(OPEN)
            )
        ):
            open_requests[request.deal_id].append(request)
        outcomes = {
            o.deal_id: o
            for o in self.session.scalars(select(Outcome).where(Outcome.deal_id.in_(deals)))
        }
        steps = DealRepository(self.session).latest_steps(
            [d for d in deals if d not in open_requests]
        )
        return deals, open_requests, outcomes, steps

    # --- the outbox ------------------------------------------------------------------------------

    def claim(
        self, now: datetime, until: datetime, limit: int, *, skip_locked: bool
    ) -> list[OutboxItem]:
        """Due pending rows no other pusher holds; leased to this one until `until`."""
        query = (
            select(OutboxItem)
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
        items = list(self.session.scalars(query))
        for item in items:
            item.claimed_until = until
            item.claimed_version = item.version
        # No flush here: the caller's one flush writes the lease with whatever else it sets on
        # these rows. A second UPDATE of a row in one transaction makes PostgreSQL re-check its
        # foreign key (a KEY SHARE lock on the deal), against the pull's order: deal, then row.
        return items

    def item(self, item_id: int) -> OutboxItem | None:
        return self.session.get(OutboxItem, item_id)

    def items(self, ids: Collection[int]) -> list[OutboxItem]:
        if not ids:
            return []
        return list(self.session.scalars(select(OutboxItem).where(OutboxItem.id.in_(ids))))

    def delete_if_unchanged_many(self, rows: Collection[tuple[int, int]]) -> set[int]:
        """Done: drop these (id, version) rows in one statement, each unless a newer change
        arrived while it was being sent (its version moved on). Returns the ids dropped."""
        if not rows:
            return set()
        result = self.session.execute(
            delete(OutboxItem)
            .where(tuple_(OutboxItem.id, OutboxItem.version).in_(sorted(rows)))
            .returning(OutboxItem.id)
            .execution_options(synchronize_session=False)
        )
        return set(result.scalars().all())

    def analyze_outbox(self) -> None:
        """Refresh PostgreSQL's statistics of the outbox (after a full load filled it)."""
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text(f"ANALYZE {OutboxItem.__tablename__}"))

    def release(self, ids: Collection[int]) -> None:
        if ids:
            self.session.execute(
                update(OutboxItem)
                .where(OutboxItem.id.in_(ids))
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
