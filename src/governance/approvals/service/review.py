"""The one workflow for "a deal changed": store it, check it, bring its approvals in line, and
queue what must go out.

The HTTP routes (`PUT`/`PATCH /v1/deals/{id}`, `POST …/checks`) and the Salesforce pull call
these functions, so a change follows the same path whichever way it arrives:

1. upsert the deal (`deals.service`), which audits the change;
2. check it (`deals.service.check_deal`, which stores the check and queues the Salesforce push);
3. for a deal under review or approved, reconcile its open requests (smart re-approval, in
   `lifecycle`/`routing`), which queues notifications and the push for what changed.

`save_deals` is the same path for a page of changes at once (the Salesforce pull): the deals no
review has reached are upserted, checked and queued in a few statements for the whole page;
the others go through `save_deal` one by one, each in its own savepoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from governance.approvals.models import ApprovalRequest
from governance.approvals.service import lifecycle
from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.db import utcnow
from governance.deals import service as deal_service
from governance.deals.models import REVIEWING, Deal, DealCheck, DealStatus
from governance.deals.repository import DealRepository, zero_term_mask
from governance.deals.schemas import DealUpdate, DealUpsert, salesforce_id_18
from governance.errors import Conflict, GovernanceError
from governance.playbooks.registry import PlaybookRegistry
from governance.salesforce import outbox as salesforce_outbox
from governance.salesforce import outbox_repository
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


@dataclass
class Change:
    """One deal's new content in a page of changes; `current` is the deal as the page found it
    (None: new), `columns` are columns the caller keeps on the deal (the Salesforce version)."""

    external_id: str
    data: DealUpsert
    current: Deal | None
    columns: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Saved:
    """What `save_deals` did: the id of each deal it wrote (and whether it was new), the
    changes it refused (and why), and those it left for `save_deal` (a review has reached
    them, or a concurrent change did)."""

    ids: dict[str, int] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)
    refused: dict[str, GovernanceError] = field(default_factory=dict)
    left: list[Change] = field(default_factory=list)


def save_deals(
    session: Session,
    registry: PlaybookRegistry,
    actor: Principal,
    changes: Sequence[Change],
) -> Saved:
    """`save_deal(check=True)` for many deals no review has reached, in a few statements.

    Each deal is validated and evaluated first (a change that cannot be checked is refused,
    as `save_deal` would refuse it); the others are upserted, checked, audited and queued for
    the push together. A deal under review or approved is left to `save_deal`, which reconciles
    its review. The published playbooks are read once for the whole page.
    """
    saved = Saved()
    index = registry.published_sync()
    now = utcnow()
    rows: list[dict[str, Any]] = []
    evaluated: list[tuple[Change, dict[str, Any], Any, Any, dict[str, Any]]] = []
    for change in changes:
        current = change.current
        if current is not None and current.status in REVIEWING:
            saved.left.append(change)
            continue
        columns = deal_service.replacement_columns(change.data)
        try:
            published, result, body = deal_service.evaluation(
                registry,
                index,
                change.data.attributes,
                columns["terms"],
                change.data.playbook,
                current.review_version_id if current is not None else None,
            )
        except GovernanceError as exc:
            saved.refused[change.external_id] = exc
            continue
        evaluated.append((change, columns, published, result, body))
    figures = [deal_service.term_figures(result) for _, _, _, result, _ in evaluated]
    repo = DealRepository(session)
    bits = repo.term_bits(
        sorted({key for rows_ in figures for key, _, ratio in rows_ if not ratio})
    )
    masks = [zero_term_mask(rows_, bits) for rows_ in figures]
    for (change, columns, published, result, _), (mask, _) in zip(evaluated, masks, strict=True):
        rows.append(
            {
                "external_id": salesforce_id_18(change.external_id),
                **columns,
                **deal_service.checked_columns(published, result, now),
                "zero_terms": mask,
                **change.columns,
                "created_at": now,
                "updated_at": now,
            }
        )
    ids = repo.upsert_unreviewed(rows)
    written = []
    for item, row, (_, kept) in zip(evaluated, rows, masks, strict=True):
        if row["external_id"] in ids:
            written.append((item, row, kept))
        else:
            saved.left.append(item[0])  # a review reached it meanwhile
    check_ids = repo.add_checks(
        [
            {
                "deal_id": ids[row["external_id"]],
                **deal_service.check_columns(
                    actor, change.data.attributes, columns["terms"], published, result, body
                ),
            }
            for (change, columns, published, result, body), row, _ in written
        ]
    )
    term_rows = [
        {
            "deal_id": ids[row["external_id"]],
            "term_key": key,
            "status": status,
            "variance_ratio_micro": ratio,
            "region": row["region"],
            "segment": row["segment"],
            "team": row["team"],
            "owner_rep": row["owner_rep"],
            "playbook_key": published.key,
            "playbook_version": published.number,
            "checked_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for (_, _, published, _, _), row, kept in written
        for key, status, ratio in kept
    ]
    repo.replace_term_checks_of([ids[row["external_id"]] for _, row, _ in written], term_rows)
    dirty = []
    for ((change, _, published, result, body), row, _), check_id in zip(
        written, check_ids, strict=True
    ):
        external_id = row["external_id"]
        deal_id = saved.ids[external_id] = ids[external_id]
        current = change.current
        if current is None:
            saved.created.add(external_id)
        shown = (
            (None, None) if current is None else (current.last_verdict, current.last_variance_score)
        )
        if shown != (result.verdict.value, result.variance_score):
            dirty.append(deal_id)  # Salesforce shows verdict and variance
        audit.record(
            session,
            actor,
            "deal.created" if current is None else "deal.updated",
            "deal",
            external_id,
            before=None if current is None else deal_service.snapshot(current),
            after=deal_service.replaced_snapshot(current, external_id, row),
        )
        audit.record(
            session,
            actor,
            "deal.checked",
            "deal",
            external_id,
            after={
                "check_id": check_id,
                "verdict": body["verdict"],
                "variance_score": body["variance_score"],
                "playbook": f"{published.key}/{published.number}",
            },
        )
    outbox_repository.mark_dirty(session.connection(), dirty, now)
    return saved
