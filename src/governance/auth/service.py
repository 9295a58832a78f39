"""API keys: creation, verification and the first-start admin key."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Collection, Sequence

from sqlalchemy.orm import Session

from governance.audit import service as audit
from governance.auth.models import ApiKey
from governance.auth.principal import Principal
from governance.auth.repository import ApiKeyRepository
from governance.auth.schemas import ApiKeyCreate, Role
from governance.db import utcnow
from governance.errors import Conflict, InvalidInput, NotFound
from governance.pagination import MAX_ID
from governance.problems import Problem

KEY_PREFIX = "gov_"

GroupDirectory = Callable[[Session], Collection[str]]
"""The approver groups that exist. Groups are defined above auth (by playbooks, the term catalog
and approval group settings), so whoever creates a key passes the approvals domain's
`known_groups`; keys without groups never consult it."""


def no_groups(_session: Session) -> Collection[str]:
    """A directory for keys that belong to no group (admin keys made at start-up)."""
    return ()


def hash_key(secret: str) -> str:
    """Keys are 256-bit random, so a fast hash is as safe as a slow one and keeps auth cheap."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def principal_of(key: ApiKey) -> Principal:
    return Principal(key.id, key.name, Role(key.role), frozenset(key.groups))


def verify(session: Session, secret: str) -> Principal | None:
    """The principal for a presented key, or None when it is unknown or revoked."""
    key = ApiKeyRepository(session).by_hash(hash_key(secret))
    if key is None or key.revoked_at is not None:
        return None
    return principal_of(key)


def create_key(
    session: Session,
    actor: Principal,
    data: ApiKeyCreate,
    *,
    groups: GroupDirectory,
    secret: str | None = None,
) -> tuple[ApiKey, str]:
    """Store a new key's hash; the secret is returned to be shown once."""
    if data.groups and data.role is not Role.approver:
        raise InvalidInput(
            "groups only apply to approver keys",
            errors=[Problem(("groups",), "only approver keys belong to stakeholder groups")],
        )
    if data.groups:
        # A misspelt group would leave the key with an empty queue forever.
        known = set(groups(session))
        unknown = [
            Problem(
                ("groups", i),
                f"no group {group!r} exists: name a group of a playbook or the term catalog, "
                f"or create it with PUT /v1/approval-groups/{group}",
            )
            for i, group in enumerate(data.groups)
            if group not in known
        ]
        if unknown:
            raise InvalidInput("unknown approver groups", errors=unknown)
    repo = ApiKeyRepository(session)
    taken = repo.active_named(data.name)
    if taken is not None:
        # Delegations may name their delegate by key name: a second active key with the same
        # name would be mistaken for the first.
        raise Conflict(
            f"an active API key is already named {data.name!r} (key {taken.id}); "
            "choose another name",
            errors=[Problem(("name",), f"{data.name!r} is the name of active key {taken.id}")],
        )
    generated = secret is None
    secret = secret or new_secret()
    key = repo.add(
        ApiKey(
            name=data.name,
            role=data.role.value,
            groups=sorted(set(data.groups)),
            key_hash=hash_key(secret),
            # Generated keys are recognisable by their first characters; a key an operator chose
            # (the bootstrap key) is all secret, so none of it is shown.
            prefix=secret[:10] if generated else "(chosen)",
            created_by=actor.actor,
        )
    )
    audit.record(
        session,
        actor,
        "api_key.created",
        "api_key",
        key.id,
        after={"name": key.name, "role": key.role, "groups": key.groups},
    )
    return key, secret


def revoke_key(session: Session, actor: Principal, key_id: int) -> ApiKey:
    """Revoke a key; the last active admin key stays, so the API never locks out its admins."""
    repo = ApiKeyRepository(session)
    key = repo.get(key_id)
    if key is None:
        raise NotFound(f"API key {key_id} does not exist")
    if key.revoked_at is None:
        if key.role == Role.admin and list(repo.lock_active_admins()) == [key.id]:
            raise Conflict(
                f"API key {key_id} is the last active admin key; create another admin key "
                "before revoking this one"
            )
        key.revoked_at = utcnow()
        session.flush()
        audit.record(session, actor, "api_key.revoked", "api_key", key.id, after={"name": key.name})
    return key


def list_keys(session: Session) -> Sequence[ApiKey]:
    """Every key, revoked ones too (never their secrets: only hashes are kept)."""
    return ApiKeyRepository(session).list()


def revoke_key_by(session: Session, actor: Principal, id_or_name: str) -> ApiKey:
    """Revoke a key named by its id, or by the name of an active key."""
    if id_or_name.isascii() and id_or_name.isdigit():
        if len(id_or_name) > 10 or int(id_or_name) > MAX_ID:  # no key has it: ids are int4
            raise NotFound(f"API key {id_or_name} does not exist")
        return revoke_key(session, actor, int(id_or_name))
    key = ApiKeyRepository(session).active_named(id_or_name)
    if key is None:
        raise NotFound(f"no active API key is named {id_or_name!r}")
    return revoke_key(session, actor, key.id)


def free_name(session: Session, base: str) -> str:
    """`base`, or `base-2`, `base-3`…: the first name no active key has."""
    repo = ApiKeyRepository(session)
    name, n = base, 1
    while repo.active_named(name) is not None:
        n += 1
        name = f"{base}-{n}"
    return name


MIN_BOOTSTRAP_LENGTH = 16


def ensure_admin_key(session: Session, actor: Principal, bootstrap: str | None) -> str | None:
    """Make sure an admin can get in; returns a newly generated secret to print once.

    With no keys at all, a random admin key is created. A configured bootstrap key is always
    made valid (so scripts that start the service can call it) and is never printed.
    """
    repo = ApiKeyRepository(session)
    if bootstrap is not None:
        if len(bootstrap) < MIN_BOOTSTRAP_LENGTH:
            raise InvalidInput(
                f"GOVERNANCE_BOOTSTRAP_ADMIN_KEY must be at least {MIN_BOOTSTRAP_LENGTH} characters"
            )
        if repo.by_hash(hash_key(bootstrap)) is None:
            # A changed bootstrap key adds a key beside the previous one, under a free name.
            create_key(
                session,
                actor,
                ApiKeyCreate(name=free_name(session, "bootstrap-admin"), role=Role.admin),
                groups=no_groups,
                secret=bootstrap,
            )
        return None
    if repo.count() > 0:
        return None
    _key, secret = create_key(
        session, actor, ApiKeyCreate(name="first-admin", role=Role.admin), groups=no_groups
    )
    return secret
