"""Request authentication: bearer API keys, verified once and cached briefly per replica."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from governance.auth import service as auth_service
from governance.auth.principal import Principal
from governance.auth.schemas import Role
from governance.db import Database
from governance.errors import Forbidden, GovernanceError, Unauthorized
from governance.problems import Problem
from governance.types import valid_salesforce_id


class KeyCache:
    """Verified keys by hash. Bounded staleness: a revoked key lives at most `ttl` elsewhere."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Principal, float]] = {}

    def get(self, key_hash: str) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            self._entries.pop(key_hash, None)
            return None
        return entry[0]

    def put(self, key_hash: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key_hash] = (principal, time.monotonic() + self.ttl)

    def clear(self) -> None:
        self._entries.clear()


def _lookup(db: Database, secret: str) -> Principal | None:
    with db.session() as session:
        return auth_service.verify(session, secret)


SECURITY_SCHEME = "bearerAuth"
ACTING_USER_HEADER = "X-Acting-User"
"""The Salesforce user an `integration` key acts for (the Salesforce package sends it)."""
PRINCIPAL_SCOPE_KEY = "governance.principal"
"""Where the request gate (`governance.gate`) leaves the principal it verified."""


async def principal_for(authorization: str, cache: KeyCache, db: Database) -> Principal:
    """The principal an `Authorization` header value names, or 401.

    A key seen within the cache's lifetime costs a hash and a dict lookup; only an unknown key
    reaches the database (in a worker thread).
    """
    scheme, _, secret = authorization.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise Unauthorized(
            "send `Authorization: Bearer <api key>`", headers={"WWW-Authenticate": "Bearer"}
        )
    key_hash = auth_service.hash_key(secret)
    principal = cache.get(key_hash)
    if principal is None:
        principal = await run_in_threadpool(_lookup, db, secret)
        if principal is None:
            raise Unauthorized("unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        cache.put(key_hash, principal)
    return principal


async def authenticate(request: Request) -> Principal:
    """The caller's principal, or 401.

    The request gate verifies the key before any body is read and leaves the principal in the
    scope; this only verifies it itself when the app runs without the gate. It reads the header
    rather than using `HTTPBearer`: one flat dependency costs a fifth of the nested chain, and
    this runs on every request. The OpenAPI document declares the bearer scheme (see
    `governance.app`).
    """
    principal: Principal | None = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if principal is None:
        principal = await principal_for(
            request.headers.get("authorization", ""),
            request.app.state.key_cache,
            request.app.state.db,
        )
        request.scope[PRINCIPAL_SCOPE_KEY] = principal
    acting = request.headers.get(ACTING_USER_HEADER)
    if acting is not None and principal.acting_user is None:
        principal = acting_for(principal, acting)
        request.scope[PRINCIPAL_SCOPE_KEY] = principal
    return principal


def acting_for(principal: Principal, header: str) -> Principal:
    """The principal acting for the Salesforce user an `X-Acting-User` header names.

    Only an `integration` key may name one (403 otherwise): it is the key the Salesforce package
    holds, and it vouches for the user Salesforce authenticated. Any other key naming someone
    else would be a way to forge the audit log. The value must be a Salesforce Id (400 naming the
    header otherwise); it is kept in its 18-character form.
    """
    if principal.role is not Role.integration:
        raise Forbidden(
            f"only an integration key may send {ACTING_USER_HEADER}; "
            f"this key's role is {principal.role.value!r}"
        )
    user = valid_salesforce_id(header.strip())
    if user is None:
        raise GovernanceError(
            f"{ACTING_USER_HEADER} must be a Salesforce user Id (15 or 18 letters and digits)",
            errors=[
                Problem(
                    ("header", ACTING_USER_HEADER),
                    "not a Salesforce Id: 15 or 18 ASCII letters and digits, "
                    "an 18-character Id ending in its case-safe suffix",
                )
            ],
        )
    return dataclasses.replace(principal, acting_user=user)


def require(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency admitting only these roles (403 for the others)."""
    allowed = frozenset(roles)
    names = ", ".join(sorted(r.value for r in allowed))

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        if principal.role not in allowed:
            raise Forbidden(f"role {principal.role.value!r} may not do this; allowed: {names}")
        return principal

    return dependency


def _group_directory(request: Request) -> auth_service.GroupDirectory:
    directory: auth_service.GroupDirectory = request.app.state.group_directory
    return directory


GroupDirectory = Annotated[auth_service.GroupDirectory, Depends(_group_directory)]
"""The app's directory of existing approver groups (see `auth.service.GroupDirectory`)."""

ALL_ROLES = tuple(Role)
Anyone = Annotated[Principal, Depends(require(*ALL_ROLES))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
PlaybookEditor = Annotated[Principal, Depends(require(Role.admin, Role.leadership))]
Signer = Annotated[Principal, Depends(require(Role.admin, Role.approver))]
DealWriter = Annotated[Principal, Depends(require(Role.admin, Role.rep, Role.integration))]
AuditReader = Annotated[Principal, Depends(require(Role.admin, Role.leadership))]
# Analytics compare reps and teams: leadership and the deal desk read them, reps do not.
AnalyticsReader = Annotated[Principal, Depends(require(Role.admin, Role.leadership, Role.approver))]
# ... except that the Salesforce package's integration key may read the concessions of the one
# rep it acts for (`X-Acting-User`), for that rep's own coaching: the analytics service checks
# that the report asks for nobody else (`analytics.service.own_figures_only`).
ConcessionReader = Annotated[
    Principal,
    Depends(require(Role.admin, Role.leadership, Role.approver, Role.integration)),
]
