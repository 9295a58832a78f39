"""The after-action review: the subjective value inventory, placed with its outcome."""

from __future__ import annotations

from sqlalchemy.orm import Session

from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.deals import service as deal_service
from governance.deals.models import Deal
from governance.errors import Conflict, NotFound
from governance.outcomes.models import AfterActionReview, Outcome
from governance.outcomes.repository import OutcomeRepository
from governance.outcomes.schemas import (
    AfterActionReviewRead,
    AfterActionReviewWrite,
)
from governance.outcomes.service.common import locked_deal, outcome_context


def put_review(
    session: Session, actor: Principal, external_id: str, data: AfterActionReviewWrite
) -> tuple[AfterActionReviewRead, bool]:
    """File (or replace) the after-action review; only a closed deal has one."""
    deal = locked_deal(session, external_id)
    repo = OutcomeRepository(session)
    if repo.outcome(deal.id) is None:
        raise Conflict(
            f"deal {deal.external_id!r} has no outcome yet: record how it closed "
            "(POST /v1/deals/{external_id}/outcome) before reviewing it"
        )
    outcome = repo.outcome(deal.id)
    row = repo.review(deal.id)
    created = row is None
    before = (
        None
        if row is None
        else _review_read(deal, row).model_dump(
            mode="json", by_alias=True, exclude={"created_at", "updated_at"}
        )
    )
    if row is None:
        row = AfterActionReview(deal_id=deal.id)
        repo.add(row)
    row.instrumental = data.instrumental
    row.process = data.process
    row.relationship = data.relationship
    row.self_score = data.self_score
    row.note = data.note
    row.filed_by = actor.actor
    if outcome is not None:
        place_review(row, outcome)
    session.flush()
    read = _review_read(deal, row)
    audit.record(
        session,
        actor,
        "deal.reviewed",
        "deal",
        deal.external_id,
        before=before,
        after=read.model_dump(mode="json", by_alias=True, exclude={"created_at", "updated_at"}),
    )
    return read, created


def place_review(review: AfterActionReview, outcome: Outcome) -> None:
    """Reviews are reported by the deal's close date and context."""
    review.close_date = outcome.close_date
    for name, value in outcome_context(outcome).items():
        setattr(review, name, value)


def get_review(session: Session, external_id: str) -> AfterActionReviewRead:
    deal = deal_service.get_deal(session, external_id)
    row = OutcomeRepository(session).review(deal.id)
    if row is None:
        raise NotFound(f"deal {deal.external_id!r} has no after-action review yet")
    return _review_read(deal, row)


def _review_read(deal: Deal, row: AfterActionReview) -> AfterActionReviewRead:
    return AfterActionReviewRead(
        external_id=deal.external_id,
        instrumental=row.instrumental,
        process=row.process,
        relationship=row.relationship,
        self_score=row.self_score,
        note=row.note,
        filed_by=row.filed_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
