"""The approver's inbox: the queue, a request's card, decisions (one, or several at once).

Decisions go through `approvals.service.decide`, each in its own unit of work as the API's
batch route does, so every rule holds: roles and delegation, the request's version (a card
decides only on what it showed: a 412 re-renders it with the new values), counters within the
approver's authority, the audit log and the outbox.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from governance.approvals import service as approval_service
from governance.approvals.models import RequestStatus
from governance.approvals.schemas import Decision, DecisionCreate
from governance.db import Database, DbSession, utcnow
from governance.errors import (
    Conflict,
    GovernanceError,
    InvalidInput,
    PreconditionFailed,
    problem_body,
)
from governance.http import AppDatabase, AppSettings, Registry
from governance.pagination import MAX_ID, decode_cursor, encode_cursor
from governance.playbooks.registry import PlaybookRegistry
from governance.settings import Settings
from governance.web import cards
from governance.web.dependencies import (
    CheckedForm,
    DeciderViewer,
    PageError,
    PageRoute,
    text_field,
)
from governance.web.rendering import render_page, render_partial, wants_fragment
from governance.web.sessions import Viewer

router = APIRouter(route_class=PageRoute)

PAGE_SIZE = 200
AGES = {"": "any age", "4": "4 hours or more", "24": "a day or more", "72": "3 days or more"}
STATUSES = [s.value for s in RequestStatus]
RequestIdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


@dataclass(frozen=True, slots=True)
class Filters:
    """The inbox's filters, as the API's queue takes them (age in hours)."""

    status: str
    group: str
    age: str
    cursor: str

    def query(self) -> str:
        pairs = {"status": self.status, "group": self.group, "age": self.age}
        return urlencode({k: v for k, v in pairs.items() if v})


@dataclass(frozen=True, slots=True)
class Row:
    """One request in the inbox list."""

    request: dict[str, Any]
    sla: cards.Sla
    age: str
    terms: list[tuple[str, str, str, int | None]]


def _filters(status: str | None, group: str | None, age: str | None, cursor: str | None) -> Filters:
    if status and status not in STATUSES:
        raise PageError(422, "Unknown status", f"Choose one of: {', '.join(STATUSES)}.")
    if age and age not in AGES:
        raise PageError(422, "Unknown age filter", "Choose an age from the list.")
    return Filters(status or RequestStatus.pending.value, group or "", age or "", cursor or "")


def _inbox(
    request: Request,
    session: Session,
    registry: PlaybookRegistry,
    viewer: Viewer,
    filters: Filters,
    *,
    status_code: int = 200,
    results: list[dict[str, Any]] | None = None,
) -> Response:
    now = utcnow()
    items = approval_service.queue(
        session,
        viewer.principal,
        status=filters.status,
        group=filters.group or None,
        deal_external_id=None,
        opened_before=now - timedelta(hours=int(filters.age)) if filters.age else None,
        after_id=decode_cursor(filters.cursor or None),
        limit=PAGE_SIZE,
    )
    visible = approval_service.visible_groups(session, viewer.principal)
    groups = (
        sorted(visible)
        if visible is not None
        else sorted(
            {g.name for g in approval_service.list_groups(session, request.app.state.settings)}
            | {item["group"] for item in items}
        )
    )
    documents = cards.Documents(session, registry)
    rows = []
    for item in cards.inbox_order(items, now):
        doc = documents.get(item["playbook"]["key"], item["playbook"]["version"])
        names = cards.term_names(doc)
        rows.append(
            Row(
                request=item,
                sla=cards.sla(item, now),
                age=cards.age(item, now),
                terms=[
                    (t["label"], names.value(t["key"], t["value"]), t["status"], t.get("tier"))
                    for t in item["terms"]
                ],
            )
        )
    return render_page(
        request,
        "inbox.html",
        status_code=status_code,
        title="Inbox",
        rows=rows,
        filters=filters,
        statuses=STATUSES,
        ages=AGES,
        groups=groups,
        next_cursor=encode_cursor(items[-1]["id"]) if len(items) == PAGE_SIZE else None,
        overdue=sum(1 for row in rows if row.sla.overdue),
        results=results or [],
    )


@router.get("/inbox")
def inbox(
    request: Request,
    viewer: DeciderViewer,
    session: DbSession,
    registry: Registry,
    status: Annotated[str | None, Query(max_length=20)] = None,
    group: Annotated[str | None, Query(max_length=100)] = None,
    age: Annotated[str | None, Query(max_length=5)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    return _inbox(request, session, registry, viewer, _filters(status, group, age, cursor))


# --- one request -------------------------------------------------------------------------------


def _card_response(
    request: Request,
    card: cards.Card,
    *,
    status_code: int = 200,
    notice: str | None = None,
    problem: dict[str, Any] | None = None,
    field_errors: dict[str, str] | None = None,
    changes: list[str] | None = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    form = form or {}
    field_errors = field_errors or {}
    if card.request["status"] not in (RequestStatus.pending, RequestStatus.waiting):
        # The inbox row of this request shows it is decided (static/app.js).
        event = {"decided": {"id": card.request["id"], "status": card.request["status"]}}
        headers = {**(headers or {}), "HX-Trigger": json.dumps(event)}
    context = {
        "card": card,
        "notice": notice,
        "problem": problem,
        "field_errors": field_errors,
        "changes": changes or [],
        "form": form,
        "counter_open": any(k.startswith("counter") for k in field_errors)
        or any(v for k, v in form.items() if k.startswith("counter.")),
        "title": f"Request {card.request['id']}",
    }
    if wants_fragment(request):
        return render_partial(
            request, "partials/card.html", status_code=status_code, headers=headers, **context
        )
    return render_page(request, "request.html", status_code=status_code, headers=headers, **context)


def _fresh_card(
    db: Database, registry: PlaybookRegistry, viewer: Viewer, request_id: int
) -> cards.Card:
    with db.unit_of_work() as session:
        return cards.card(session, registry, viewer.principal, request_id)


def _quiet(card: cards.Card) -> dict[str, Any]:
    """A card as first opened: no message, no errors, an empty form."""
    return {
        "card": card,
        "notice": None,
        "problem": None,
        "field_errors": {},
        "changes": [],
        "form": {},
        "counter_open": False,
    }


@router.get("/requests/{request_id}")
def request_page(
    request: Request,
    request_id: RequestIdPath,
    viewer: DeciderViewer,
    session: DbSession,
    registry: Registry,
) -> Response:
    card = cards.card(session, registry, viewer.principal, request_id)
    return render_page(request, "request.html", title=f"Request {request_id}", **_quiet(card))


@router.get("/requests/{request_id}/card")
def request_card(
    request: Request,
    request_id: RequestIdPath,
    viewer: DeciderViewer,
    session: DbSession,
    registry: Registry,
) -> Response:
    card = cards.card(session, registry, viewer.principal, request_id)
    return render_partial(request, "partials/card.html", **_quiet(card))


def _field(loc: list[Any]) -> str:
    """The form field a problem's location names: `reason`, `counter.<term>`, or the form."""
    if loc and loc[0] == "reason":
        return "reason"
    if loc and loc[0] == "counter_terms":
        return f"counter.{loc[1]}" if len(loc) > 1 else "counter"
    return "form"


def decision_body(form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    """The decision a card's form asks for, as the API's body, and the raw values to re-show."""
    decision = text_field(form, "decision")
    reason = text_field(form, "reason")
    counter: dict[str, Any] = {}
    raw: dict[str, str] = {"reason": reason}
    for name in form:
        if not name.startswith("counter."):
            continue
        value = text_field(form, name)
        raw[name] = value
        if value == "":
            continue
        key = name.removeprefix("counter.")
        counter[key] = {"true": True, "false": False}.get(value, value)
    body: dict[str, Any] = {"decision": decision}
    if reason:
        body["reason"] = reason
    if decision == "counter" or counter:
        body["counter_terms"] = counter or None
    return body, raw


def _form_id(text: str) -> int | None:
    """An id or version as a form carries it: ASCII digits, 1 to MAX_ID; None otherwise
    (`str.isdigit` also takes "²" and "١", and a 5,000-digit number is no id either)."""
    if not re.fullmatch(r"[0-9]{1,10}", text):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def _version(form: FormData) -> int:
    version = _form_id(text_field(form, "version"))
    if version is None:
        raise PageError(400, "This form is incomplete", "Reload the request and decide again.")
    return version


@router.post("/requests/{request_id}/decision")
def decide(
    request: Request,
    request_id: RequestIdPath,
    viewer: DeciderViewer,
    form: CheckedForm,
    db: AppDatabase,
    registry: Registry,
    settings: AppSettings,
) -> Response:
    version = _version(form)
    body, raw = decision_body(form)
    try:
        decision = DecisionCreate.model_validate(body)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            loc = [p for p in error["loc"] if not str(p).startswith("function-")]
            errors.setdefault(_field(loc), error["msg"].removeprefix("Value error, "))
        card = _fresh_card(db, registry, viewer, request_id)
        return _card_response(request, card, status_code=422, field_errors=errors, form=raw)
    try:
        with db.unit_of_work() as session:
            approval_service.decide(
                session, registry, viewer.principal, request_id, decision, version, settings
            )
    except PreconditionFailed:
        card = _fresh_card(db, registry, viewer, request_id)
        changes = cards.changes_since(text_field(form, "shown"), card.request)
        return _card_response(request, card, status_code=412, changes=changes, form=raw)
    except InvalidInput as exc:
        problem = problem_body(exc)
        errors = {}
        for item in problem.get("errors", []):
            errors.setdefault(_field(item["loc"]), item["message"])
        card = _fresh_card(db, registry, viewer, request_id)
        return _card_response(
            request, card, status_code=422, problem=problem, field_errors=errors, form=raw
        )
    except Conflict as exc:
        # Decided (or reopened) by someone else since the card was opened: say what changed.
        card = _fresh_card(db, registry, viewer, request_id)
        changes = cards.changes_since(text_field(form, "shown"), card.request)
        if changes:
            return _card_response(request, card, status_code=409, changes=changes)
        return _card_response(request, card, status_code=409, problem=problem_body(exc))
    card = _fresh_card(db, registry, viewer, request_id)
    done = {"approve": "Approved", "reject": "Rejected", "counter": "Countered"}[
        decision.decision.value
    ]
    return _card_response(
        request, card, notice=f"{done}. The rep and the other approvers see it now."
    )


# --- several at once ---------------------------------------------------------------------------


def _approve_one(
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    viewer: Viewer,
    request_id: int,
    version: int,
) -> dict[str, Any]:
    try:
        with db.unit_of_work() as session:
            approval_service.decide(
                session,
                registry,
                viewer.principal,
                request_id,
                DecisionCreate(decision=Decision.approve),
                version,
                settings,
            )
    except PreconditionFailed:
        return {"id": request_id, "ok": False, "why": "changed since you opened the inbox"}
    except GovernanceError as exc:
        return {"id": request_id, "ok": False, "why": exc.detail or exc.title}
    return {"id": request_id, "ok": True, "why": ""}


@router.post("/inbox/approve")
def approve_selected(
    request: Request,
    viewer: DeciderViewer,
    form: CheckedForm,
    db: AppDatabase,
    registry: Registry,
    settings: AppSettings,
) -> Response:
    chosen: list[tuple[int, int]] = []
    for value in form.getlist("selected"):
        request_id, _, version = str(value).partition(":")
        ids = (_form_id(request_id), _form_id(version))
        if ids[0] is None or ids[1] is None:
            raise PageError(400, "This form is incomplete", "Reload the inbox and try again.")
        chosen.append((ids[0], ids[1]))
    if not chosen:
        raise PageError(422, "Nothing selected", "Tick the requests to approve first.")
    if len(chosen) > 100:
        raise PageError(422, "Too many at once", "Approve at most 100 requests at a time.")
    results = [
        _approve_one(db, registry, settings, viewer, request_id, version)
        for request_id, version in chosen
    ]
    filters = _filters(
        text_field(form, "status") or None,
        text_field(form, "group") or None,
        text_field(form, "age") or None,
        None,
    )
    with db.unit_of_work() as session:
        return _inbox(request, session, registry, viewer, filters, results=results)
