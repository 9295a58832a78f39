"""Write audit entries in the caller's transaction, so a change and its record commit together."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from governance.audit.models import AuditEntry
from governance.audit.repository import AuditRepository
from governance.auth.principal import Principal
from governance.db import utcnow


def record(
    session: Session,
    actor: Principal,
    action: str,
    entity_type: str,
    entity_id: object,
    *,
    before: Any = None,
    after: Any = None,
    on_behalf_of: str | None = None,
) -> None:
    """Append one entry; `before` and `after` must already be JSON-ready."""
    now = utcnow()
    AuditRepository(session).add(
        AuditEntry(
            occurred_at=now,
            actor=actor.actor,
            actor_role=actor.role.value,
            on_behalf_of=on_behalf_of,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            before=before,
            after=after,
            created_at=now,
            updated_at=now,
        )
    )


def page(
    session: Session,
    *,
    before_id: int | None,
    limit: int,
    entity_type: str | None,
    entity_id: str | None,
    action: str | None,
    actor: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Sequence[AuditEntry]:
    return AuditRepository(session).page(
        before_id=before_id,
        limit=limit,
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        actor=actor,
        since=since,
        until=until,
    )
