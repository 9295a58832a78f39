"""HTTP routes for rep profiles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from governance.auth.dependencies import Admin, Anyone, PlaybookEditor
from governance.db import DbSession
from governance.errors import problem_responses
from governance.http import StrictRoute
from governance.pagination import decode_cursor, encode_cursor
from governance.reps import service as rep_service
from governance.reps.schemas import REP_PATTERN, RepPage, RepRead, RepWrite, Style

router = APIRouter(prefix="/v1/reps", tags=["reps"], route_class=StrictRoute)

RepPath = Annotated[
    str,
    Path(
        pattern=REP_PATTERN,
        max_length=100,
        description="The rep as deals name them in `owner_rep` (a Salesforce user Id, an email "
        "or a handle).",
    ),
]


@router.get(
    "",
    response_model=RepPage,
    summary="List rep profiles, newest first",
    responses=problem_responses(401, 403, 422),
)
def list_reps(
    principal: Anyone,
    session: DbSession,
    team: Annotated[str | None, Query(max_length=100)] = None,
    region: Annotated[str | None, Query(max_length=100)] = None,
    style: Style | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RepPage:
    profiles = rep_service.page(
        session,
        before_id=decode_cursor(cursor),
        limit=limit,
        team=team,
        region=region,
        style=style,
    )
    return RepPage(
        items=[rep_service.read_rep(p) for p in profiles],
        next_cursor=encode_cursor(profiles[-1].id) if len(profiles) == limit else None,
    )


@router.get(
    "/{rep}",
    response_model=RepRead,
    summary="One rep's profile",
    responses=problem_responses(401, 403, 404, 422),
)
def get_rep(rep: RepPath, principal: Anyone, session: DbSession) -> RepRead:
    return rep_service.read_rep(rep_service.get_rep(session, rep))


@router.put(
    "/{rep}",
    response_model=RepRead,
    summary="Create or replace a rep's profile (team, region, negotiation style)",
    responses={
        201: {"model": RepRead, "description": "Created"},
        **problem_responses(401, 403, 422),
    },
)
def put_rep(
    rep: RepPath,
    body: RepWrite,
    principal: PlaybookEditor,
    session: DbSession,
    response: Response,
) -> RepRead:
    profile, created = rep_service.put_rep(session, principal, rep, body)
    response.status_code = 201 if created else 200
    return rep_service.read_rep(profile)


@router.delete(
    "/{rep}",
    status_code=204,
    summary="Delete a rep's profile (deals keep their owner_rep)",
    responses=problem_responses(401, 403, 404, 422),
)
def delete_rep(rep: RepPath, principal: Admin, session: DbSession) -> Response:
    rep_service.delete_rep(session, principal, rep)
    return Response(status_code=204)
