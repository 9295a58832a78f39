"""HTTP routes for playbooks: leadership edits drafts, owners sign off, everyone reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from governance.auth.dependencies import Anyone, PlaybookEditor, Signer
from governance.db import DbSession, after_commit
from governance.engine.document import (
    KEY_PATTERN,
    PLAYBOOK_KEY_PATTERN,
    PlaybookDocument,
    Rule,
    Term,
)
from governance.errors import InvalidPlaybook, problem_responses
from governance.http import AppDatabase, Registry, StrictRoute, VersionIfMatch
from governance.playbooks import catalog, formats, publication
from governance.playbooks import service as playbook_service
from governance.playbooks.models import PlaybookVersion, VersionStatus
from governance.playbooks.schemas import (
    CatalogPage,
    CatalogTermRead,
    ImportResult,
    NewVersion,
    PlaybookList,
    PlaybookRead,
    SignoffCreate,
    VersionRead,
)
from governance.problems import Problem

router = APIRouter(prefix="/v1/playbooks", tags=["playbooks"], route_class=StrictRoute)
terms_router = APIRouter(prefix="/v1/terms", tags=["playbooks"], route_class=StrictRoute)

PlaybookKeyPath = Annotated[str, Path(pattern=PLAYBOOK_KEY_PATTERN, max_length=64)]
Number = Annotated[int, Path(ge=1, le=1_000_000)]
TermKeyPath = Annotated[str, Path(pattern=KEY_PATTERN, max_length=64)]
READ = problem_responses(401, 403, 404, 422)
WRITE = problem_responses(401, 403, 404, 409, 412, 422)


def _version_response(
    session: Session, response: Response, key: str, version: PlaybookVersion
) -> VersionRead:
    playbook = playbook_service.get_playbook(session, key)
    read = playbook_service.read_version(session, playbook, version)
    response.headers["ETag"] = read.etag
    return read


@router.get("", response_model=PlaybookList, summary="List playbooks", responses=READ)
def list_playbooks(principal: Anyone, session: DbSession) -> PlaybookList:
    return PlaybookList(
        items=[playbook_service.read_playbook(p) for p in playbook_service.list_playbooks(session)]
    )


@router.post(
    "",
    status_code=201,
    response_model=VersionRead,
    summary="Create a playbook; its document becomes draft version 1",
    responses=WRITE,
)
def create_playbook(
    body: PlaybookDocument, principal: PlaybookEditor, session: DbSession, response: Response
) -> VersionRead:
    version = playbook_service.create_playbook(session, principal, body)
    return _version_response(session, response, body.key, version)


@router.post(
    "/import",
    response_model=ImportResult,
    status_code=201,
    summary="Import a whole document (YAML or JSON); `publish=true` (admin) publishes at once",
    description="201 when the import created a version (a new playbook or a new draft, "
    "published at once or not); 200 when it updated a draft, published one, or changed nothing.",
    responses={200: {"model": ImportResult}, **problem_responses(401, 403, 409, 412, 415, 422)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/PlaybookDocument"}},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    },
)
async def import_playbook(
    request: Request,
    response: Response,
    principal: PlaybookEditor,
    registry: Registry,
    db: AppDatabase,
    publish: Annotated[bool, Query(description="Publish at once (admin only).")] = False,
) -> ImportResult:
    body = await request.body()
    media_type = request.headers.get("content-type", "application/yaml")

    def work() -> ImportResult:
        # Parsed here, in the threadpool: a large or hostile document never holds the event
        # loop (and so every other request) while it is read.
        doc = formats.parse_text(body.decode("utf-8", errors="replace"), media_type)
        with db.unit_of_work() as session:
            version, outcome, created = publication.import_document_created(
                session, principal, doc, publish_now=publish
            )
            if not created:
                response.status_code = 200
            if outcome == "published":
                after_commit(session, registry.invalidate)
            return ImportResult(
                key=doc.key,
                version=version.number,
                status=VersionStatus(version.status),
                outcome=outcome,
            )

    return await run_in_threadpool(work)


@router.get(
    "/{key}", response_model=PlaybookRead, summary="A playbook and its versions", responses=READ
)
def get_playbook(key: PlaybookKeyPath, principal: Anyone, session: DbSession) -> PlaybookRead:
    return playbook_service.read_playbook(playbook_service.get_playbook(session, key))


@router.get(
    "/{key}/export",
    response_model=PlaybookDocument,
    summary="Export a version's document (published by default) as JSON or YAML",
    responses={
        200: {"content": {"application/yaml": {"schema": {"type": "string"}}}},
        **READ,
    },
)
def export_playbook(
    key: PlaybookKeyPath,
    principal: Anyone,
    session: DbSession,
    request: Request,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    format: Annotated[str | None, Query(pattern="^(json|yaml)$")] = None,
) -> Response:
    chosen = playbook_service.version_to_export(session, key, version)
    doc = playbook_service.document_of(chosen)
    accept = request.headers.get("accept", "")
    wants_yaml = format == "yaml" or (format is None and "yaml" in accept)
    headers = {"X-Playbook-Version": str(chosen.number)}
    if wants_yaml:
        return Response(formats.to_yaml(doc), media_type="application/yaml", headers=headers)
    return Response(formats.to_json(doc), media_type="application/json", headers=headers)


@router.post(
    "/{key}/versions",
    status_code=201,
    response_model=VersionRead,
    summary="Start a new draft version (a copy of the latest, or the given document)",
    responses=WRITE,
)
def create_version(
    key: PlaybookKeyPath,
    principal: PlaybookEditor,
    session: DbSession,
    response: Response,
    body: NewVersion | None = None,
) -> VersionRead:
    version = playbook_service.create_version(
        session, principal, key, body.document if body else None
    )
    return _version_response(session, response, key, version)


@router.get(
    "/{key}/versions/{number}",
    response_model=VersionRead,
    summary="A version: document, changed terms, sign-offs",
    responses=READ,
)
def get_version(
    key: PlaybookKeyPath, number: Number, principal: Anyone, session: DbSession, response: Response
) -> VersionRead:
    _playbook, version = playbook_service.get_version(session, key, number)
    return _version_response(session, response, key, version)


@router.put(
    "/{key}/versions/{number}",
    response_model=VersionRead,
    summary="Replace a draft's whole document",
    responses=WRITE,
)
def put_version(
    key: PlaybookKeyPath,
    number: Number,
    body: PlaybookDocument,
    principal: PlaybookEditor,
    session: DbSession,
    response: Response,
    if_match: VersionIfMatch = None,
) -> VersionRead:
    version = playbook_service.update_version(session, principal, key, number, body, if_match)
    return _version_response(session, response, key, version)


@router.put(
    "/{key}/versions/{number}/terms/{term_key}",
    response_model=VersionRead,
    summary="Add or replace one term of a draft",
    responses=WRITE,
)
def put_term(
    key: PlaybookKeyPath,
    number: Number,
    term_key: TermKeyPath,
    body: Term,
    principal: PlaybookEditor,
    session: DbSession,
    response: Response,
    if_match: VersionIfMatch = None,
) -> VersionRead:
    _same_key(term_key, body.key)
    version = playbook_service.put_term(session, principal, key, number, body, if_match)
    return _version_response(session, response, key, version)


@router.delete(
    "/{key}/versions/{number}/terms/{term_key}",
    response_model=VersionRead,
    summary="Remove one term from a draft",
    responses=WRITE,
)
def delete_term(
    key: PlaybookKeyPath,
    number: Number,
    term_key: TermKeyPath,
    principal: PlaybookEditor,
    session: DbSession,
    response: Response,
    if_match: VersionIfMatch = None,
) -> VersionRead:
    version = playbook_service.delete_term(session, principal, key, number, term_key, if_match)
    return _version_response(session, response, key, version)


@router.put(
    "/{key}/versions/{number}/rules/{rule_key}",
    response_model=VersionRead,
    summary="Add or replace one rule of a draft",
    responses=WRITE,
)
def put_rule(
    key: PlaybookKeyPath,
    number: Number,
    rule_key: TermKeyPath,
    body: Rule,
    principal: PlaybookEditor,
    session: DbSession,
    response: Response,
    if_match: VersionIfMatch = None,
) -> VersionRead:
    _same_key(rule_key, body.key)
    version = playbook_service.put_rule(session, principal, key, number, body, if_match)
    return _version_response(session, response, key, version)


@router.delete(
    "/{key}/versions/{number}/rules/{rule_key}",
    response_model=VersionRead,
    summary="Remove one rule from a draft",
    responses=WRITE,
)
def delete_rule(
    key: PlaybookKeyPath,
    number: Number,
    rule_key: TermKeyPath,
    principal: PlaybookEditor,
    session: DbSession,
    response: Response,
    if_match: VersionIfMatch = None,
) -> VersionRead:
    version = playbook_service.delete_rule(session, principal, key, number, rule_key, if_match)
    return _version_response(session, response, key, version)


@router.post(
    "/{key}/versions/{number}/signoffs",
    status_code=201,
    response_model=VersionRead,
    summary="Sign off a draft for an owner group (its approvers, or an admin as override)",
    responses=WRITE,
)
def sign_off(
    key: PlaybookKeyPath,
    number: Number,
    body: SignoffCreate,
    principal: Signer,
    session: DbSession,
    response: Response,
) -> VersionRead:
    publication.sign_off(session, principal, key, number, body.group, body.note)
    _playbook, version = playbook_service.get_version(session, key, number)
    return _version_response(session, response, key, version)


@router.post(
    "/{key}/versions/{number}/publish",
    response_model=VersionRead,
    summary="Publish a signed-off draft; the previous version is superseded",
    responses=WRITE,
)
def publish(
    key: PlaybookKeyPath,
    number: Number,
    principal: PlaybookEditor,
    session: DbSession,
    registry: Registry,
    response: Response,
) -> VersionRead:
    version = publication.publish(session, principal, key, number)
    # Drop the cached index only once committed, so no reader reloads the old one.
    after_commit(session, registry.invalidate)
    return _version_response(session, response, key, version)


@terms_router.get(
    "",
    response_model=CatalogPage,
    summary="The org-wide term catalog: every term key with its label, kind and owner",
    description="Read-only: a term enters the catalog, or changes owner, when a playbook its "
    "owners signed off is published.",
    responses=problem_responses(401, 403, 422),
)
def list_terms(
    principal: Anyone,
    session: DbSession,
    owner: Annotated[
        str | None, Query(pattern=KEY_PATTERN, description="Only the terms this group owns.")
    ] = None,
) -> CatalogPage:
    return CatalogPage(
        items=[CatalogTermRead.model_validate(t) for t in catalog.list_terms(session, owner)]
    )


@terms_router.get(
    "/{term_key}",
    response_model=CatalogTermRead,
    summary="One term of the catalog",
    responses=READ,
)
def get_term(term_key: TermKeyPath, principal: Anyone, session: DbSession) -> CatalogTermRead:
    return CatalogTermRead.model_validate(catalog.get_term(session, term_key))


def _same_key(path_key: str, body_key: str) -> None:
    if path_key != body_key:
        raise InvalidPlaybook(
            errors=[
                Problem(("key",), f"the body's key {body_key!r} must match the URL's {path_key!r}")
            ]
        )
