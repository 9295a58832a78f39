"""The playbook draft editor's pages: a term's form (add, check as typed, save, remove, move
up or down in priority) and the draft's rules (add or replace from YAML, remove).

Leadership and admins edit; every change goes through the playbooks service with the draft's
ETag, as the API's does. The version page these forms return to is `playbooks`'s.
"""

from __future__ import annotations

import copy
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from governance.db import DbSession
from governance.engine.document import KEY_PATTERN, Rule
from governance.errors import InvalidInput, PreconditionFailed
from governance.playbooks import formats
from governance.playbooks import service as playbook_service
from governance.playbooks.models import Playbook, PlaybookVersion, VersionStatus
from governance.problems import format_loc
from governance.web import playbook_forms as forms
from governance.web.dependencies import CheckedForm, DeciderViewer, PageError, PageRoute, text_field
from governance.web.playbooks import (
    STALE,
    KeyPath,
    Number,
    TermPath,
    after_change,
    if_match,
    problems_text,
    render_version_page,
    require_editor,
    version_url,
)
from governance.web.rendering import render_page, render_partial

router = APIRouter(route_class=PageRoute)


# --- editing a term ----------------------------------------------------------------------------


def _draft(session: Session, key: str, number: int) -> tuple[Playbook, PlaybookVersion]:
    playbook, version = playbook_service.get_version(session, key, number)
    if version.status != VersionStatus.draft:
        raise PageError(
            409,
            f"Version {number} is {version.status}",
            "Only drafts are edited. Start a new draft from the playbook's page.",
        )
    return playbook, version


def _term_index(document: dict[str, Any], term: str) -> int | None:
    return next((i for i, t in enumerate(document["terms"]) if t["key"] == term), None)


def _term_page(
    request: Request,
    version: PlaybookVersion,
    key: str,
    term_form: forms.TermForm,
    *,
    etag: str,
    is_new: bool,
    index: int,
    status_code: int = 200,
    problem: str | None = None,
) -> Response:
    return render_page(
        request,
        "playbooks/term.html",
        status_code=status_code,
        title=f"Edit {term_form.key} · {key} version {version.number}",
        key=key,
        number=version.number,
        f=term_form.with_blank_row(),
        etag=etag,
        is_new=is_new,
        index=index,
        problem=problem,
        field_id=forms.field_id,
        directions=forms.DIRECTIONS,
    )


@router.get("/playbooks/{key}/versions/{number}/new-term")
def new_term(
    request: Request,
    key: KeyPath,
    number: Number,
    viewer: DeciderViewer,
    session: DbSession,
    term: Annotated[str, Query(alias="key", max_length=100)] = "",
    kind: Annotated[str, Query(pattern="^(number|choice|flag)$")] = "number",
) -> Response:
    """The add-a-term form's answer: the new term's editor (or the term's, if it exists)."""
    require_editor(viewer)
    term = term.strip()
    if not re.fullmatch(KEY_PATTERN, term):
        return render_version_page(
            request, viewer, session, key, number, status_code=422,
            problem=f"“{term}” is not a term key: lower-case letters, digits and _, starting "
            "with a letter (like discount_pct).",
        )  # fmt: skip
    return RedirectResponse(version_url(key, number, f"/terms/{term}?kind={kind}"), status_code=303)


@router.get("/playbooks/{key}/versions/{number}/terms/{term}")
def term_form(
    request: Request,
    key: KeyPath,
    number: Number,
    term: TermPath,
    viewer: DeciderViewer,
    session: DbSession,
    kind: Annotated[str | None, Query(pattern="^(number|choice|flag)$")] = None,
) -> Response:
    require_editor(viewer)
    _playbook, version = _draft(session, key, number)
    index = _term_index(version.document, term)
    if index is None:
        if kind is None:
            raise PageError(
                404, f"Version {number} has no term {term!r}", "Add it from the draft's page."
            )
        stored = None
        next_priority = max((t["priority"] for t in version.document["terms"]), default=0) + 1
        term_form = forms.form_of({"priority": next_priority}, term, kind)
        index = len(version.document["terms"])
    else:
        stored = version.document["terms"][index]
        term_form = forms.form_of(stored, term, stored["kind"])
    return _term_page(
        request, version, key, term_form, etag=playbook_service.etag(version),
        is_new=stored is None, index=index,
    )  # fmt: skip


def _read_term(
    form: FormData, version: PlaybookVersion, term: str
) -> tuple[forms.TermForm, dict[str, Any], int, bool]:
    """The posted term, the draft's document with it in place, its index, and whether new."""
    raw = copy.deepcopy(version.document)
    index = _term_index(raw, term)
    stored = raw["terms"][index] if index is not None else None
    kind = stored["kind"] if stored else text_field(form, "kind")
    if kind not in forms.TERM_KINDS:
        raise PageError(422, "Unknown kind of term", "A term is a number, a choice or a flag.")
    term_form = forms.read_form(form, term, kind)
    term_json = forms.term_json(term_form, stored)
    if index is None:
        index = len(raw["terms"])
        raw["terms"].append(term_json)
    else:
        raw["terms"][index] = term_json
    return term_form, raw, index, stored is None


@router.post("/playbooks/{key}/versions/{number}/terms/{term}/check")
def check_term(
    request: Request,
    key: KeyPath,
    number: Number,
    term: TermPath,
    viewer: DeciderViewer,
    form: CheckedForm,
    session: DbSession,
) -> Response:
    """The form as typed, checked as a save would check it (nothing saved): each problem at
    its field, swapped in while the editor types."""
    require_editor(viewer)
    _playbook, version = _draft(session, key, number)
    term_form, raw, index, _new = _read_term(form, version, term)
    try:
        playbook_service.check_document(session, raw)
    except InvalidInput as exc:
        forms.place(term_form, index, exc.errors)
    return render_partial(
        request,
        "playbooks/term_check.html",
        f=term_form,
        field_id=forms.field_id,
    )


@router.post("/playbooks/{key}/versions/{number}/terms/{term}")
def save_term(
    request: Request,
    key: KeyPath,
    number: Number,
    term: TermPath,
    viewer: DeciderViewer,
    form: CheckedForm,
    session: DbSession,
) -> Response:
    require_editor(viewer)
    _playbook, version = _draft(session, key, number)
    etag = if_match(form)
    term_form, raw, index, is_new = _read_term(form, version, term)
    try:
        doc = playbook_service.check_document(session, raw)
        saved = doc.term(term)
        assert saved is not None
        playbook_service.put_term(session, viewer.principal, key, number, saved, etag)
    except PreconditionFailed:
        return _term_page(
            request, version, key, term_form, etag=etag, is_new=is_new, index=index,
            status_code=412, problem=STALE,
        )  # fmt: skip
    except InvalidInput as exc:
        forms.place(term_form, index, exc.errors)
        return _term_page(
            request, version, key, term_form, etag=etag, is_new=is_new, index=index,
            status_code=422, problem="Not saved: correct the fields marked below.",
        )  # fmt: skip
    return after_change(request, version_url(key, number, f"?done=saved#term-{term}"))


@router.post("/playbooks/{key}/versions/{number}/terms/{term}/delete")
def delete_term(
    request: Request,
    key: KeyPath,
    number: Number,
    term: TermPath,
    viewer: DeciderViewer,
    form: CheckedForm,
    session: DbSession,
) -> Response:
    require_editor(viewer)
    try:
        playbook_service.delete_term(session, viewer.principal, key, number, term, if_match(form))
    except PreconditionFailed:
        return render_version_page(
            request, viewer, session, key, number, status_code=412, problem=STALE
        )
    except InvalidInput as exc:
        return render_version_page(
            request, viewer, session, key, number, status_code=422, problem=problems_text(exc)
        )
    return after_change(request, version_url(key, number, "?done=removed"))


@router.post("/playbooks/{key}/versions/{number}/terms/{term}/move")
def move_term(
    request: Request,
    key: KeyPath,
    number: Number,
    term: TermPath,
    viewer: DeciderViewer,
    form: CheckedForm,
    session: DbSession,
) -> Response:
    """Swap a term's priority with the next term's above (`up`) or below (`down`)."""
    require_editor(viewer)
    _playbook, version = _draft(session, key, number)
    raw = copy.deepcopy(version.document)
    ordered = sorted(raw["terms"], key=lambda t: t["priority"])
    at = next((i for i, t in enumerate(ordered) if t["key"] == term), None)
    if at is None:
        raise PageError(404, f"Version {number} has no term {term!r}")
    other = at - 1 if text_field(form, "direction") == "up" else at + 1
    if 0 <= other < len(ordered):
        ordered[at]["priority"], ordered[other]["priority"] = (
            ordered[other]["priority"],
            ordered[at]["priority"],
        )
        try:
            doc = playbook_service.check_document(session, raw)
            playbook_service.update_version(
                session, viewer.principal, key, number, doc, if_match(form)
            )
        except PreconditionFailed:
            return render_version_page(
                request, viewer, session, key, number, status_code=412, problem=STALE
            )
    return after_change(request, version_url(key, number, f"?done=moved#term-{term}"))


# --- rules -------------------------------------------------------------------------------------


@router.post("/playbooks/{key}/versions/{number}/rules")
def save_rule(
    request: Request,
    key: KeyPath,
    number: Number,
    viewer: DeciderViewer,
    form: CheckedForm,
    session: DbSession,
) -> Response:
    """Add a rule, or replace the rule with its key, from its YAML."""
    require_editor(viewer)
    _playbook, version = _draft(session, key, number)
    text = text_field(form, "rule")

    def refused(problems: list[tuple[str, str]], status: int = 422) -> Response:
        return render_version_page(
            request, viewer, session, key, number, status_code=status,
            rule_text=text, rule_problems=problems,
        )  # fmt: skip

    try:
        loaded = formats.read_yaml(text) if text else None
    except InvalidInput as exc:
        return refused(
            [(format_loc(p.loc) or "rule", p.message) for p in exc.errors]
            or [("rule", exc.detail or exc.title)]
        )
    if not isinstance(loaded, dict):
        return refused([("rule", "write one rule as YAML: key, when and then")])
    try:
        rule = Rule.model_validate(loaded)
    except ValidationError as exc:
        return refused([(format_loc(tuple(e["loc"])) or "rule", e["msg"]) for e in exc.errors()])
    raw = copy.deepcopy(version.document)
    rules = raw.setdefault("rules", [])
    stored = rule.model_dump(mode="json", exclude_none=True)
    at = next((i for i, r in enumerate(rules) if r["key"] == rule.key), None)
    if at is None:
        rules.append(stored)
    else:
        rules[at] = stored
    try:
        playbook_service.check_document(session, raw)
        playbook_service.put_rule(session, viewer.principal, key, number, rule, if_match(form))
    except PreconditionFailed:
        return refused([("rule", STALE)], 412)
    except InvalidInput as exc:
        return refused([(format_loc(p.loc), p.message) for p in exc.errors])
    return after_change(request, version_url(key, number, "?done=rule#rules"))


@router.post("/playbooks/{key}/versions/{number}/rules/{rule}/delete")
def delete_rule(
    request: Request,
    key: KeyPath,
    number: Number,
    rule: TermPath,
    viewer: DeciderViewer,
    form: CheckedForm,
    session: DbSession,
) -> Response:
    require_editor(viewer)
    try:
        playbook_service.delete_rule(session, viewer.principal, key, number, rule, if_match(form))
    except PreconditionFailed:
        return render_version_page(
            request, viewer, session, key, number, status_code=412, problem=STALE
        )
    return after_change(request, version_url(key, number, "?done=removed#rules"))
