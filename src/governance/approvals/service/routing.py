"""Routing a check to approvers: which (group, step) requests a deal needs, with smart
re-approval (an approval stays valid while its term's value is no worse)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from governance.approvals.models import OPEN, ApprovalRequest, RequestStatus
from governance.approvals.repository import ApprovalRepository
from governance.approvals.schemas import KeptApproval
from governance.approvals.service.groups import sla_hours
from governance.approvals.service.messages import notify
from governance.approvals.service.reading import summary
from governance.approvals.service.transitions import (
    close_request,
    covered_values,
    json_value,
    open_request,
)
from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.db import utcnow
from governance.deals.models import Deal, DealCheck, DealStatus
from governance.engine.results import CheckResult, Status
from governance.playbooks.registry import Published
from governance.settings import Settings


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
        if row.status == RequestStatus.approved:
            values = row.decided_values or covered_values(row)
        elif row.status == RequestStatus.countered and row.counter_accepted_at is not None:
            values = {**(row.decided_values or covered_values(row)), **(row.counter_terms or {})}
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
                        value=json_value(term.value),
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
                        "value": json_value(term.value),
                    }
                )

    # Set before any notification is built, so messages show the deal as it will be.
    deal.status = DealStatus.in_review if needs else DealStatus.approved
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
                    status=RequestStatus.waiting,
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
                open_request(row, now, sla_hours(groups, settings, group, published))
            session.flush()
            out.opened.append(row.id)
            audit.record(
                session, actor, "approval.opened", "approval_request", row.id,
                after={**summary(row).model_dump(mode="json"), "deal": deal.external_id},
            )  # fmt: skip
            if ready:
                notify(session, "approval.requested", row, deal, settings)
            continue
        row = existing
        row.check_id = check.id
        # Any change to what the approver is asked bumps the version, so a decision made on
        # what they read before gets 412.
        if not _same(row.terms, entries):
            before = {**summary(row).model_dump(mode="json"), "values": covered_values(row)}
            row.terms = entries
            row.lock_version += 1
            out.updated.append(row.id)
            audit.record(
                session, actor, "approval.updated", "approval_request", row.id,
                before=before, after={"values": covered_values(row)},
            )  # fmt: skip
        if ready and row.status == RequestStatus.waiting:
            open_request(row, now, sla_hours(groups, settings, row.group, published))
            row.lock_version += 1
            out.opened.append(row.id)
            notify(session, "approval.requested", row, deal, settings)
        elif not ready and row.status == RequestStatus.pending:
            row.status, row.opened_at, row.due_at, row.remind_at = (
                RequestStatus.waiting,
                None,
                None,
                None,
            )
            row.first_opened_at = None  # waiting again: its wait starts when it reopens
            row.lock_version += 1

    for row in open_rows.values():
        was_pending = row.status == RequestStatus.pending
        close_request(
            row, RequestStatus.withdrawn, actor, now, f"no longer needed after check {check.id}"
        )
        if was_pending:
            notify(session, "approval.withdrawn", row, deal, settings, "No longer needed.")
        out.withdrawn.append(row.id)
        audit.record(
            session, actor, "approval.withdrawn", "approval_request", row.id,
            after={"reason": row.reason, "deal": deal.external_id},
        )  # fmt: skip

    session.flush()
    return out
