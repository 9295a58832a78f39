"""SQL for deals and their stored checks."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    func,
    insert,
    literal_column,
    null,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from governance.db import in_values, insert_many, insert_rows, unnest_rows, utcnow
from governance.deals.models import (
    REVIEWING,
    AnalyticsTermBit,
    Deal,
    DealCheck,
    DealStatus,
    DealTermCheck,
)


def zero_term_mask(
    rows: Iterable[tuple[str, str, int]], bits: Mapping[str, int]
) -> tuple[int, list[tuple[str, str, int]]]:
    """Split a deal's per-term figures (term, status, variance ratio in millionths): the terms at
    ratio 0 that have a bit (`bits`, see `term_bits`) as the `zero_terms` mask, and the rows
    kept as `DealTermCheck` rows."""
    mask = 0
    kept = []
    for row in rows:
        key, _, ratio = row
        if ratio == 0 and key in bits:
            mask |= 1 << bits[key]
        else:
            kept.append(row)
    return mask, kept


class DealRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_external_id(self, external_id: str, *, for_update: bool = False) -> Deal | None:
        """The deal; `for_update` locks it first (see `lock`) and re-reads it."""
        query = select(Deal).where(Deal.external_id == external_id)
        if for_update:
            if self.session.get_bind().dialect.name == "sqlite":
                self.session.execute(
                    update(Deal)
                    .where(Deal.external_id == external_id)
                    .values(lock_version=Deal.lock_version, updated_at=Deal.updated_at)
                    .execution_options(synchronize_session=False)
                )
            query = query.with_for_update().execution_options(populate_existing=True)
        return self.session.scalar(query)

    def lock(self, deal_id: int) -> Deal:
        """The deal, re-read under a write lock: changes to one deal's review serialise here.

        PostgreSQL takes a row lock. SQLite has no row locks, so a no-op UPDATE takes the
        database's write lock before anything is read, and every later read sees the latest
        committed state.
        """
        if self.session.get_bind().dialect.name == "sqlite":
            self.session.execute(
                update(Deal)
                .where(Deal.id == deal_id)
                .values(lock_version=Deal.lock_version, updated_at=Deal.updated_at)
                .execution_options(synchronize_session=False)
            )
        return self.session.scalars(
            select(Deal)
            .where(Deal.id == deal_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()

    def lock_many(self, deal_ids: Collection[int]) -> dict[int, Deal]:
        """`lock` for many deals at once (in id order), by id."""
        if not deal_ids:
            return {}
        ids = sorted(deal_ids)
        if self.session.get_bind().dialect.name == "sqlite":
            self.session.execute(
                update(Deal)
                .where(Deal.id.in_(ids))
                .values(lock_version=Deal.lock_version, updated_at=Deal.updated_at)
                .execution_options(synchronize_session=False)
            )
        deals = self.session.scalars(
            select(Deal)
            .where(in_values(self.session, Deal.id, ids))
            .order_by(Deal.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return {deal.id: deal for deal in deals}

    def insert_if_absent(self, external_id: str) -> bool:
        """Create an empty draft deal for this Opportunity Id unless one exists (deleted or
        not); True when this call created it. One statement, so concurrent first writes of a
        deal cannot collide: the loser waits for the winner's commit and inserts nothing."""
        now = utcnow()
        insert_ = (pg_insert if self._dialect() == "postgresql" else sqlite_insert)(Deal)
        created = self.session.execute(
            insert_.values(
                external_id=external_id,
                status=DealStatus.draft,
                lock_version=1,
                approval_round=1,
                terms={},
                extra_attributes={},
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[Deal.external_id])
            .returning(Deal.id)
        ).scalar_one_or_none()
        return created is not None

    def page(
        self,
        *,
        before_id: int | None,
        limit: int,
        region: str | None = None,
        segment: str | None = None,
        status: str | None = None,
        verdict: str | None = None,
        owner_rep: str | None = None,
        include_deleted: bool = False,
    ) -> Sequence[Deal]:
        query = select(Deal).order_by(Deal.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(Deal.id < before_id)
        if not include_deleted:
            query = query.where(Deal.deleted_at.is_(None))
        if region is not None:
            query = query.where(Deal.region == region)
        if segment is not None:
            query = query.where(Deal.segment == segment)
        if status is not None:
            query = query.where(Deal.status == status)
        if verdict is not None:
            query = query.where(Deal.last_verdict == verdict)
        if owner_rep is not None:
            query = query.where(Deal.owner_rep == owner_rep)
        return self.session.scalars(query).all()

    def recently_checked(self, playbook_key: str, since: datetime, limit: int) -> Sequence[Deal]:
        """The deals last checked against this playbook since `since`, newest first."""
        return self.session.scalars(
            select(Deal)
            .where(
                Deal.checked_playbook == playbook_key,
                Deal.last_checked_at >= since,
                Deal.deleted_at.is_(None),
            )
            .order_by(Deal.last_checked_at.desc(), Deal.id.desc())
            .limit(limit)
        ).all()

    def check(self, check_id: int) -> DealCheck | None:
        return self.session.get(DealCheck, check_id)

    def latest_check(self, deal_id: int) -> DealCheck:
        return self.session.scalars(
            select(DealCheck)
            .where(DealCheck.deal_id == deal_id)
            .order_by(DealCheck.id.desc())
            .limit(1)
        ).one()

    def latest_step_groups(self, deal_ids: Collection[int]) -> dict[int, list[str]]:
        """The groups of the approval steps each deal's latest check asked for, in step order.

        Picked out of the check's JSON by the database (the steps' groups only, not the check's
        body to decode): a text joined by a separator on SQLite, an array on PostgreSQL."""
        if not deal_ids:
            return {}
        latest = (
            select(func.max(DealCheck.id))
            .where(in_values(self.session, DealCheck.deal_id, deal_ids))
            .group_by(DealCheck.deal_id)
        )
        table = DealCheck.__tablename__
        if self._dialect() == "postgresql":
            groups: ColumnElement[Any] = literal_column(
                "ARRAY(SELECT s.value ->> 'group' FROM"
                f" jsonb_array_elements({table}.result -> 'steps') WITH ORDINALITY AS s(value, n)"
                " ORDER BY s.n)"
            )
        else:
            groups = literal_column(
                "(SELECT group_concat(json_extract(s.value, '$.group'), char(31)) FROM"
                f" (SELECT value FROM json_each({table}.result, '$.steps') ORDER BY key) AS s)"
            )
        rows = self.session.execute(
            select(DealCheck.deal_id, groups).where(DealCheck.id.in_(latest))
        ).tuples()
        return {
            deal_id: (found.split("\x1f") if isinstance(found, str) else list(found or ()))
            for deal_id, found in rows
        }

    def term_bits(self, keys: Collection[str]) -> dict[str, int]:
        """The `zero_terms` bit of each key, assigning new bits to keys first seen (63 at most;
        a key beyond that has none and is kept as rows). Concurrent assigners cannot collide:
        an insert that loses a race does nothing, and the mapping is read back."""
        bits = self._bits(keys)
        for key in sorted(set(keys) - set(bits)):
            for _ in range(8):
                top = self.session.scalar(select(func.max(AnalyticsTermBit.bit)))
                bit = 0 if top is None else top + 1
                if bit > 62:
                    break
                now = utcnow()
                insert_ = (pg_insert if self._dialect() == "postgresql" else sqlite_insert)(
                    AnalyticsTermBit
                )
                self.session.execute(
                    insert_.values(
                        term_key=key, bit=bit, created_at=now, updated_at=now
                    ).on_conflict_do_nothing()
                )
                found = self._bits([key])
                if key in found:
                    bits[key] = found[key]
                    break
        return bits

    def _bits(self, keys: Collection[str]) -> dict[str, int]:
        if not keys:
            return {}
        rows = self.session.execute(
            select(AnalyticsTermBit.term_key, AnalyticsTermBit.bit).where(
                AnalyticsTermBit.term_key.in_(list(keys))
            )
        )
        return dict(rows.tuples().all())

    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def replace_term_checks(
        self, deal: Deal, context: dict[str, Any], rows: Sequence[tuple[str, str, int]]
    ) -> None:
        """The deal's latest per-term figures, (term, status, variance ratio in millionths):
        terms at ratio 0 become bits of `deal.zero_terms`, the others rows with the deal's
        context (`context`: playbook key and version, checked_at). Two checks of one deal
        serialise on its row, so neither sees the other's half-replaced rows."""
        self.lock(deal.id)
        self.clear_term_checks(deal.id)
        bits = self.term_bits([key for key, _, ratio in rows if ratio == 0])
        mask, others = zero_term_mask(rows, bits)
        now = utcnow()
        kept = [
            {
                "deal_id": deal.id,
                "term_key": key,
                "status": status,
                "variance_ratio_micro": ratio,
                "region": deal.region,
                "segment": deal.segment,
                "team": deal.team,
                "owner_rep": deal.owner_rep,
                **context,
                "created_at": now,
                "updated_at": now,
            }
            for key, status, ratio in others
        ]
        deal.zero_terms = mask
        if kept:
            self.session.execute(insert(DealTermCheck), kept)

    # --- many deals at once (the Salesforce pull, a page at a time) ------------------------------

    def upsert_unreviewed(self, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Insert or replace these deals (rows of columns, `external_id` included) in one
        statement; an existing deal is replaced only while no review is under way or done.
        Returns the id of each deal written; a deal left out is under review (or approved)."""
        if not rows:
            return {}
        values = [
            {"status": DealStatus.draft, "lock_version": 1, "approval_round": 1, **row}
            for row in rows
        ]
        pg = self._dialect() == "postgresql"
        statement = (postgresql if pg else sqlite).insert(Deal)
        kept = ("id", "external_id", "created_at", "status", "lock_version", "approval_round")
        replaced = {name: statement.excluded[name] for name in values[0] if name not in kept}
        # No bound parameter in the SET clause: with one, SQLAlchemy sends an upsert with
        # RETURNING a row at a time instead of in batches (sqlalchemy#13130).
        replaced["lock_version"] = Deal.lock_version + literal_column("1")
        replaced["deleted_at"] = null()
        if pg:  # one statement, one array parameter per column
            names = list(values[0])
            statement = statement.from_select(names, unnest_rows(Deal, names, values))
        statement = statement.on_conflict_do_update(
            index_elements=[Deal.external_id],
            set_=replaced,
            where=and_(*(Deal.status != literal_column(f"'{s.value}'") for s in REVIEWING)),
        ).returning(Deal.external_id, Deal.id)
        if pg:
            return {row.external_id: row.id for row in self.session.execute(statement)}
        written: dict[str, int] = {}
        for chunk in range(0, len(values), 500):
            result = self.session.execute(statement, values[chunk : chunk + 500])
            written.update((row.external_id, row.id) for row in result)
        return written

    def add_checks(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Store many checks in one statement; their ids in the rows' order."""
        return insert_many(self.session, DealCheck, rows)

    def replace_term_checks_of(
        self, deal_ids: Collection[int], rows: Sequence[dict[str, Any]]
    ) -> None:
        """Replace the per-term rows of these deals (see `replace_term_checks`) with `rows`."""
        if deal_ids:
            self.session.execute(
                delete(DealTermCheck)
                .where(in_values(self.session, DealTermCheck.deal_id, sorted(deal_ids)))
                .execution_options(synchronize_session=False)
            )
        if rows:
            insert_rows(self.session, DealTermCheck, rows)

    def clear_term_checks(self, deal_id: int) -> None:
        self.session.execute(delete(DealTermCheck).where(DealTermCheck.deal_id == deal_id))

    def follow_context(self, deal: Deal) -> None:
        """Keep the term rows' copy of the deal's region, segment, team and rep current."""
        self.session.execute(
            update(DealTermCheck)
            .where(DealTermCheck.deal_id == deal.id)
            .values(
                region=deal.region, segment=deal.segment, team=deal.team, owner_rep=deal.owner_rep
            )
            .execution_options(synchronize_session=False)
        )

    def add_check(self, check: DealCheck) -> DealCheck:
        self.session.add(check)
        self.session.flush()
        return check

    def checks(self, deal_id: int, *, before_id: int | None, limit: int) -> Sequence[DealCheck]:
        query = (
            select(DealCheck)
            .where(DealCheck.deal_id == deal_id)
            .order_by(DealCheck.id.desc())
            .limit(limit)
        )
        if before_id is not None:
            query = query.where(DealCheck.id < before_id)
        return self.session.scalars(query).all()
