"""SQL for outcomes, their per-term rows, preparations and after-action reviews."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from governance.db import in_values, insert_many, insert_rows
from governance.deals.models import DealCheck
from governance.outcomes.models import AfterActionReview, Outcome, OutcomeTerm, Preparation


class OutcomeRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def outcome(self, deal_id: int) -> Outcome | None:
        return self.session.scalars(select(Outcome).where(Outcome.deal_id == deal_id)).one_or_none()

    def outcomes_of(self, deal_ids: Collection[int]) -> dict[int, Outcome]:
        """The outcomes of these deals (those that have one), by deal id."""
        if not deal_ids:
            return {}
        query = select(Outcome).where(in_values(self.session, Outcome.deal_id, sorted(deal_ids)))
        return {o.deal_id: o for o in self.session.scalars(query)}

    def add_outcomes(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Store many new outcomes in one statement; their ids in the rows' order."""
        return insert_many(self.session, Outcome, rows)

    def add_terms(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store many outcomes' per-term rows in one statement."""
        if rows:
            insert_rows(self.session, OutcomeTerm, rows)

    def add(self, row: Outcome | OutcomeTerm | Preparation | AfterActionReview) -> None:
        self.session.add(row)

    def terms(self, outcome_id: int) -> Sequence[OutcomeTerm]:
        return self.session.scalars(
            select(OutcomeTerm).where(OutcomeTerm.outcome_id == outcome_id).order_by(OutcomeTerm.id)
        ).all()

    def replace_terms(self, outcome_id: int, rows: Sequence[OutcomeTerm]) -> None:
        """Drop the outcome's term rows and add these (a re-recorded close replaces them all)."""
        self.session.execute(delete(OutcomeTerm).where(OutcomeTerm.outcome_id == outcome_id))
        self.session.add_all(rows)

    def latest_check_version(self, deal_id: int) -> int | None:
        """The playbook version id the deal's latest stored check used."""
        return self.session.scalars(
            select(DealCheck.playbook_version_id)
            .where(DealCheck.deal_id == deal_id)
            .order_by(DealCheck.id.desc())
            .limit(1)
        ).first()

    def latest_check_versions(self, deal_ids: Collection[int]) -> dict[int, int]:
        """`latest_check_version` of many deals (those with a check), by deal id."""
        if not deal_ids:
            return {}
        latest = (
            select(func.max(DealCheck.id))
            .where(in_values(self.session, DealCheck.deal_id, sorted(deal_ids)))
            .group_by(DealCheck.deal_id)
        )
        rows = self.session.execute(
            select(DealCheck.deal_id, DealCheck.playbook_version_id).where(DealCheck.id.in_(latest))
        )
        return {deal_id: version for deal_id, version in rows if version is not None}

    def preparation(self, deal_id: int) -> Preparation | None:
        return self.session.scalars(
            select(Preparation).where(Preparation.deal_id == deal_id)
        ).one_or_none()

    def review(self, deal_id: int) -> AfterActionReview | None:
        return self.session.scalars(
            select(AfterActionReview).where(AfterActionReview.deal_id == deal_id)
        ).one_or_none()
