"""The audit log as a page: newest first, filtered by actor, action, object and date, paged.

The same reader as `GET /v1/audit` (its service, its roles, its cursors).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response

from governance.audit import service as audit_service
from governance.audit.schemas import AuditEntryRead
from governance.auth.schemas import Role
from governance.db import DbSession
from governance.errors import InvalidInput
from governance.pagination import decode_cursor, encode_cursor
from governance.web.dependencies import PageRoute, require
from governance.web.rendering import render_page
from governance.web.sessions import Viewer

router = APIRouter(route_class=PageRoute)

# Who reads the log: the API's `AuditReader` roles.
AUDIT_ROLES = (Role.admin, Role.leadership)
AuditViewer = Annotated[Viewer, Depends(require(*AUDIT_ROLES))]
PAGE = 50
# (query name, label, hint, longest)
FIELDS: tuple[tuple[str, str, str, int], ...] = (
    ("actor", "Actor", "as recorded, e.g. key:7:fiona", 200),
    ("action", "Action", "e.g. approval.approve", 100),
    ("entity_type", "Object type", "e.g. deal, playbook_version", 50),
    ("entity_id", "Object id", "", 200),
    ("from", "From", "", 10),
    ("to", "To", "", 10),
)


def _date(text: str) -> date | None:
    if not text or len(text) > 10:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@router.get("/audit")
def audit_log(request: Request, viewer: AuditViewer, session: DbSession) -> Response:
    params = request.query_params
    values = {name: params.get(name, "").strip() for name, *_ in FIELDS}
    errors: dict[str, str] = {}
    for name, _, _, longest in FIELDS:
        if len(values[name]) > longest:
            errors[name] = f"At most {longest} characters."
    since, until = _date(values["from"]), _date(values["to"])
    for name, day in (("from", since), ("to", until)):
        if values[name] and day is None:
            errors[name] = "Enter a date as YYYY-MM-DD."
    if since and until and since > until:
        errors["to"] = "The end date is before the start date."
    cursor = params.get("cursor") or None
    before_id = None
    if cursor is not None:
        try:
            before_id = decode_cursor(cursor[:200])
        except InvalidInput:
            errors["cursor"] = "That page link is not valid: start again from the newest."
    entries: list[AuditEntryRead] = []
    next_url = None
    if not errors:
        found = audit_service.page(
            session,
            before_id=before_id,
            limit=PAGE,
            entity_type=values["entity_type"] or None,
            entity_id=values["entity_id"] or None,
            action=values["action"] or None,
            actor=values["actor"] or None,
            since=_start(since) if since else None,
            until=_start(until + timedelta(days=1)) if until else None,
        )
        entries = [AuditEntryRead.model_validate(e) for e in found]
        if len(found) == PAGE:
            next_url = _url(values, cursor=encode_cursor(found[-1].id))

    def link(**change: str) -> str:
        return _url({**values, **change})

    return render_page(
        request,
        "audit.html",
        status_code=422 if errors else 200,
        title="Audit log",
        fields=FIELDS,
        values=values,
        errors=errors,
        entries=entries,
        next_url=next_url,
        first_url=_url(values) if cursor is not None else None,
        link=link,
    )


def _url(values: dict[str, str], **extra: str) -> str:
    query = urlencode([(k, v) for k, v in {**values, **extra}.items() if v])
    return "/audit" + (f"?{query}" if query else "")
