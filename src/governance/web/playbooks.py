"""Playbook pages: the library, a version as a table, the draft editor, what a draft changes
(term by term and on recent deals), sign-off, publication, and YAML import and export.

Leadership and admins edit and publish; approvers read and sign off the terms their group owns.
Every change goes through the playbooks service, as the API's does: the same validation, the
same ETag rule between two editors, the same sign-off and publication rules.
"""

from __future__ import annotations

import copy
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from governance.auth.schemas import Role
from governance.db import DbSession, after_commit
from governance.deals import impact as deal_impact
from governance.engine.document import KEY_PATTERN, PLAYBOOK_KEY_PATTERN, Rule
from governance.errors import GovernanceError, InvalidInput, PreconditionFailed
from governance.http import Registry
from governance.playbooks import formats
from governance.playbooks import service as playbook_service
from governance.playbooks.models import Playbook, PlaybookVersion, VersionStatus
from governance.playbooks.schemas import SignoffCreate
from governance.problems import format_loc
from governance.web import playbook_forms as forms
from governance.web import playbook_views as views
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

EDITORS = frozenset({Role.admin, Role.leadership})
KeyPath = Annotated[str, Path(pattern=PLAYBOOK_KEY_PATTERN, max_length=64)]
Number = Annotated[int, Path(ge=1, le=1_000_000)]
TermPath = Annotated[str, Path(pattern=KEY_PATTERN, max_length=64)]
MAX_IMPORT_BYTES = 1_000_000
NOTICES = {
    "draft": "A new draft, a copy of the latest version. Edit it, then ask the owners to sign off.",
    "saved": "Saved.",
    "removed": "Removed.",
    "moved": "Priorities reordered.",
    "rule": "Rule saved.",
    "signed": "Signed off.",
    "published": "Published: checks use this version from now on.",
    "imported": "Imported.",
}


def _editor(viewer: Viewer) -> None:
    if viewer.principal.role not in EDITORS:
        raise PageError(
            403,
            "Only leadership edits playbooks",
            f"A {viewer.principal.role.value} key can read playbooks and sign off the terms its "
            "group owns, but not change them.",
        )


def _url(key: str, number: int, tail: str = "") -> str:
    return f"/playbooks/{key}/versions/{number}{tail}"


def _done(request: Request, location: str) -> Response:
    """After a change: to `location` (htmx loads it as a whole page)."""
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def _if_match(form: FormData) -> str:
    """The draft's ETag the form was rendered with: a save against a newer draft is refused."""
    return text_field(form, "etag") or '"none"'


STALE = (
    "Someone else saved this draft after you opened it. Nothing of yours was saved, so their "
    "change is not overwritten: reload the draft to see it, then make your change again."
)


# --- the library -------------------------------------------------------------------------------


def _entries(session: Session) -> list[dict[str, Any]]:
    """Each playbook, with its open draft's sign-off state."""
    entries = []
    for playbook in playbook_service.list_playbooks(session):
        read = playbook_service.read_playbook(playbook)
        draft = None
        if read.draft_version is not None:
            _pb, version = playbook_service.get_version(session, playbook.key, read.draft_version)
            draft = playbook_service.read_version(session, playbook, version)
        entries.append({"playbook": read, "draft": draft})
    return entries


@router.get("/playbooks")
def library(request: Request, viewer: DeciderViewer, session: DbSession) -> Response:
    return render_page(
        request,
        "playbooks/library.html",
        title="Playbooks",
        entries=_entries(session),
        can_edit=viewer.principal.role in EDITORS,
        problem=None,
        yaml_text="",
    )


@router.post("/playbooks/import")
def import_yaml(
    request: Request, viewer: DeciderViewer, form: CheckedForm, session: DbSession
) -> Response:
    _editor(viewer)
    text = text_field(form, "yaml")
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = upload.file.read(MAX_IMPORT_BYTES + 1)
        if len(raw) > MAX_IMPORT_BYTES:
            return _import_refused(request, viewer, session, "The file is over 1 MB.", text)
        text = raw.decode("utf-8", errors="replace")
    if not text:
        return _import_refused(request, viewer, session, "Choose a YAML file or paste one.", text)
    try:
        doc = formats.parse_text(text, "application/yaml")
        version, _outcome = playbook_service.import_document(
            session, viewer.principal, doc, publish_now=False
        )
    except InvalidInput as exc:
        return _import_refused(request, viewer, session, _problems_text(exc), text)
    return _done(request, _url(doc.key, version.number, "?done=imported"))


def _import_refused(
    request: Request, viewer: Viewer, session: Session, problem: str, text: str
) -> Response:
    return render_page(
        request,
        "playbooks/library.html",
        status_code=422,
        title="Playbooks",
        entries=_entries(session),
        can_edit=viewer.principal.role in EDITORS,
        problem=problem,
        yaml_text=text,
    )


def _problems_text(exc: GovernanceError) -> str:
    errors = getattr(exc, "errors", None) or []
    listed = "; ".join(f"{format_loc(p.loc)}: {p.message}" for p in errors)
    if isinstance(exc, InvalidInput) and listed:
        return listed
    said = exc.detail or exc.title
    return f"{said} ({listed})" if listed else said


# --- a playbook and its versions ---------------------------------------------------------------


@router.get("/playbooks/{key}")
def playbook_home(key: KeyPath, viewer: DeciderViewer, session: DbSession) -> Response:
    read = playbook_service.read_playbook(playbook_service.get_playbook(session, key))
    number = read.draft_version or read.published_version or read.versions[-1].number
    return RedirectResponse(_url(key, number), status_code=303)


@router.post("/playbooks/{key}/drafts")
def start_draft(
    request: Request, key: KeyPath, viewer: DeciderViewer, form: CheckedForm, session: DbSession
) -> Response:
    _editor(viewer)
    version = playbook_service.create_version(session, viewer.principal, key, None)
    return _done(request, _url(key, version.number, "?done=draft"))


def _version_page(
    request: Request,
    viewer: Viewer,
    session: Session,
    key: str,
    number: int,
    *,
    status_code: int = 200,
    problem: str | None = None,
    rule_text: str = "",
    rule_problems: list[tuple[str, str]] | None = None,
) -> Response:
    playbook, version = playbook_service.get_version(session, key, number)
    read = playbook_service.read_version(session, playbook, version)
    doc = read.document
    done = request.query_params.get("done", "")
    summary = playbook_service.read_playbook(playbook)
    return render_page(
        request,
        "playbooks/version.html",
        status_code=status_code,
        title=f"{doc.name} · version {number}",
        playbook=summary,
        v=read,
        rows=views.rows_of(doc),
        labels=views.labels_of(doc, None),
        rules=[(r, views.rule_text(r)) for r in doc.rules],
        is_draft=read.status is VersionStatus.draft,
        can_edit=viewer.principal.role in EDITORS and read.status is VersionStatus.draft,
        can_start=viewer.principal.role in EDITORS and summary.draft_version is None,
        sign_as=_sign_as(viewer, read.missing_signoffs),
        notice=NOTICES.get(done),
        problem=problem,
        rule_text=rule_text,
        rule_problems=rule_problems or [],
        kinds=forms.TERM_KINDS,
    )


def _sign_as(viewer: Viewer, missing: list[str]) -> list[str]:
    """The groups this viewer may sign off for now: its own (an approver), or any (an admin)."""
    principal = viewer.principal
    if principal.role is Role.admin:
        return list(missing)
    if principal.role is Role.approver:
        return [g for g in missing if principal.in_group(g)]
    return []


@router.get("/playbooks/{key}/versions/{number}")
def version_page(
    request: Request, key: KeyPath, number: Number, viewer: DeciderViewer, session: DbSession
) -> Response:
    return _version_page(request, viewer, session, key, number)


@router.get("/playbooks/{key}/versions/{number}/export")
def export_yaml(
    key: KeyPath, number: Number, viewer: DeciderViewer, session: DbSession
) -> Response:
    _playbook, version = playbook_service.get_version(session, key, number)
    text = formats.to_yaml(playbook_service.document_of(version))
    return Response(
        text,
        media_type="application/yaml",
        headers={
            "Content-Disposition": f'attachment; filename="{key}-v{number}.yaml"',
            "Cache-Control": "no-store",
        },
    )


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
    _editor(viewer)
    term = term.strip()
    if not re.fullmatch(KEY_PATTERN, term):
        return _version_page(
            request, viewer, session, key, number, status_code=422,
            problem=f"“{term}” is not a term key: lower-case letters, digits and _, starting "
            "with a letter (like discount_pct).",
        )  # fmt: skip
    return RedirectResponse(_url(key, number, f"/terms/{term}?kind={kind}"), status_code=303)


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
    _editor(viewer)
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
    _editor(viewer)
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
    _editor(viewer)
    _playbook, version = _draft(session, key, number)
    etag = _if_match(form)
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
    return _done(request, _url(key, number, f"?done=saved#term-{term}"))


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
    _editor(viewer)
    try:
        playbook_service.delete_term(session, viewer.principal, key, number, term, _if_match(form))
    except PreconditionFailed:
        return _version_page(request, viewer, session, key, number, status_code=412, problem=STALE)
    except InvalidInput as exc:
        return _version_page(
            request, viewer, session, key, number, status_code=422, problem=_problems_text(exc)
        )
    return _done(request, _url(key, number, "?done=removed"))


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
    _editor(viewer)
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
                session, viewer.principal, key, number, doc, _if_match(form)
            )
        except PreconditionFailed:
            return _version_page(
                request, viewer, session, key, number, status_code=412, problem=STALE
            )
    return _done(request, _url(key, number, f"?done=moved#term-{term}"))


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
    _editor(viewer)
    _playbook, version = _draft(session, key, number)
    text = text_field(form, "rule")

    def refused(problems: list[tuple[str, str]], status: int = 422) -> Response:
        return _version_page(
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
        playbook_service.put_rule(session, viewer.principal, key, number, rule, _if_match(form))
    except PreconditionFailed:
        return refused([("rule", STALE)], 412)
    except InvalidInput as exc:
        return refused([(format_loc(p.loc), p.message) for p in exc.errors])
    return _done(request, _url(key, number, "?done=rule#rules"))


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
    _editor(viewer)
    try:
        playbook_service.delete_rule(session, viewer.principal, key, number, rule, _if_match(form))
    except PreconditionFailed:
        return _version_page(request, viewer, session, key, number, status_code=412, problem=STALE)
    return _done(request, _url(key, number, "?done=removed#rules"))


# --- what changes, sign-off, publication -------------------------------------------------------


@router.get("/playbooks/{key}/versions/{number}/changes")
def changes_page(
    request: Request,
    key: KeyPath,
    number: Number,
    viewer: DeciderViewer,
    session: DbSession,
    days: Annotated[int, Query(ge=1, le=deal_impact.MAX_DAYS)] = deal_impact.DEFAULT_DAYS,
    limit: Annotated[int, Query(ge=1, le=deal_impact.MAX_LIMIT)] = deal_impact.DEFAULT_LIMIT,
) -> Response:
    playbook, version = playbook_service.get_version(session, key, number)
    read = playbook_service.read_version(session, playbook, version)
    base = deal_impact.baseline_of(session, key, number)
    live = base.document if base else None
    measured = deal_impact.impact_of_version(session, key, number, days=days, limit=limit)
    return render_page(
        request,
        "playbooks/changes.html",
        title=f"What changes · {key} version {number}",
        playbook=playbook_service.read_playbook(playbook),
        v=read,
        live_number=base.number if base else None,
        changes=views.changes(live, read.document),
        labels=views.labels_of(read.document, live),
        impact=measured,
        days=days,
        limit=limit,
        is_draft=read.status is VersionStatus.draft,
        can_edit=viewer.principal.role in EDITORS and read.status is VersionStatus.draft,
        sign_as=_sign_as(viewer, read.missing_signoffs),
        fragment=wants_fragment(request),
    )


@router.post("/playbooks/{key}/versions/{number}/signoffs")
def sign_off(
    request: Request,
    key: KeyPath,
    number: Number,
    viewer: DeciderViewer,
    form: CheckedForm,
    session: DbSession,
) -> Response:
    if viewer.principal.role not in (Role.admin, Role.approver):
        raise PageError(
            403,
            "Owners sign off",
            "Sign-off is for the approvers of the owning group (or an admin).",
        )
    try:  # the API's rules for the body: a group name, a note of at most 2,000 characters
        body = SignoffCreate.model_validate(
            {"group": text_field(form, "group"), "note": text_field(form, "note") or None}
        )
    except ValidationError as exc:
        problems = "; ".join(f"{format_loc(tuple(e['loc']))}: {e['msg']}" for e in exc.errors())
        raise PageError(422, "This sign-off cannot be recorded", problems) from None
    playbook_service.sign_off(session, viewer.principal, key, number, body.group, body.note)
    back = text_field(form, "back")
    tail = "/changes" if back == "changes" else ""
    return _done(request, _url(key, number, f"{tail}?done=signed#signoff"))


@router.post("/playbooks/{key}/versions/{number}/publish")
def publish(
    request: Request,
    key: KeyPath,
    number: Number,
    viewer: DeciderViewer,
    form: CheckedForm,
    session: DbSession,
    registry: Registry,
) -> Response:
    _editor(viewer)
    try:
        playbook_service.publish(session, viewer.principal, key, number)
    except GovernanceError as exc:
        session.rollback()
        return _version_page(
            request, viewer, session, key, number, status_code=exc.status_code,
            problem=f"Not published: {_problems_text(exc)}",
        )  # fmt: skip
    after_commit(session, registry.invalidate)
    return _done(request, _url(key, number, "?done=published"))
