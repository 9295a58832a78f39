"""A deal's review: submit, re-check, withdraw, accept a counter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from governance.approvals.models import OPEN, ApprovalRequest, RequestStatus
from governance.approvals.repository import ApprovalRepository
from governance.approvals.service.messages import notify
from governance.approvals.service.routing import Reconciled, reconcile
from governance.approvals.service.transitions import close_request
from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.db import utcnow
from governance.deals import service as deal_service
from governance.deals.models import REVIEWING, Deal, DealCheck, DealStatus
from governance.deals.repository import DealRepository
from governance.engine.results import CheckResult, Status, Verdict
from governance.errors import Conflict, InvalidInput, NotFound
from governance.playbooks.registry import PlaybookRegistry
from governance.problems import Problem
from governance.salesforce import outbox as salesforce_outbox
from governance.settings import Settings


def _blocked_problems(result: CheckResult) -> list[Problem]:
    return [
        Problem(
            ("terms", t.key),
            f"{t.value} is beyond the walk-away ({t.band.walk_away}); no one can approve it"
            if t.band.walk_away is not None
            else f"{t.value!r} is outside every tier; no one can approve it",
        )
        for t in result.terms
        if t.status is Status.blocked
    ]


@dataclass
class Submission:
    deal: Deal
    check: DealCheck
    requests: Sequence[ApprovalRequest]
    changes: Reconciled


def _review(
    session: Session,
    registry: PlaybookRegistry,
    actor: Principal,
    deal: Deal,
    settings: Settings,
    justifications: Mapping[str, str] | None,
    action: str,
) -> Submission:
    before = {"status": deal.status, "terms": dict(deal.terms)}
    check, result, published = deal_service.check_deal(session, registry, actor, deal)
    if result.verdict is Verdict.blocked:
        raise Conflict(
            "the deal has blocked terms; change them before submitting",
            errors=_blocked_problems(result),
        )
    unknown = [k for k in (justifications or {}) if k not in published.compiled.by_key]
    if unknown:
        raise InvalidInput(
            "justifications name terms the playbook does not have",
            errors=[
                Problem(("justifications", k), f"{k!r} is not a term of {published.key}")
                for k in unknown
            ],
        )
    deal.review_version_id = published.version_id
    deal.submitted_at = deal.submitted_at or utcnow()
    changes = reconcile(session, actor, deal, check, result, published, settings, justifications)
    if deal.status == DealStatus.approved and not ApprovalRepository(session).round(
        deal.id, deal.approval_round
    ):
        # Auto-approved with no request in the round: nothing under way to keep a version for.
        deal.review_version_id = None
    deal.lock_version += 1
    session.flush()
    salesforce_outbox.enqueue(session, deal.id)
    audit.record(
        session,
        actor,
        action,
        "deal",
        deal.external_id,
        before=before,
        after={
            "status": deal.status,
            "terms": dict(deal.terms),
            "check_id": check.id,
            "playbook": f"{published.key}/{published.number}",
            "opened": changes.opened,
            "updated": changes.updated,
            "withdrawn": changes.withdrawn,
            "kept": [k.model_dump(mode="json") for k in changes.kept],
            "reapproval": changes.reapproval,
        },
    )
    rows = ApprovalRepository(session).round(deal.id, deal.approval_round)
    return Submission(deal, check, rows, changes)


def submit(
    session: Session,
    registry: PlaybookRegistry,
    actor: Principal,
    external_id: str,
    settings: Settings,
    justifications: Mapping[str, str] | None = None,
) -> Submission:
    """Check the deal and open (or bring up to date) its approval requests."""
    deal = deal_service.get_deal(session, external_id)
    deal = DealRepository(session).lock(deal.id)
    return _review(session, registry, actor, deal, settings, justifications, "deal.submitted")


def recheck(
    session: Session,
    registry: PlaybookRegistry,
    actor: Principal,
    external_id: str,
    settings: Settings,
) -> tuple[DealCheck, list[ApprovalRequest]]:
    """A stored check; for a deal under review or approved, it also re-evaluates approvals.

    A re-check that finds blocked terms takes the deal out of review: its open requests are
    withdrawn (approvals already given stay valid for the next submission).
    """
    deal = deal_service.get_deal(session, external_id)
    deal = DealRepository(session).lock(deal.id)
    if deal.status not in REVIEWING:
        check = deal_service.check_deal(session, registry, actor, deal)[0]
        return check, list(ApprovalRepository(session).round(deal.id, deal.approval_round))
    try:
        submission = _review(session, registry, actor, deal, settings, None, "deal.rechecked")
    except Conflict:
        # The check `_review` stored stays (it is the news); the deal leaves review.
        check = DealRepository(session).latest_check(deal.id)
        now = utcnow()
        for row in ApprovalRepository(session).round(deal.id, deal.approval_round):
            if row.status in OPEN:
                was_pending = row.status == RequestStatus.pending
                close_request(
                    row, RequestStatus.withdrawn, actor, now, f"deal blocked at check {check.id}"
                )
                audit.record(
                    session, actor, "approval.withdrawn", "approval_request", row.id,
                    after={"reason": row.reason, "deal": deal.external_id},
                )  # fmt: skip
                if was_pending:
                    notify(
                        session, "approval.withdrawn", row, deal, settings, "The deal is blocked."
                    )
        before = deal.status
        deal.status = DealStatus.draft
        session.flush()
        salesforce_outbox.enqueue(session, deal.id)
        audit.record(
            session, actor, "deal.review_stopped", "deal", deal.external_id,
            before={"status": before}, after={"status": DealStatus.draft.value, "check_id": check.id},
        )  # fmt: skip
        return check, list(ApprovalRepository(session).round(deal.id, deal.approval_round))
    return submission.check, list(submission.requests)


def withdraw(session: Session, actor: Principal, external_id: str, settings: Settings) -> Deal:
    """The rep takes the deal back: open requests close as withdrawn and a new round begins."""
    deal = deal_service.get_deal(session, external_id)
    deal = DealRepository(session).lock(deal.id)
    if deal.status == DealStatus.draft:
        raise Conflict("the deal is a draft; there is no review to withdraw")
    now = utcnow()
    closed = []
    for row in ApprovalRepository(session).round(deal.id, deal.approval_round):
        if row.status in OPEN:
            was_pending = row.status == RequestStatus.pending
            close_request(row, RequestStatus.withdrawn, actor, now, "withdrawn by the rep")
            closed.append(row.id)
            if was_pending:
                notify(session, "approval.withdrawn", row, deal, settings, "Withdrawn by the rep.")
    before = deal.status
    deal.status = DealStatus.draft
    deal.approval_round += 1
    deal.review_version_id = None
    deal.submitted_at = None
    deal.lock_version += 1
    session.flush()
    salesforce_outbox.enqueue(session, deal.id)
    audit.record(
        session, actor, "deal.withdrawn", "deal", deal.external_id,
        before={"status": before}, after={"status": DealStatus.draft.value, "withdrawn": closed},
    )  # fmt: skip
    return deal


def accept_counter(
    session: Session,
    registry: PlaybookRegistry,
    actor: Principal,
    external_id: str,
    request_id: int,
    settings: Settings,
) -> Submission:
    """The rep accepts a counter: the deal takes its values and is checked again."""
    deal = deal_service.get_deal(session, external_id)
    deal = DealRepository(session).lock(deal.id)
    row = ApprovalRepository(session).get(request_id)
    if row is None or row.deal_id != deal.id:
        raise NotFound(f"deal {deal.external_id} has no approval request {request_id}")
    if row.status != RequestStatus.countered or row.round != deal.approval_round:
        raise Conflict(f"request {request_id} is {row.status}, not a counter of this review")
    if row.counter_accepted_at is not None:
        raise Conflict(f"the counter of request {request_id} was already accepted")
    row.counter_accepted_at = utcnow()
    row.counter_accepted_by = actor.actor
    before_terms = dict(deal.terms)
    deal.terms = {**deal.terms, **(row.counter_terms or {})}
    audit.record(
        session, actor, "deal.counter_accepted", "deal", deal.external_id,
        before={"terms": before_terms}, after={"terms": dict(deal.terms), "request": request_id},
    )  # fmt: skip
    return _review(session, registry, actor, deal, settings, None, "deal.resubmitted")
