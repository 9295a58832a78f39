"""Playbook pages: the library, a version as a table, what a draft changes (term by term and on
recent deals), sign-off, publication, and YAML import and export. The draft editor's forms
(terms and rules) are `playbook_editor`'s; the helpers both share (who may edit, the version
page, where a change returns to) are here.

Leadership and admins edit and publish; approvers read and sign off the terms their group owns.
Every change goes through the playbooks service, as the API's does: the same validation, the
same ETag rule between two editors, the same sign-off and publication rules.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from governance.auth.schemas import Role
from governance.db import DbSession, after_commit
from governance.deals import impact as deal_impact
from governance.engine.document import KEY_PATTERN, PLAYBOOK_KEY_PATTERN
from governance.errors import GovernanceError, InvalidInput
from governance.http import Registry
from governance.playbooks import formats, publication
from governance.playbooks import service as playbook_service
from governance.playbooks.models import VersionStatus
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
from governance.web.rendering import render_page, wants_fragment
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


def require_editor(viewer: Viewer) -> None:
    if viewer.principal.role not in EDITORS:
        raise PageError(
            403,
            "Only leadership edits playbooks",
            f"A {viewer.principal.role.value} key can read playbooks and sign off the terms its "
            "group owns, but not change them.",
        )


def version_url(key: str, number: int, tail: str = "") -> str:
    return f"/playbooks/{key}/versions/{number}{tail}"


def after_change(request: Request, location: str) -> Response:
    """After a change: to `location` (htmx loads it as a whole page)."""
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def if_match(form: FormData) -> str:
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
    require_editor(viewer)
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
        version, _outcome = publication.import_document(
            session, viewer.principal, doc, publish_now=False
        )
    except InvalidInput as exc:
        return _import_refused(request, viewer, session, problems_text(exc), text)
    return after_change(request, version_url(doc.key, version.number, "?done=imported"))


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


def problems_text(exc: GovernanceError) -> str:
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
    return RedirectResponse(version_url(key, number), status_code=303)


@router.post("/playbooks/{key}/drafts")
def start_draft(
    request: Request, key: KeyPath, viewer: DeciderViewer, form: CheckedForm, session: DbSession
) -> Response:
    require_editor(viewer)
    version = playbook_service.create_version(session, viewer.principal, key, None)
    return after_change(request, version_url(key, version.number, "?done=draft"))


def render_version_page(
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
    return render_version_page(request, viewer, session, key, number)


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
    publication.sign_off(session, viewer.principal, key, number, body.group, body.note)
    back = text_field(form, "back")
    tail = "/changes" if back == "changes" else ""
    return after_change(request, version_url(key, number, f"{tail}?done=signed#signoff"))


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
    require_editor(viewer)
    try:
        publication.publish(session, viewer.principal, key, number)
    except GovernanceError as exc:
        session.rollback()
        return render_version_page(
            request, viewer, session, key, number, status_code=exc.status_code,
            problem=f"Not published: {problems_text(exc)}",
        )  # fmt: skip
    after_commit(session, registry.invalidate)
    return after_change(request, version_url(key, number, "?done=published"))
