"""SQL for deals and their stored checks."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from governance.db import utcnow
from governance.deals.models import Deal, DealCheck, DealTermCheck


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

    def add(self, deal: Deal) -> Deal:
        self.session.add(deal)
        self.session.flush()
        return deal

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

    def check(self, check_id: int) -> DealCheck | None:
        return self.session.get(DealCheck, check_id)

    def latest_check(self, deal_id: int) -> DealCheck:
        return self.session.scalars(
            select(DealCheck)
            .where(DealCheck.deal_id == deal_id)
            .order_by(DealCheck.id.desc())
            .limit(1)
        ).one()

    def latest_steps(self, deal_ids: Collection[int]) -> dict[int, list[dict[str, Any]]]:
        """The approval steps each deal's latest check asked for."""
        if not deal_ids:
            return {}
        latest = (
            select(func.max(DealCheck.id))
            .where(DealCheck.deal_id.in_(deal_ids))
            .group_by(DealCheck.deal_id)
        )
        rows = self.session.execute(
            select(DealCheck.deal_id, DealCheck.result["steps"]).where(DealCheck.id.in_(latest))
        ).tuples()
        return {deal_id: steps or [] for deal_id, steps in rows}

    def replace_term_checks(self, deal_id: int, rows: Sequence[tuple[str, str, int]]) -> None:
        """The deal's latest per-term figures: (term, status, variance ratio in millionths)."""
        self.session.execute(delete(DealTermCheck).where(DealTermCheck.deal_id == deal_id))
        if rows:
            now = utcnow()
            self.session.execute(
                insert(DealTermCheck),
                [
                    {
                        "deal_id": deal_id,
                        "term_key": key,
                        "status": status,
                        "variance_ratio_micro": ratio,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for key, status, ratio in rows
                ],
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
