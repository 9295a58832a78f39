"""HTTP route for reading the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from governance.audit import service as audit_service
from governance.audit.schemas import AuditEntryRead, AuditPage
from governance.auth.dependencies import AuditReader
from governance.db import DbSession
from governance.errors import problem_responses
from governance.http import StrictRoute
from governance.pagination import decode_cursor, encode_cursor
from governance.types import IsoDateTime

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=StrictRoute)


@router.get(
    "",
    response_model=AuditPage,
    summary="Read the append-only audit log, newest first",
    responses=problem_responses(401, 403, 422),
)
def read_audit_log(
    principal: AuditReader,
    session: DbSession,
    entity_type: Annotated[str | None, Query(max_length=50)] = None,
    entity_id: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    entries = audit_service.page(
        session,
        before_id=decode_cursor(cursor),
        limit=limit,
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        actor=actor,
        since=since,
        until=until,
    )
    items = [AuditEntryRead.model_validate(e) for e in entries]
    next_cursor = encode_cursor(entries[-1].id) if len(entries) == limit else None
    return AuditPage(items=items, next_cursor=next_cursor)
