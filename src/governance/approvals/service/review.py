"""The one workflow for "a deal changed": store it, check it, bring its approvals in line, and
queue what must go out.

The HTTP routes (`PUT`/`PATCH /v1/deals/{id}`, `POST …/checks`) and the Salesforce pull call
these functions, so a change follows the same path whichever way it arrives:

1. upsert the deal (`deals.service`), which audits the change;
2. check it (`deals.service.check_deal`, which stores the check and queues the Salesforce push);
3. for a deal under review or approved, reconcile its open requests (smart re-approval, in
   `lifecycle`/`routing`), which queues notifications and the push for what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from governance.approvals.models import ApprovalRequest
from governance.approvals.service import lifecycle
from governance.auth.principal import Principal
from governance.db import utcnow
from governance.deals import service as deal_service
from governance.deals.models import REVIEWING, Deal, DealCheck, DealStatus
from governance.deals.schemas import DealUpdate, DealUpsert
from governance.errors import Conflict
from governance.playbooks.registry import PlaybookRegistry
from governance.salesforce import outbox as salesforce_outbox
from governance.settings import Settings


@dataclass
class Reviewed:
    """What a change did: the deal, whether it was new, and the check it stored (if any)."""

    deal: Deal
    created: bool = False
    check: DealCheck | None = None
    requests: list[ApprovalRequest] = field(default_factory=list)
    submitted: bool = False


def save_deal(
    session: Session,
    registry: PlaybookRegistry,
    settings: Settings,
    actor: Principal,
    external_id: str,
    data: DealUpsert,
    *,
    check: bool = False,
    submit: bool = False,
) -> Reviewed:
    """Create or replace a deal, then check it as the change requires.

    A deal under review or approved whose terms, attributes or playbook changed is always
    re-checked, so it never stays approved with terms nobody approved. `check` stores a check
    of every change (the Salesforce pull: every opportunity shows a current verdict); `submit`
    submits the deal (the pull's submit checkbox), and a blocked deal then keeps the check that
    says why instead of failing.
    """
    deal, created, governed = deal_service.upsert_deal(session, actor, external_id, data)
    reviewed = _follow(
        session, registry, settings, actor, deal, governed or check, check=check, submit=submit
    )
    reviewed.created = created
    return reviewed


def update_deal(
    session: Session,
    registry: PlaybookRegistry,
    settings: Settings,
    actor: Principal,
    external_id: str,
    data: DealUpdate,
) -> Reviewed:
    """Change some of a deal's fields; a deal under review follows at once (smart re-approval)."""
    deal, governed = deal_service.update_deal(session, actor, external_id, data)
    return _follow(session, registry, settings, actor, deal, governed)


def check_deal(
    session: Session,
    registry: PlaybookRegistry,
    settings: Settings,
    actor: Principal,
    external_id: str,
) -> Reviewed:
    """Store a check of the deal's current terms; a deal under review also re-reconciles."""
    check, requests = lifecycle.recheck(session, registry, actor, external_id, settings)
    deal = deal_service.get_deal(session, external_id)
    return Reviewed(deal=deal, check=check, requests=requests)


def delete_deal(session: Session, settings: Settings, actor: Principal, deal: Deal) -> None:
    """The opportunity was deleted: its review is withdrawn and it leaves the figures."""
    if deal.status != DealStatus.draft:
        lifecycle.withdraw(session, actor, deal.external_id, settings)
    deal_service.mark_deleted(session, deal, utcnow())
    salesforce_outbox.enqueue(session, deal.id)


def _follow(
    session: Session,
    registry: PlaybookRegistry,
    settings: Settings,
    actor: Principal,
    deal: Deal,
    changed: bool,
    *,
    check: bool = False,
    submit: bool = False,
) -> Reviewed:
    reviewed = Reviewed(deal=deal)
    if deal.status in REVIEWING:
        if changed:
            reviewed.check, reviewed.requests = lifecycle.recheck(
                session, registry, actor, deal.external_id, settings
            )
    elif submit:
        try:
            submission = lifecycle.submit(session, registry, actor, deal.external_id, settings)
        except Conflict:
            pass  # blocked: the check it stored tells the rep why
        else:
            reviewed.check, reviewed.submitted = submission.check, True
            reviewed.requests = list(submission.requests)
    elif check:
        reviewed.check = deal_service.check_deal(session, registry, actor, deal)[0]
    return reviewed
