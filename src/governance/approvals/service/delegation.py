"""Who may act for a group: members, their active delegates, admins; and delegations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from governance.approvals.models import Delegation
from governance.approvals.repository import ApprovalRepository
from governance.approvals.schemas import DelegationRead, DelegationWrite, MyDelegations
from governance.audit import service as audit
from governance.auth.models import ApiKey
from governance.auth.principal import Principal
from governance.auth.schemas import Role
from governance.auth.service import principal_of
from governance.db import utcnow
from governance.errors import Forbidden, InvalidInput, NotFound
from governance.problems import Problem


def key_actor(key: ApiKey) -> str:
    """How decisions and the audit log name a key: by id and name, like `Principal.actor`."""
    return principal_of(key).actor


def delegated_groups(session: Session, principal: Principal, at: datetime) -> dict[str, str]:
    """Groups `principal` may act for through delegations active now: group -> delegator.

    Delegations are matched by key id, never by name: a key that merely shares a name with the
    delegate gains nothing. Only delegations given to the principal count, a revoked
    delegator's delegation carries nothing, and a delegation carries only the groups the
    delegator holds in their own right, so a delegate cannot pass delegation on.
    """
    out: dict[str, str] = {}
    if principal.key_id is None:
        return out
    for delegation in ApprovalRepository(session).delegations_to(principal.key_id, at):
        for group in delegation.delegator_groups:
            out.setdefault(group, key_actor(delegation.delegator))
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
        delegator=delegation.delegator.name,
        delegator_key_id=delegation.delegator_key_id,
        delegate=delegation.delegate.name,
        delegate_key_id=delegation.delegate_key_id,
        groups=list(delegation.delegator_groups),
        starts_at=delegation.starts_at,
        ends_at=delegation.ends_at,
        active=delegation.starts_at <= now < delegation.ends_at,
    )


def _own_key_id(principal: Principal) -> int:
    if principal.key_id is None:
        raise Forbidden("only an API key can delegate or hold a delegation")
    return principal.key_id


def my_delegations(session: Session, principal: Principal) -> MyDelegations:
    repo = ApprovalRepository(session)
    now = utcnow()
    key_id = _own_key_id(principal)
    given = repo.delegation_of(key_id)
    return MyDelegations(
        given=None if given is None else read_delegation(given, now),
        held=[read_delegation(d, now) for d in repo.delegations_to(key_id, now)],
    )


def _refuse(loc: str, message: str) -> InvalidInput:
    return InvalidInput(message, errors=[Problem((loc,), message)])


def _delegate_key(repo: ApprovalRepository, data: DelegationWrite) -> tuple[ApiKey, str]:
    """The active key the request names, and the field that named it."""
    if data.delegate_key_id is not None:
        key = repo.active_key(data.delegate_key_id)
        if key is None:
            raise _refuse("delegate_key_id", f"no active API key has the id {data.delegate_key_id}")
        return key, "delegate_key_id"
    assert data.delegate is not None  # the schema asks for one of the two
    named = repo.active_keys_named(data.delegate)
    if not named:
        raise _refuse("delegate", f"no active API key is named {data.delegate!r}")
    if len(named) > 1:  # active names are unique; a key from before that rule may remain
        raise _refuse(
            "delegate",
            f"{len(named)} active keys are named {data.delegate!r}; give `delegate_key_id`",
        )
    return named[0], "delegate"


def set_delegation(
    session: Session, principal: Principal, data: DelegationWrite
) -> tuple[DelegationRead, bool]:
    repo = ApprovalRepository(session)
    now = utcnow()
    key_id = _own_key_id(principal)
    if not principal.groups:
        raise _refuse(
            "delegate",
            "you hold no approver group of your own; delegations you hold cannot be passed on",
        )
    if data.ends_at <= now:
        raise _refuse("ends_at", "ends_at is in the past")
    delegate, field = _delegate_key(repo, data)
    if delegate.id == key_id:
        raise _refuse(field, "you cannot delegate to yourself")
    deciders = {Role.admin.value, Role.leadership.value, Role.approver.value}
    if delegate.role not in deciders:
        raise _refuse(field, f"{delegate.name!r} cannot decide approvals (a {delegate.role} key)")
    theirs = repo.delegation_of(delegate.id)
    if theirs is not None and theirs.starts_at < data.ends_at and data.starts_at < theirs.ends_at:
        raise _refuse(
            field,
            f"{delegate.name} is away then (delegated to {theirs.delegate.name}); "
            "choose someone else",
        )
    delegation = repo.delegation_of(key_id)
    created = delegation is None
    before = (
        None if delegation is None else read_delegation(delegation, now).model_dump(mode="json")
    )
    if delegation is None:
        me = repo.active_key(key_id)
        if me is None:
            raise Forbidden("your API key was revoked")
        delegation = Delegation(delegator=me)
    delegation.delegator_groups = sorted(principal.groups)
    delegation.delegate = delegate
    delegation.starts_at = data.starts_at
    delegation.ends_at = data.ends_at
    if created:
        repo.add_delegation(delegation)
    session.flush()
    after = read_delegation(delegation, now)
    audit.record(
        session, principal, "delegation.saved", "delegation", key_id,
        before=before, after=after.model_dump(mode="json"),
    )  # fmt: skip
    return after, created


def clear_delegation(session: Session, principal: Principal) -> None:
    repo = ApprovalRepository(session)
    key_id = _own_key_id(principal)
    delegation = repo.delegation_of(key_id)
    if delegation is None:
        raise NotFound("you have no delegation")
    before = read_delegation(delegation, utcnow()).model_dump(mode="json")
    repo.delete_delegation(delegation)
    audit.record(session, principal, "delegation.removed", "delegation", key_id, before=before)


def visible_groups(session: Session, principal: Principal) -> set[str] | None:
    """The groups whose requests `principal` works: own, delegated; None (all) for admins."""
    if principal.role in (Role.admin, Role.leadership) and not principal.groups:
        return None
    return set(principal.groups) | set(delegated_groups(session, principal, utcnow()))
