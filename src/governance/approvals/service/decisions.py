"""Decisions on requests: approve, reject, counter (within the approver's authority),
opening the next steps of a chain, and an admin's reassignment."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from governance.approvals.models import OPEN, ApprovalRequest, RequestStatus
from governance.approvals.repository import ApprovalRepository
from governance.approvals.schemas import Decision, DecisionCreate
from governance.approvals.service.delegation import authority
from governance.approvals.service.groups import sla_hours
from governance.approvals.service.messages import notify
from governance.approvals.service.reading import summary
from governance.approvals.service.transitions import (
    close_request,
    covered_values,
    cycle_figures,
    json_value,
    open_request,
)
from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.db import utcnow
from governance.deals import service as deal_service
from governance.deals.models import Deal, DealStatus
from governance.deals.repository import DealRepository
from governance.engine import DealInputError, evaluate
from governance.engine.results import Status
from governance.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from governance.playbooks.registry import PlaybookRegistry
from governance.problems import Problem
from governance.salesforce import outbox as salesforce_outbox
from governance.settings import Settings


def _counter_values(
    registry: PlaybookRegistry, deal: Deal, row: ApprovalRequest, counter: Mapping[str, object]
) -> dict[str, Any]:
    """Validate a counter: covered terms only, values no worse than asked, within authority."""
    published = registry.version(row.playbook_version_id)
    compiled = published.compiled
    covered = {e["key"]: e for e in row.terms}
    problems = [
        Problem(("counter_terms", k), f"this request does not cover {k!r}")
        for k in counter
        if k not in covered
    ]
    if problems:
        raise InvalidInput(
            "a counter may only change the terms this request covers", errors=problems
        )
    unstated = [k for k, v in counter.items() if v is None]
    if unstated:
        raise InvalidInput(
            "a counter proposes values; null is not one",
            errors=[
                Problem(("counter_terms", k), "give the value you would approve") for k in unstated
            ],
        )
    try:
        parsed = compiled.parse_terms({**deal.terms, **counter})
    except DealInputError as exc:
        raise InvalidInput(
            "counter values do not fit their terms",
            errors=[Problem(("counter_terms", *p.loc[1:]), p.message) for p in exc.problems],
        ) from None
    attributes = deal_service.engine_attributes(deal_service.attributes_of(deal))
    result = evaluate(compiled, parsed, attributes)
    by_key = {t.key: t for t in result.terms}
    allowed_by_key = {k: e["approvers"][: row.step] for k, e in covered.items()}
    worse = 0
    for key in counter:
        term = compiled.by_key[key]
        value = parsed[key]
        asked = covered[key]["value"]
        outcome = by_key[key]
        beyond = [a for a in outcome.approvers if a not in allowed_by_key[key]]
        if not term.no_worse(value, asked):
            worse += 1
            problems.append(
                Problem(("counter_terms", key), f"{value} is worse for us than the {asked} asked")
            )
        elif outcome.status is Status.blocked:
            problems.append(
                Problem(
                    ("counter_terms", key),
                    f"{json_value(value)} is past the walk-away: no one may approve it",
                )
            )
        elif beyond:
            # One statement: who else the value needs, and so why this step may not grant it.
            problems.append(
                Problem(
                    ("counter_terms", key),
                    f"{json_value(value)} also needs {', '.join(beyond)}: beyond what "
                    f"{row.chain_group} may approve at step {row.step}",
                )
            )
    if problems:
        raise InvalidInput(
            "a counter may not be worse for us than what was asked"
            if worse == len(problems)
            else "the counter is outside the approver's authority",
            errors=problems,
        )
    if all(json_value(parsed[k]) == covered[k]["value"] for k in counter):
        raise InvalidInput(
            "a counter must change at least one value",
            errors=[Problem(("counter_terms",), "every value equals the one asked")],
        )
    return {k: json_value(parsed[k]) for k in counter}


def _promote(
    session: Session,
    registry: PlaybookRegistry,
    deal: Deal,
    rows: Sequence[ApprovalRequest],
    settings: Settings,
) -> list[ApprovalRequest]:
    """Open waiting requests whose earlier chain steps are all approved."""
    open_steps: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        if row.status in OPEN:
            for entry in row.terms:
                open_steps[entry["key"]].append(row.step)
    waiting = [r for r in rows if r.status == RequestStatus.waiting]
    if not waiting:
        return []
    groups = {g.name: g for g in ApprovalRepository(session).groups({r.group for r in waiting})}
    now = utcnow()
    opened = []
    for row in waiting:
        if all(all(s >= row.step for s in open_steps[e["key"]]) for e in row.terms):
            published = registry.version(row.playbook_version_id)
            open_request(row, now, sla_hours(groups, settings, row.group, published))
            row.lock_version += 1
            opened.append(row)
            notify(session, "approval.requested", row, deal, settings)
    return opened


def _locked(session: Session, request_id: int) -> tuple[ApprovalRequest, Deal]:
    """The request and its deal, read again under the deal's lock (every review change takes
    it first), so what is checked next is what the change will act on."""
    found = ApprovalRepository(session).get_with_deal(request_id)
    if found is None:
        raise NotFound(f"approval request {request_id} does not exist")
    row, deal = found
    deal = DealRepository(session).lock(deal.id)
    session.refresh(row)
    return row, deal


def decide(
    session: Session,
    registry: PlaybookRegistry,
    actor: Principal,
    request_id: int,
    body: DecisionCreate,
    if_match: int,
    settings: Settings,
) -> ApprovalRequest:
    """Record one decision on the version the decider read; the deal's status follows."""
    repo = ApprovalRepository(session)
    row, deal = _locked(session, request_id)
    grant = authority(session, actor, row.group)
    if row.status == RequestStatus.waiting:
        raise Conflict(f"request {request_id} is not open yet: an earlier step must approve first")
    if row.status != RequestStatus.pending:
        raise Conflict(f"request {request_id} was already decided: {row.status}")
    if if_match != row.lock_version:
        raise PreconditionFailed(
            f"request {request_id} changed since you read it (now version {row.lock_version}); "
            "read it again"
        )
    counter = None
    if body.decision is Decision.counter:
        counter = _counter_values(registry, deal, row, body.counter_terms or {})
    status = {
        Decision.approve: RequestStatus.approved,
        Decision.reject: RequestStatus.rejected,
        Decision.counter: RequestStatus.countered,
    }[body.decision]
    now = utcnow()
    before = summary(row).model_dump(mode="json")
    claimed = repo.claim_decision(
        row.id,
        row.lock_version,
        {
            "status": status,
            "decided_at": now,
            "decided_by": actor.actor,
            "on_behalf_of": grant.on_behalf_of,
            "admin_override": grant.admin_override,
            "reason": body.reason,
            "decided_values": covered_values(row),
            "counter_terms": counter,
            "updated_at": now,
            **cycle_figures(row, now),
        },
    )
    if not claimed:  # only reachable when the row lock was bypassed; never two decisions
        raise Conflict(f"request {request_id} was decided by someone else just now")
    session.refresh(row)
    rows = repo.round(deal.id, deal.approval_round)
    deal_before = deal.status
    if status == RequestStatus.rejected:
        for other in rows:
            if other.status in OPEN:
                was_pending = other.status == RequestStatus.pending
                close_request(
                    other, RequestStatus.withdrawn, actor, now, f"deal rejected by {row.group}"
                )
                if was_pending:
                    notify(session, "approval.withdrawn", other, deal, settings, other.reason or "")
        deal.status = DealStatus.rejected
    elif status == RequestStatus.countered:
        deal.status = DealStatus.countered
    elif deal.status == DealStatus.in_review:
        _promote(session, registry, deal, rows, settings)
        if not any(r.status in OPEN for r in rows):
            deal.status = DealStatus.approved
    if deal.status != deal_before:
        deal.lock_version += 1
    session.flush()
    salesforce_outbox.enqueue(session, deal.id)
    audit.record(
        session,
        actor,
        "approval.decided",
        "approval_request",
        row.id,
        before=before,
        after={
            **summary(row).model_dump(mode="json"),
            "deal": deal.external_id,
            "deal_status": deal.status,
            "values": row.decided_values,
            "counter_terms": counter,
            "admin_override": grant.admin_override,
        },
        on_behalf_of=grant.on_behalf_of,
    )
    notify(session, "approval.decided", row, deal, settings, body.reason or "")
    return row


def reassign(
    session: Session,
    registry: PlaybookRegistry,
    actor: Principal,
    request_id: int,
    group: str,
    reason: str,
    settings: Settings,
) -> ApprovalRequest:
    """An admin moves a request whose group has no active member to another group."""
    repo = ApprovalRepository(session)
    row, deal = _locked(session, request_id)
    if row.status not in OPEN:
        raise Conflict(f"request {request_id} is {row.status}; only open requests move")
    now = utcnow()
    held = repo.active_member_groups()
    delegated = {g for d in repo.delegations_between_active_keys(now) for g in d.delegator_groups}
    if row.group in held or row.group in delegated:
        raise Conflict(
            f"group {row.group!r} has active members; ask them or their delegates instead"
        )
    if group not in held:
        raise InvalidInput(
            f"group {group!r} has no active member either",
            errors=[Problem(("group",), f"no unrevoked API key belongs to {group!r}")],
        )
    before = summary(row).model_dump(mode="json")
    row.group = group
    row.lock_version += 1
    if row.status == RequestStatus.pending:
        groups = {g.name: g for g in repo.groups({group})}
        published = registry.version(row.playbook_version_id)
        open_request(row, now, sla_hours(groups, settings, group, published))
        notify(session, "approval.requested", row, deal, settings, f"Reassigned: {reason}")
    session.flush()
    salesforce_outbox.enqueue(session, deal.id)
    audit.record(
        session, actor, "approval.reassigned", "approval_request", row.id,
        before=before, after={**summary(row).model_dump(mode="json"), "reason": reason},
    )  # fmt: skip
    return row
