"""Who may act for a group: members, their active delegates, admins; and delegations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from governance.approvals.models import Delegation
from governance.approvals.repository import ApprovalRepository
from governance.approvals.schemas import DelegationRead, DelegationWrite, MyDelegations
from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.auth.schemas import Role
from governance.db import utcnow
from governance.errors import Forbidden, InvalidInput, NotFound
from governance.problems import Problem


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


def visible_groups(session: Session, principal: Principal) -> set[str] | None:
    """The groups whose requests `principal` works: own, delegated; None (all) for admins."""
    if principal.role in (Role.admin, Role.leadership) and not principal.groups:
        return None
    return set(principal.groups) | set(delegated_groups(session, principal, utcnow()))
