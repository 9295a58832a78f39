"""SQL for approval requests, approver groups and delegations."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, aliased, contains_eager, joinedload, load_only

from governance.approvals.models import (
    ApprovalGroup,
    ApprovalRequest,
    Delegation,
    RequestStatus,
)
from governance.auth.models import ApiKey
from governance.deals.models import Deal, DealCheck, DealStatus

# What an approver sees of earlier decisions (not the covered terms' whole snapshots).
HISTORY_COLUMNS = (
    ApprovalRequest.deal_id,
    ApprovalRequest.group,
    ApprovalRequest.step,
    ApprovalRequest.status,
    ApprovalRequest.decided_by,
    ApprovalRequest.on_behalf_of,
    ApprovalRequest.admin_override,
    ApprovalRequest.decided_at,
    ApprovalRequest.reason,
    ApprovalRequest.decided_values,
    ApprovalRequest.counter_terms,
)


class ApprovalRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # --- requests ------------------------------------------------------------------------------

    def add(self, request: ApprovalRequest) -> ApprovalRequest:
        self.session.add(request)
        self.session.flush()
        return request

    def get(self, request_id: int) -> ApprovalRequest | None:
        return self.session.get(ApprovalRequest, request_id)

    def get_with_deal(self, request_id: int) -> tuple[ApprovalRequest, Deal] | None:
        row = self.session.execute(
            select(ApprovalRequest, Deal)
            .join(Deal, Deal.id == ApprovalRequest.deal_id)
            .where(ApprovalRequest.id == request_id)
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    def round(self, deal_id: int, round_: int) -> Sequence[ApprovalRequest]:
        return self.session.scalars(
            select(ApprovalRequest)
            .where(ApprovalRequest.deal_id == deal_id, ApprovalRequest.round == round_)
            .order_by(ApprovalRequest.id)
        ).all()

    def for_deal(self, deal_id: int) -> Sequence[ApprovalRequest]:
        return self.session.scalars(
            select(ApprovalRequest)
            .where(ApprovalRequest.deal_id == deal_id)
            .order_by(ApprovalRequest.id)
        ).all()

    def claim_decision(
        self, request_id: int, expected_version: int, values: dict[str, Any]
    ) -> bool:
        """Compare-and-set: decide the request only if it is still pending (at that version).

        One UPDATE with the condition in its WHERE clause, so of two concurrent deciders exactly
        one changes the row: PostgreSQL re-checks the condition after the first commits.
        """
        query = (
            update(ApprovalRequest)
            .where(
                ApprovalRequest.id == request_id,
                ApprovalRequest.status == RequestStatus.pending,
                ApprovalRequest.lock_version == expected_version,
            )
            .values(lock_version=ApprovalRequest.lock_version + 1, **values)
            .execution_options(synchronize_session=False)
        )
        return self.session.execute(query).rowcount == 1  # type: ignore[attr-defined,no-any-return]

    def queue(
        self,
        *,
        groups: Collection[str] | None,
        statuses: Collection[str],
        deal_id: int | None,
        opened_before: datetime | None,
        after_id: int | None,
        limit: int,
    ) -> Sequence[tuple[ApprovalRequest, Deal]]:
        """Requests with their deals, oldest first; `groups=None` means every group."""
        query = (
            select(ApprovalRequest, Deal)
            .join(Deal, Deal.id == ApprovalRequest.deal_id)
            # Statuses as literals: PostgreSQL's generic plan for a prepared statement cannot
            # use the partial index on open requests when they are parameters.
            .where(
                ApprovalRequest.status.in_(
                    bindparam("statuses", list(statuses), expanding=True, literal_execute=True)
                )
            )
            .order_by(ApprovalRequest.id)
            .limit(limit)
        )
        if groups is not None:
            query = query.where(ApprovalRequest.group.in_(groups))
        if deal_id is not None:
            query = query.where(ApprovalRequest.deal_id == deal_id)
        if opened_before is not None:
            query = query.where(ApprovalRequest.opened_at <= opened_before)
        if after_id is not None:
            query = query.where(ApprovalRequest.id > after_id)
        return [(r, d) for r, d in self.session.execute(query).tuples()]

    def decided_for_deals(self, deal_ids: Collection[int]) -> Sequence[ApprovalRequest]:
        """Every closed request of these deals, for the history an approver sees."""
        if not deal_ids:
            return []
        return self.session.scalars(
            select(ApprovalRequest)
            .options(load_only(*HISTORY_COLUMNS, raiseload=True))
            .where(
                ApprovalRequest.deal_id.in_(deal_ids),
                ApprovalRequest.decided_at.is_not(None),
            )
            .order_by(ApprovalRequest.decided_at, ApprovalRequest.id)
        ).all()

    def check_results(self, check_ids: Collection[int]) -> dict[int, dict[str, Any]]:
        """The part of each check's result an approver's queue shows: `{"trades": [...]}`.

        Only the trades are read (`result -> 'trades'` in the database): a whole result is
        ~4 KB of JSON, its trades ~0.2 KB, and decoding 50 whole results was a fifth of a
        queue page's time.
        """
        if not check_ids:
            return {}
        rows = self.session.execute(
            select(DealCheck.id, DealCheck.result["trades"]).where(DealCheck.id.in_(check_ids))
        ).tuples()
        return {check_id: {"trades": trades or []} for check_id, trades in rows}

    def due(self, now: datetime, *, limit: int) -> Sequence[tuple[ApprovalRequest, Deal]]:
        """Pending requests whose reminder or escalation may be due (the sweep locks each)."""
        query = (
            select(ApprovalRequest, Deal)
            .join(Deal, Deal.id == ApprovalRequest.deal_id)
            .where(
                ApprovalRequest.status == RequestStatus.pending, ApprovalRequest.due_at.is_not(None)
            )
            .where(
                Deal.status == DealStatus.in_review
            )  # a countered deal is with the rep: no nagging
            .where(
                (
                    (ApprovalRequest.due_at <= now)
                    & (
                        ApprovalRequest.escalated_at.is_(None)
                        | (ApprovalRequest.escalated_at < ApprovalRequest.due_at)
                    )
                )
                | (ApprovalRequest.reminded_at.is_(None) & (ApprovalRequest.remind_at <= now))
            )
            .order_by(ApprovalRequest.due_at, ApprovalRequest.id)
            .limit(limit)
        )
        return [(r, d) for r, d in self.session.execute(query).tuples()]

    # --- groups --------------------------------------------------------------------------------

    def group(self, name: str) -> ApprovalGroup | None:
        return self.session.scalar(select(ApprovalGroup).where(ApprovalGroup.name == name))

    def groups(self, names: Collection[str] | None = None) -> Sequence[ApprovalGroup]:
        query = select(ApprovalGroup).order_by(ApprovalGroup.name)
        if names is not None:
            query = query.where(ApprovalGroup.name.in_(names))
        return self.session.scalars(query).all()

    def add_group(self, group: ApprovalGroup) -> ApprovalGroup:
        self.session.add(group)
        self.session.flush()
        return group

    def active_member_groups(self) -> set[str]:
        """Every group at least one unrevoked key belongs to."""
        rows = self.session.scalars(select(ApiKey.groups).where(ApiKey.revoked_at.is_(None)))
        return {group for groups in rows for group in groups or ()}

    def active_keys_named(self, name: str) -> Sequence[ApiKey]:
        return self.session.scalars(
            select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
        ).all()

    def active_key(self, key_id: int) -> ApiKey | None:
        return self.session.scalar(
            select(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        )

    # --- delegations ---------------------------------------------------------------------------

    def delegation_of(self, delegator_key_id: int) -> Delegation | None:
        """The delegation this key gave, with both keys loaded."""
        return self.session.scalar(
            select(Delegation)
            .where(Delegation.delegator_key_id == delegator_key_id)
            .options(joinedload(Delegation.delegator), joinedload(Delegation.delegate))
        )

    def delegations_to(self, delegate_key_id: int, at: datetime) -> Sequence[Delegation]:
        """Delegations this key holds at `at` from delegators whose keys are not revoked."""
        return self.session.scalars(
            select(Delegation)
            .join(ApiKey, ApiKey.id == Delegation.delegator_key_id)
            .where(
                Delegation.delegate_key_id == delegate_key_id,
                Delegation.starts_at <= at,
                Delegation.ends_at > at,
                ApiKey.revoked_at.is_(None),
            )
            .options(contains_eager(Delegation.delegator), joinedload(Delegation.delegate))
            .order_by(ApiKey.name, ApiKey.id)
        ).all()

    def delegations_between_active_keys(self, at: datetime) -> Sequence[Delegation]:
        """Every delegation active at `at` whose delegator and delegate keys are not revoked."""
        delegator, delegate = aliased(ApiKey), aliased(ApiKey)
        return self.session.scalars(
            select(Delegation)
            .join(delegator, delegator.id == Delegation.delegator_key_id)
            .join(delegate, delegate.id == Delegation.delegate_key_id)
            .where(
                Delegation.starts_at <= at,
                Delegation.ends_at > at,
                delegator.revoked_at.is_(None),
                delegate.revoked_at.is_(None),
            )
        ).all()

    def add_delegation(self, delegation: Delegation) -> Delegation:
        self.session.add(delegation)
        self.session.flush()
        return delegation

    def delete_delegation(self, delegation: Delegation) -> None:
        self.session.delete(delegation)
        self.session.flush()
