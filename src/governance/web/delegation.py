"""My delegation: name who decides for my groups while I am away, and end it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from governance.approvals import service as approval_service
from governance.approvals.schemas import DelegationWrite
from governance.db import DbSession, utcnow
from governance.errors import InvalidInput, NotFound, problem_body
from governance.web.dependencies import CheckedForm, DeciderViewer, PageRoute, text_field
from governance.web.rendering import render_page
from governance.web.sessions import Viewer

router = APIRouter(route_class=PageRoute)

LOCAL = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends, read as UTC


def _local(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(LOCAL)


def _page(
    request: Request,
    session: Session,
    viewer: Viewer,
    *,
    status_code: int = 200,
    notice: str | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    mine = approval_service.my_delegations(session, viewer.principal)
    now = utcnow().replace(second=0, microsecond=0)
    defaults = {
        "delegate": mine.given.delegate if mine.given else "",
        "starts_at": _local(mine.given.starts_at if mine.given else now),
        "ends_at": _local(mine.given.ends_at if mine.given else now + timedelta(days=7)),
    }
    return render_page(
        request,
        "delegation.html",
        status_code=status_code,
        title="My delegation",
        mine=mine,
        notice=notice,
        errors=errors or {},
        form={**defaults, **(form or {})},
    )


@router.get("/delegation")
def delegation(request: Request, viewer: DeciderViewer, session: DbSession) -> Response:
    return _page(request, session, viewer)


@router.post("/delegation")
def set_delegation(
    request: Request, viewer: DeciderViewer, form: CheckedForm, session: DbSession
) -> Response:
    raw = {name: text_field(form, name) for name in ("delegate", "starts_at", "ends_at")}
    errors: dict[str, str] = {}
    try:
        body = DelegationWrite.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            where = str(error["loc"][0]) if error["loc"] else "form"
            errors.setdefault(where, error["msg"].removeprefix("Value error, "))
        return _page(request, session, viewer, status_code=422, errors=errors, form=raw)
    try:
        read, _created = approval_service.set_delegation(session, viewer.principal, body)
    except InvalidInput as exc:
        for item in problem_body(exc).get("errors", []):
            errors.setdefault(str(item["loc"][0]) if item["loc"] else "form", item["message"])
        if not errors:
            errors["form"] = exc.detail or exc.title
        return _page(request, session, viewer, status_code=422, errors=errors, form=raw)
    notice = (
        f"{read.delegate} may decide for {', '.join(read.groups)} from "
        f"{_local(read.starts_at)} to {_local(read.ends_at)} UTC."
    )
    return _page(request, session, viewer, notice=notice)


@router.post("/delegation/end")
def end_delegation(
    request: Request, viewer: DeciderViewer, form: CheckedForm, session: DbSession
) -> Response:
    try:
        approval_service.clear_delegation(session, viewer.principal)
    except NotFound:
        return _page(request, session, viewer, notice="You had no delegation to end.")
    return _page(request, session, viewer, notice="Your delegation has ended.")
