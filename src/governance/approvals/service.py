"""Approval rules: submission, smart re-approval, decisions, delegation and SLA escalation.

A deal's review is a *round* of requests, one per (approver group, chain step). Each request
keeps the term values it covers. A later check keeps every approval whose term value is no
worse than the value approved, and asks again only for what got worse. The round stays pinned
to the playbook version it started with until the rep withdraws the deal.

Changes to one deal's review serialise on the deal's row lock (`DealRepository.lock`); a
decision also claims its request with a compare-and-set, so two deciders produce one decision.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from governance.approvals import serialize
from governance.approvals.models import ApprovalGroup, ApprovalRequest, Delegation
from governance.approvals.repository import OPEN, ApprovalRepository
from governance.approvals.schemas import (
    ApprovalRequestRead,
    Decision,
    DecisionCreate,
    DelegationRead,
    DelegationWrite,
    GroupRead,
    GroupWrite,
    KeptApproval,
    MyDelegations,
    PlaybookVersionRef,
    RequestSummary,
)
from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.auth.schemas import Role
from governance.db import utcnow
from governance.deals import service as deal_service
from governance.deals.models import Deal, DealCheck
from governance.deals.repository import DealRepository
from governance.deals.schemas import OpenRequestRef
from governance.engine import DealInputError, evaluate
from governance.engine.results import CheckResult, Status, TermValue, Verdict
from governance.errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed
from governance.notifications import service as notifications
from governance.playbooks.registry import PlaybookRegistry, Published
from governance.problems import Problem
from governance.settings import Settings

PENDING, WAITING, APPROVED, REJECTED, COUNTERED, WITHDRAWN = (
    "pending", "waiting", "approved", "rejected", "countered", "withdrawn",
)  # fmt: skip
REVIEWING = ("in_review", "approved")


# --- reading ---------------------------------------------------------------------------------


def _json_value(value: TermValue | None) -> Any:
    return value if value is None or isinstance(value, bool | str) else str(value)


def _values(request: ApprovalRequest) -> dict[str, Any]:
    return {entry["key"]: entry["value"] for entry in request.terms}


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


# --- who may act -----------------------------------------------------------------------------


def delegated_groups(session: Session, principal: Principal, at: datetime) -> dict[str, str]:
    """Groups `principal` may act for through delegations active now: group -> delegator.

    Only delegations given to the principal count, and a delegation carries only the groups
    the delegator holds in their own right, so a delegate cannot pass delegation on.
    """
    out: dict[str, str] = {}
    repo = ApprovalRepository(session)
    delegations = repo.delegations_to(principal.name, at)
    if not delegations:
        return out
    active = repo.active_key_names()  # a revoked delegator's delegation carries nothing
    for delegation in delegations:
        if delegation.delegator not in active:
            continue
        for group in delegation.delegator_groups:
            out.setdefault(group, delegation.delegator)
    return out


@dataclass(frozen=True, slots=True)
class Authority:
    on_behalf_of: str | None
    admin_override: bool


def authority(session: Session, principal: Principal, group: str) -> Authority:
    """How `principal` may decide for `group`, or 403."""
    if principal.in_group(group):
        return Authority(None, False)
    delegator = delegated_groups(session, principal, utcnow()).get(group)
    if delegator is not None:
        return Authority(delegator, False)
    if principal.role is Role.admin:
        return Authority(None, True)
    raise Forbidden(
        f"only members of {group!r}, their active delegates, or an admin may decide this request"
    )


# --- groups and SLAs -------------------------------------------------------------------------


def sla_hours(
    groups: Mapping[str, ApprovalGroup],
    settings: Settings,
    group: str,
    published: Published | None = None,
) -> int:
    """The playbook's SLA for the group, else the group's own, else the service default."""
    if published is not None:
        hours = published.compiled.document.approval_sla_hours.get(group)
        if hours is not None:
            return hours
    config = groups.get(group)
    if config is not None and config.sla_hours is not None:
        return config.sla_hours
    return settings.approval_sla_hours


def _open(request: ApprovalRequest, now: datetime, hours: int) -> None:
    request.status = PENDING
    request.opened_at = now
    request.first_opened_at = request.first_opened_at or now
    request.due_at = now + timedelta(hours=hours)
    request.remind_at = now + timedelta(hours=hours) / 2
    request.reminded_at = None


def read_group(config: ApprovalGroup | None, name: str, settings: Settings) -> GroupRead:
    return GroupRead(
        name=name,
        sla_hours=(
            config.sla_hours if config and config.sla_hours else settings.approval_sla_hours
        ),
        sla_hours_set=bool(config and config.sla_hours),
        webhook_configured=bool(config and config.webhook_url),
        webhook_host=notifications.webhook_host(config.webhook_url if config else None),
        escalation_group=config.escalation_group if config else None,
    )


def put_group(
    session: Session, actor: Principal, name: str, data: GroupWrite, settings: Settings
) -> tuple[GroupRead, bool]:
    repo = ApprovalRepository(session)
    config = repo.group(name)
    created = config is None
    before = None if config is None else read_group(config, name, settings).model_dump(mode="json")
    if config is None:
        config = repo.add_group(ApprovalGroup(name=name))
    config.sla_hours = data.sla_hours
    # The webhook URL is never shown again, so leaving it out keeps it; null removes it.
    if "webhook_url" in data.model_fields_set:
        config.webhook_url = str(data.webhook_url) if data.webhook_url else None
    config.escalation_group = data.escalation_group
    session.flush()
    after = read_group(config, name, settings)
    audit.record(
        session, actor, "approval_group.saved", "approval_group", name,
        before=before, after=after.model_dump(mode="json"),
    )  # fmt: skip
    return after, created


def list_groups(session: Session, settings: Settings) -> list[GroupRead]:
    """Every configured group and every group a key belongs to."""
    repo = ApprovalRepository(session)
    configs = {g.name: g for g in repo.groups()}
    names = sorted(set(configs) | repo.active_member_groups())
    return [read_group(configs.get(n), n, settings) for n in names]


# --- notifications ---------------------------------------------------------------------------


def _message(
    event: str, request: ApprovalRequest, deal: Deal, settings: Settings, extra: str = ""
) -> dict[str, Any]:
    """A Slack-compatible body: `text` for any client, `blocks` for Slack's layout."""
    link = f"{settings.public_url.rstrip('/')}/v1/approvals/{request.id}"
    title = {
        "approval.requested": "Approval requested",
        "approval.reminder": "Reminder: approval waiting",
        "approval.escalated": "Escalated approval",
        "approval.decided": f"Approval {request.status}",
        "approval.withdrawn": "Approval request closed",
    }.get(event, event)
    name = deal.name or deal.external_id
    lines = [
        f"• {e['label']}: {e['value']}{' ' + e['unit'] if e.get('unit') else ''} "
        f"({e['status']}, tier {e['tier']})"
        for e in request.terms
    ]
    text = f"{title} for {request.group} (step {request.step}): {name}. {extra}".strip()
    return {
        "text": f"{text}\n" + "\n".join(lines) + f"\n{link}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"<{link}|Open request {request.id}>"}],
            },
        ],
        "deal": {"external_id": deal.external_id, "name": deal.name, "status": deal.status},
        "request": {
            "id": request.id,
            "group": request.group,
            "step": request.step,
            "status": request.status,
            "terms": [{"key": e["key"], "value": e["value"]} for e in request.terms],
            "due_at": request.due_at.isoformat() if request.due_at else None,
        },
        "event": event,
        "link": link,
    }


def _notify(
    session: Session,
    event: str,
    request: ApprovalRequest,
    deal: Deal,
    settings: Settings,
    extra: str = "",
) -> None:
    notifications.enqueue(
        session, event, request.group, _message(event, request, deal, settings, extra)
    )


# --- submission and smart re-approval --------------------------------------------------------


@dataclass
class Reconciled:
    opened: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    withdrawn: list[int] = field(default_factory=list)
    kept: list[KeptApproval] = field(default_factory=list)
    reapproval: list[dict[str, Any]] = field(default_factory=list)


def _approved_values(rows: Iterable[ApprovalRequest]) -> dict[tuple[str, str], list[Any]]:
    """(term, chain group) -> values an approval in this round covers.

    An approved request covers the values it approved; an accepted counter covers the values
    the approver proposed.
    """
    out: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        values: dict[str, Any] | None = None
        if row.status == APPROVED:
            values = row.decided_values or _values(row)
        elif row.status == COUNTERED and row.counter_accepted_at is not None:
            values = {**(row.decided_values or _values(row)), **(row.counter_terms or {})}
        for key, value in (values or {}).items():
            out[(key, row.chain_group)].append(value)
    return out


def _entries(
    check: DealCheck, keys: Iterable[str], justifications: Mapping[str, str]
) -> list[dict[str, Any]]:
    by_key = {t["key"]: t for t in check.result["terms"]}
    out = []
    for key in keys:
        entry = {k: v for k, v in by_key[key].items() if k != "rules"}
        entry["justification"] = justifications.get(key)
        out.append(entry)
    return out


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Whether two covered-term lists ask the approver the same thing."""
    fields = ("key", "value", "tier", "approvers", "band", "justification")
    return [[e.get(f) for f in fields] for e in a] == [[e.get(f) for f in fields] for e in b]


def reconcile(
    session: Session,
    actor: Principal,
    deal: Deal,
    check: DealCheck,
    result: CheckResult,
    published: Published,
    settings: Settings,
    justifications: Mapping[str, str] | None = None,
) -> Reconciled:
    """Bring the deal's open requests in line with a new check (smart re-approval)."""
    repo = ApprovalRepository(session)
    now = utcnow()
    rows = repo.round(deal.id, deal.approval_round)
    approved = _approved_values(rows)
    open_rows = {(r.chain_group, r.step): r for r in rows if r.status in OPEN}
    given: dict[str, str] = {}
    for row in rows:
        for entry in row.terms:
            if entry.get("justification"):
                given[entry["key"]] = entry["justification"]
    given.update(justifications or {})
    compiled = published.compiled
    out = Reconciled()

    needs: dict[tuple[str, int], list[str]] = defaultdict(list)
    unmet_steps: dict[str, set[int]] = defaultdict(set)
    for term in result.terms:
        if term.status is not Status.exception or term.value is None:
            continue
        compiled_term = compiled.by_key[term.key]
        for step, group in enumerate(term.approvers, start=1):
            values = approved.get((term.key, group), [])
            valid = [v for v in values if compiled_term.no_worse(term.value, v)]
            if valid:
                out.kept.append(
                    KeptApproval(
                        term=term.key,
                        group=group,
                        approved_value=valid[-1],
                        value=_json_value(term.value),
                    )
                )
                continue
            needs[(group, step)].append(term.key)
            unmet_steps[term.key].add(step)
            if values:
                out.reapproval.append(
                    {
                        "term": term.key,
                        "group": group,
                        "approved_value": values[-1],
                        "value": _json_value(term.value),
                    }
                )

    # Set before any notification is built, so messages show the deal as it will be.
    deal.status = "in_review" if needs else "approved"
    # Open requests may be held by another group than their chain's (reassigned): load both.
    holders = {r.group for r in open_rows.values()}
    groups = {g.name: g for g in repo.groups({g for g, _ in needs} | holders)}
    for (group, step), keys in sorted(needs.items(), key=lambda item: (item[0][1], item[0][0])):
        entries = _entries(check, keys, given)
        ready = all(not any(s < step for s in unmet_steps[k]) for k in keys)
        existing = open_rows.pop((group, step), None)
        if existing is None:
            row = repo.add(
                ApprovalRequest(
                    deal_id=deal.id,
                    round=deal.approval_round,
                    check_id=check.id,
                    playbook_version_id=published.version_id,
                    playbook_key=published.key,
                    playbook_version=published.number,
                    group=group,
                    chain_group=group,
                    step=step,
                    terms=entries,
                    status=WAITING,
                    lock_version=1,
                    submitted_by=actor.actor,
                    escalation_level=0,
                    admin_override=False,
                    region=deal.region,
                    segment=deal.segment,
                    team=deal.team,
                    owner_rep=deal.owner_rep,
                )
            )
            if ready:
                _open(row, now, sla_hours(groups, settings, group, published))
            session.flush()
            out.opened.append(row.id)
            audit.record(
                session, actor, "approval.opened", "approval_request", row.id,
                after={**summary(row).model_dump(mode="json"), "deal": deal.external_id},
            )  # fmt: skip
            if ready:
                _notify(session, "approval.requested", row, deal, settings)
            continue
        row = existing
        row.check_id = check.id
        # Any change to what the approver is asked bumps the version, so a decision made on
        # what they read before gets 412.
        if not _same(row.terms, entries):
            before = {**summary(row).model_dump(mode="json"), "values": _values(row)}
            row.terms = entries
            row.lock_version += 1
            out.updated.append(row.id)
            audit.record(
                session, actor, "approval.updated", "approval_request", row.id,
                before=before, after={"values": _values(row)},
            )  # fmt: skip
        if ready and row.status == WAITING:
            _open(row, now, sla_hours(groups, settings, row.group, published))
            row.lock_version += 1
            out.opened.append(row.id)
            _notify(session, "approval.requested", row, deal, settings)
        elif not ready and row.status == PENDING:
            row.status, row.opened_at, row.due_at, row.remind_at = WAITING, None, None, None
            row.first_opened_at = None  # waiting again: its wait starts when it reopens
            row.lock_version += 1

    for row in open_rows.values():
        was_pending = row.status == PENDING
        _close(row, WITHDRAWN, actor, now, f"no longer needed after check {check.id}")
        if was_pending:
            _notify(session, "approval.withdrawn", row, deal, settings, "No longer needed.")
        out.withdrawn.append(row.id)
        audit.record(
            session, actor, "approval.withdrawn", "approval_request", row.id,
            after={"reason": row.reason, "deal": deal.external_id},
        )  # fmt: skip

    session.flush()
    return out


def _cycle(row: ApprovalRequest, now: datetime) -> dict[str, Any]:
    """What cycle-time analytics read: seconds the deal waited since the request first opened
    (through any escalation), and whether the first holder decided within its SLA (an
    escalated request did not)."""
    opened = row.first_opened_at or row.opened_at or now
    return {
        "cycle_seconds": max(0, int((now - opened).total_seconds())),
        "within_sla": row.escalation_level == 0 and (row.due_at is None or now <= row.due_at),
    }


def _close(row: ApprovalRequest, status: str, actor: Principal, now: datetime, reason: str) -> None:
    row.status = status
    row.decided_at = now
    row.decided_by = actor.actor
    row.reason = reason
    row.lock_version += 1


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
    if deal.status == "approved" and not ApprovalRepository(session).round(
        deal.id, deal.approval_round
    ):
        # Auto-approved with no request in the round: nothing under way to keep a version for.
        deal.review_version_id = None
    deal.lock_version += 1
    session.flush()
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
                was_pending = row.status == PENDING
                _close(row, WITHDRAWN, actor, now, f"deal blocked at check {check.id}")
                audit.record(
                    session, actor, "approval.withdrawn", "approval_request", row.id,
                    after={"reason": row.reason, "deal": deal.external_id},
                )  # fmt: skip
                if was_pending:
                    _notify(
                        session, "approval.withdrawn", row, deal, settings, "The deal is blocked."
                    )
        before = deal.status
        deal.status = "draft"
        session.flush()
        audit.record(
            session, actor, "deal.review_stopped", "deal", deal.external_id,
            before={"status": before}, after={"status": "draft", "check_id": check.id},
        )  # fmt: skip
        return check, list(ApprovalRepository(session).round(deal.id, deal.approval_round))
    return submission.check, list(submission.requests)


def withdraw(session: Session, actor: Principal, external_id: str, settings: Settings) -> Deal:
    """The rep takes the deal back: open requests close as withdrawn and a new round begins."""
    deal = deal_service.get_deal(session, external_id)
    deal = DealRepository(session).lock(deal.id)
    if deal.status == "draft":
        raise Conflict("the deal is a draft; there is no review to withdraw")
    now = utcnow()
    closed = []
    for row in ApprovalRepository(session).round(deal.id, deal.approval_round):
        if row.status in OPEN:
            was_pending = row.status == PENDING
            _close(row, WITHDRAWN, actor, now, "withdrawn by the rep")
            closed.append(row.id)
            if was_pending:
                _notify(session, "approval.withdrawn", row, deal, settings, "Withdrawn by the rep.")
    before = deal.status
    deal.status = "draft"
    deal.approval_round += 1
    deal.review_version_id = None
    deal.submitted_at = None
    deal.lock_version += 1
    session.flush()
    audit.record(
        session, actor, "deal.withdrawn", "deal", deal.external_id,
        before={"status": before}, after={"status": "draft", "withdrawn": closed},
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
    if row.status != COUNTERED or row.round != deal.approval_round:
        raise Conflict(f"request {request_id} is {row.status}, not a counter of this review")
    if row.counter_accepted_at is not None:
        raise Conflict(f"the counter of request {request_id} was already accepted")
    row.counter_accepted_at = utcnow()
    before_terms = dict(deal.terms)
    deal.terms = {**deal.terms, **(row.counter_terms or {})}
    audit.record(
        session, actor, "deal.counter_accepted", "deal", deal.external_id,
        before={"terms": before_terms}, after={"terms": dict(deal.terms), "request": request_id},
    )  # fmt: skip
    return _review(session, registry, actor, deal, settings, None, "deal.resubmitted")


# --- decisions -------------------------------------------------------------------------------


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
    for key in counter:
        term = compiled.by_key[key]
        value = parsed[key]
        asked = covered[key]["value"]
        outcome = by_key[key]
        if not term.no_worse(value, asked):
            problems.append(
                Problem(
                    ("counter_terms", key),
                    f"{value} is worse for us than the {asked} asked",
                )
            )
        elif outcome.status is Status.blocked or not set(outcome.approvers) <= set(
            allowed_by_key[key]
        ):
            problems.append(
                Problem(
                    ("counter_terms", key),
                    f"{_json_value(value)} needs {', '.join(outcome.approvers) or 'no one'}: "
                    f"beyond what {row.chain_group} may approve at step {row.step}",
                )
            )
    if problems:
        raise InvalidInput("the counter is outside the approver's authority", errors=problems)
    if all(_json_value(parsed[k]) == covered[k]["value"] for k in counter):
        raise InvalidInput(
            "a counter must change at least one value",
            errors=[Problem(("counter_terms",), "every value equals the one asked")],
        )
    return {k: _json_value(parsed[k]) for k in counter}


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
    waiting = [r for r in rows if r.status == WAITING]
    if not waiting:
        return []
    groups = {g.name: g for g in ApprovalRepository(session).groups({r.group for r in waiting})}
    now = utcnow()
    opened = []
    for row in waiting:
        if all(all(s >= row.step for s in open_steps[e["key"]]) for e in row.terms):
            published = registry.version(row.playbook_version_id)
            _open(row, now, sla_hours(groups, settings, row.group, published))
            row.lock_version += 1
            opened.append(row)
            _notify(session, "approval.requested", row, deal, settings)
    return opened


def decide(
    session: Session,
    registry: PlaybookRegistry,
    actor: Principal,
    request_id: int,
    body: DecisionCreate,
    if_match: int | None,
    settings: Settings,
) -> ApprovalRequest:
    """Record one decision; the deal's status follows."""
    repo = ApprovalRepository(session)
    found = repo.get_with_deal(request_id)
    if found is None:
        raise NotFound(f"approval request {request_id} does not exist")
    row, deal = found
    deal = DealRepository(session).lock(deal.id)
    session.refresh(row)
    grant = authority(session, actor, row.group)
    if row.status == WAITING:
        raise Conflict(f"request {request_id} is not open yet: an earlier step must approve first")
    if row.status != PENDING:
        raise Conflict(f"request {request_id} was already decided: {row.status}")
    if if_match is not None and if_match != row.lock_version:
        raise PreconditionFailed(
            f"request {request_id} changed since you read it (now version {row.lock_version}); "
            "read it again"
        )
    counter = None
    if body.decision is Decision.counter:
        counter = _counter_values(registry, deal, row, body.counter_terms or {})
    status = {Decision.approve: APPROVED, Decision.reject: REJECTED, Decision.counter: COUNTERED}[
        body.decision
    ]
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
            "decided_values": _values(row),
            "counter_terms": counter,
            "updated_at": now,
            **_cycle(row, now),
        },
    )
    if not claimed:  # only reachable when the row lock was bypassed; never two decisions
        raise Conflict(f"request {request_id} was decided by someone else just now")
    session.refresh(row)
    rows = repo.round(deal.id, deal.approval_round)
    deal_before = deal.status
    if status == REJECTED:
        for other in rows:
            if other.status in OPEN:
                was_pending = other.status == PENDING
                _close(other, WITHDRAWN, actor, now, f"deal rejected by {row.group}")
                if was_pending:
                    _notify(
                        session, "approval.withdrawn", other, deal, settings, other.reason or ""
                    )
        deal.status = "rejected"
    elif status == COUNTERED:
        deal.status = "countered"
    elif deal.status == "in_review":
        _promote(session, registry, deal, rows, settings)
        if not any(r.status in OPEN for r in rows):
            deal.status = "approved"
    if deal.status != deal_before:
        deal.lock_version += 1
    session.flush()
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
    _notify(session, "approval.decided", row, deal, settings, body.reason or "")
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
    found = repo.get_with_deal(request_id)
    if found is None:
        raise NotFound(f"approval request {request_id} does not exist")
    row, deal = found
    deal = DealRepository(session).lock(deal.id)
    session.refresh(row)
    if row.status not in OPEN:
        raise Conflict(f"request {request_id} is {row.status}; only open requests move")
    now = utcnow()
    held = repo.active_member_groups()
    active = repo.active_key_names()
    delegated = {
        g
        for d in repo.delegations_to_any(now)
        if d.delegator in active and d.delegate in active
        for g in d.delegator_groups
    }
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
    if row.status == PENDING:
        groups = {g.name: g for g in repo.groups({group})}
        published = registry.version(row.playbook_version_id)
        _open(row, now, sla_hours(groups, settings, group, published))
        _notify(session, "approval.requested", row, deal, settings, f"Reassigned: {reason}")
    session.flush()
    audit.record(
        session, actor, "approval.reassigned", "approval_request", row.id,
        before=before, after={**summary(row).model_dump(mode="json"), "reason": reason},
    )  # fmt: skip
    return row


# --- delegation ------------------------------------------------------------------------------


def read_delegation(delegation: Delegation, now: datetime) -> DelegationRead:
    return DelegationRead(
        delegator=delegation.delegator,
        delegate=delegation.delegate,
        groups=list(delegation.delegator_groups),
        starts_at=delegation.starts_at,
        ends_at=delegation.ends_at,
        active=delegation.starts_at <= now < delegation.ends_at,
    )


def my_delegations(session: Session, principal: Principal) -> MyDelegations:
    repo = ApprovalRepository(session)
    now = utcnow()
    given = repo.delegation_of(principal.name)
    return MyDelegations(
        given=None if given is None else read_delegation(given, now),
        held=[read_delegation(d, now) for d in repo.delegations_to(principal.name, now)],
    )


def set_delegation(
    session: Session, principal: Principal, data: DelegationWrite
) -> tuple[DelegationRead, bool]:
    repo = ApprovalRepository(session)
    now = utcnow()

    def refuse(loc: str, message: str) -> InvalidInput:
        return InvalidInput(message, errors=[Problem((loc,), message)])

    if not principal.groups:
        raise refuse(
            "delegate",
            "you hold no approver group of your own; delegations you hold cannot be passed on",
        )
    if data.delegate == principal.name:
        raise refuse("delegate", "you cannot delegate to yourself")
    if data.ends_at <= now:
        raise refuse("ends_at", "ends_at is in the past")
    named = repo.active_keys_named(data.delegate)
    if not named:
        raise refuse("delegate", f"no active API key is named {data.delegate!r}")
    deciders = {Role.admin.value, Role.leadership.value, Role.approver.value}
    if any(key.role not in deciders for key in named):
        # Delegation is by name: every key with it would gain the power, so all must be people
        # who decide approvals.
        raise refuse(
            "delegate",
            f"{data.delegate!r} names a key that cannot decide approvals (a rep or integration)",
        )
    theirs = repo.delegation_of(data.delegate)
    if theirs is not None and theirs.starts_at < data.ends_at and data.starts_at < theirs.ends_at:
        raise refuse(
            "delegate",
            f"{data.delegate} is away then (delegated to {theirs.delegate}); choose someone else",
        )
    delegation = repo.delegation_of(principal.name)
    created = delegation is None
    before = (
        None if delegation is None else read_delegation(delegation, now).model_dump(mode="json")
    )
    if delegation is None:
        delegation = Delegation(delegator=principal.name)
    delegation.delegator_groups = sorted(principal.groups)
    delegation.delegate = data.delegate
    delegation.starts_at = data.starts_at
    delegation.ends_at = data.ends_at
    if created:
        repo.add_delegation(delegation)
    session.flush()
    after = read_delegation(delegation, now)
    audit.record(
        session, principal, "delegation.saved", "delegation", principal.name,
        before=before, after=after.model_dump(mode="json"),
    )  # fmt: skip
    return after, created


def clear_delegation(session: Session, principal: Principal) -> None:
    repo = ApprovalRepository(session)
    delegation = repo.delegation_of(principal.name)
    if delegation is None:
        raise NotFound("you have no delegation")
    before = read_delegation(delegation, utcnow()).model_dump(mode="json")
    repo.delete_delegation(delegation)
    audit.record(
        session, principal, "delegation.removed", "delegation", principal.name, before=before
    )


# --- the queue -------------------------------------------------------------------------------


def visible_groups(session: Session, principal: Principal) -> set[str] | None:
    """The groups whose requests `principal` works: own, delegated; None (all) for admins."""
    if principal.role in (Role.admin, Role.leadership) and not principal.groups:
        return None
    return set(principal.groups) | set(delegated_groups(session, principal, utcnow()))


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


# --- escalation and reminders (the worker) ---------------------------------------------------


def _next_group(session: Session, registry: PlaybookRegistry, row: ApprovalRequest) -> str | None:
    """The next tier's approver after this request's group, for any term it covers.

    The ladder is the deal's own: rules that fired at the request's check may have replaced
    tiers' approvers (say, the CFO owns the last discount tier on large deals).
    """
    try:
        compiled = registry.version(row.playbook_version_id).compiled
    except NotFound:
        return None
    check = DealRepository(session).check(row.check_id)
    fired = {t["key"]: set(t.get("rules") or ()) for t in (check.result["terms"] if check else ())}
    for entry in row.terms:
        if entry["key"] not in compiled.by_key:
            continue
        ladder = list(dict.fromkeys(compiled.ladder(entry["key"], fired.get(entry["key"], ()))))
        if row.chain_group in ladder:
            later = ladder[ladder.index(row.chain_group) + 1 :]
            for group in later:
                if group != row.group:
                    return group
    return None


@dataclass
class SweepReport:
    reminded: int = 0
    escalated: int = 0
    overdue_without_target: int = 0


WORKER = Principal(key_id=None, name="worker", role=Role.admin, groups=frozenset())


def sweep(
    session: Session,
    registry: PlaybookRegistry,
    settings: Settings,
    *,
    now: datetime | None = None,
    limit: int = 500,
) -> SweepReport:
    """Remind groups at half their SLA; escalate overdue requests to the next tier's group."""
    now = now or utcnow()
    repo = ApprovalRepository(session)
    report = SweepReport()
    # Candidates are read unlocked; each is then re-read under its deal's lock, the lock every
    # request-side change takes first, so the sweep never races a decision or a re-check and
    # two workers never escalate the same request (the second sees it already done).
    candidates = repo.due(now, limit=limit)
    groups = {g.name: g for g in repo.groups()}
    for row, deal in candidates:
        deal = DealRepository(session).lock(deal.id)
        session.refresh(row)
        if row.status != PENDING or deal.status != "in_review":
            continue
        if row.opened_at is None or row.due_at is None:
            continue
        if row.due_at <= now and (row.escalated_at is None or row.escalated_at < row.due_at):
            config = groups.get(row.group)
            target = (
                _next_group(session, registry, row)
                or (config.escalation_group if config else None)
                or settings.escalation_group
            )
            before = summary(row).model_dump(mode="json")
            row.escalated_at = now
            if target is None or target == row.group:
                report.overdue_without_target += 1
                _notify(
                    session,
                    "approval.escalated",
                    row,
                    deal,
                    settings,
                    "Overdue; no one to escalate to.",
                )
                audit.record(
                    session, WORKER, "approval.overdue", "approval_request", row.id,
                    before=before, after={"due_at": row.due_at.isoformat(), "escalated_to": None},
                )  # fmt: skip
                continue
            from_group = row.group
            row.group = target
            row.escalation_level += 1
            row.lock_version += 1
            _open(
                row,
                now,
                sla_hours(groups, settings, target, registry.version(row.playbook_version_id)),
            )
            row.escalated_at = now
            report.escalated += 1
            _notify(
                session, "approval.escalated", row, deal, settings,
                f"Escalated from {from_group} after its SLA passed.",
            )  # fmt: skip
            audit.record(
                session, WORKER, "approval.escalated", "approval_request", row.id,
                before=before, after={**summary(row).model_dump(mode="json"), "from": from_group},
            )  # fmt: skip
        elif row.reminded_at is None and row.remind_at is not None and row.remind_at <= now:
            row.reminded_at = now
            report.reminded += 1
            _notify(
                session, "approval.reminder", row, deal, settings, f"Due {row.due_at.isoformat()}."
            )
            audit.record(
                session, WORKER, "approval.reminded", "approval_request", row.id,
                after={"group": row.group, "due_at": row.due_at.isoformat()},
            )  # fmt: skip
    session.flush()
    return report
