"""The worker's SLA sweep: remind at half the SLA, escalate overdue requests up the deal's
own ladder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from governance.approvals.models import ApprovalRequest, RequestStatus
from governance.approvals.repository import ApprovalRepository
from governance.approvals.service.groups import sla_hours
from governance.approvals.service.messages import notify
from governance.approvals.service.reading import summary
from governance.approvals.service.transitions import open_request
from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.auth.schemas import Role
from governance.db import utcnow
from governance.deals.models import DealStatus
from governance.deals.repository import DealRepository
from governance.engine.escalation import next_group
from governance.errors import NotFound
from governance.playbooks.registry import PlaybookRegistry
from governance.salesforce import outbox as salesforce_outbox
from governance.settings import Settings


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
    return next_group(compiled, [e["key"] for e in row.terms], fired, row.chain_group, row.group)


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
        if row.status != RequestStatus.pending or deal.status != DealStatus.in_review:
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
                notify(
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
            open_request(
                row,
                now,
                sla_hours(groups, settings, target, registry.version(row.playbook_version_id)),
            )
            row.escalated_at = now
            report.escalated += 1
            salesforce_outbox.enqueue(session, deal.id)  # Salesforce shows who holds it now
            notify(
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
            notify(
                session, "approval.reminder", row, deal, settings, f"Due {row.due_at.isoformat()}."
            )
            audit.record(
                session, WORKER, "approval.reminded", "approval_request", row.id,
                after={"group": row.group, "due_at": row.due_at.isoformat()},
            )  # fmt: skip
    session.flush()
    return report
