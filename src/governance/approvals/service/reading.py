"""Reading requests: summaries, the approver's queue, one request with everything to decide it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from governance.approvals import serialize
from governance.approvals.models import OPEN, ApprovalRequest
from governance.approvals.repository import ApprovalRepository
from governance.approvals.schemas import ApprovalRequestRead, PlaybookVersionRef, RequestSummary
from governance.approvals.service.delegation import visible_groups
from governance.auth.principal import Principal
from governance.deals.models import Deal
from governance.deals.repository import DealRepository
from governance.deals.schemas import OpenRequestRef
from governance.errors import Forbidden, NotFound


def summary(request: ApprovalRequest) -> RequestSummary:
    return RequestSummary(
        id=request.id,
        version=request.lock_version,
        status=request.status,
        group=request.group,
        chain_group=request.chain_group,
        step=request.step,
        terms=[entry["key"] for entry in request.terms],
        playbook=PlaybookVersionRef(key=request.playbook_key, version=request.playbook_version),
        opened_at=request.opened_at,
        due_at=request.due_at,
        decided_at=request.decided_at,
        decided_by=request.decided_by,
        reason=request.reason,
        submitted_by=request.submitted_by,
        counter_terms=request.counter_terms,
        counter_accepted_at=request.counter_accepted_at,
        counter_accepted_by=request.counter_accepted_by,
    )


def open_refs(requests: Iterable[ApprovalRequest]) -> list[OpenRequestRef]:
    return [
        OpenRequestRef(
            id=r.id,
            group=r.group,
            step=r.step,
            status=r.status,
            playbook=r.playbook_key,
            playbook_version=r.playbook_version,
        )
        for r in requests
        if r.status in OPEN
    ]


def requests_json(
    session: Session, rows: Sequence[tuple[ApprovalRequest, Deal]]
) -> list[dict[str, Any]]:
    """Requests with everything needed to decide, in three statements whatever the count."""
    repo = ApprovalRepository(session)
    results = repo.check_results({r.check_id for r, _ in rows})
    history: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for past in repo.decided_for_deals({d.id for _, d in rows}):
        history[past.deal_id].append(serialize.past_json(past))
    deals: dict[int, dict[str, Any]] = {}
    out = []
    for request, deal in rows:
        deal_body = deals.get(deal.id)
        if deal_body is None:
            deal_body = deals[deal.id] = serialize.deal_json(deal)
        trades = results.get(request.check_id, {}).get("trades", ())
        out.append(serialize.request_json(request, deal_body, trades, history[deal.id]))
    return out


def read_requests(
    session: Session, rows: Sequence[tuple[ApprovalRequest, Deal]]
) -> list[ApprovalRequestRead]:
    return [ApprovalRequestRead.model_validate(body) for body in requests_json(session, rows)]


def get_request(session: Session, request_id: int) -> ApprovalRequestRead:
    found = ApprovalRepository(session).get_with_deal(request_id)
    if found is None:
        raise NotFound(f"approval request {request_id} does not exist")
    return read_requests(session, [found])[0]


def queue(
    session: Session,
    principal: Principal,
    *,
    status: str,
    group: str | None,
    deal_external_id: str | None,
    opened_before: datetime | None,
    after_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """One page of the caller's queue: their groups, their delegators' groups (admins: all)."""
    groups = visible_groups(session, principal)
    if group is not None:
        if groups is not None and group not in groups:
            raise Forbidden(f"you are not a member or delegate of group {group!r}")
        groups = {group}
    deal_id = None
    if deal_external_id is not None:
        deal = DealRepository(session).by_external_id(deal_external_id)
        if deal is None:
            return []
        deal_id = deal.id
    rows = ApprovalRepository(session).queue(
        groups=groups,
        statuses=(status,),
        deal_id=deal_id,
        opened_before=opened_before,
        after_id=after_id,
        limit=limit,
    )
    return requests_json(session, rows)


def requests_of(session: Session, deal: Deal) -> Sequence[ApprovalRequest]:
    return ApprovalRepository(session).for_deal(deal.id)
