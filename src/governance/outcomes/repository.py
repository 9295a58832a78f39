"""SQL for outcomes, their per-term rows, preparations and after-action reviews."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from governance.deals.models import DealCheck
from governance.outcomes.models import AfterActionReview, Outcome, OutcomeTerm, Preparation


class OutcomeRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def outcome(self, deal_id: int) -> Outcome | None:
        return self.session.scalars(select(Outcome).where(Outcome.deal_id == deal_id)).one_or_none()

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

    def preparation(self, deal_id: int) -> Preparation | None:
        return self.session.scalars(
            select(Preparation).where(Preparation.deal_id == deal_id)
        ).one_or_none()

    def review(self, deal_id: int) -> AfterActionReview | None:
        return self.session.scalars(
            select(AfterActionReview).where(AfterActionReview.deal_id == deal_id)
        ).one_or_none()
