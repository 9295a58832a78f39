"""HTTP routes for checks (the Salesforce page's on-demand call) and stored deals."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from governance.approvals import service as approval_service
from governance.auth.dependencies import Anyone, DealWriter, authenticate
from governance.db import DbSession
from governance.deals import service as deal_service
from governance.deals.repository import DealRepository
from governance.deals.schemas import (
    CheckRequest,
    CheckResponse,
    DealCheckPage,
    DealCheckRead,
    DealPage,
    DealRead,
    DealUpdate,
    DealUpsert,
    salesforce_id_18,
)
from governance.engine.results import Verdict
from governance.errors import problem_responses
from governance.pagination import decode_cursor, encode_cursor
from governance.playbooks.registry import PlaybookRegistry

checks_router = APIRouter(prefix="/v1/checks", tags=["checks"])
router = APIRouter(prefix="/v1/deals", tags=["deals"])

ExternalIdPath = Annotated[
    str,
    Path(
        pattern=r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$",
        description="The Salesforce Opportunity Id (15 or 18 characters).",
    ),
]


@checks_router.post(
    "",
    response_model=CheckResponse,
    summary="Check proposed terms against the playbook, storing nothing",
    responses=problem_responses(401, 403, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/CheckRequest"}}
            },
        }
    },
)
async def check_terms(request: Request) -> Response:
    # The Salesforce page calls this on every opportunity view, so it skips FastAPI's
    # dependency and body machinery: same contract and errors, less work per request.
    await authenticate(request)  # every role may check
    try:
        body = CheckRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None
    registry: PlaybookRegistry = request.app.state.registry
    index = await registry.published()
    return Response(orjson.dumps(deal_service.check(index, body)), media_type="application/json")


@router.get(
    "",
    response_model=DealPage,
    summary="List deals, newest first",
    responses=problem_responses(401, 403, 422),
)
def list_deals(
    principal: Anyone,
    session: DbSession,
    region: Annotated[str | None, Query(max_length=100)] = None,
    segment: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    verdict: Verdict | None = None,
    owner_rep: Annotated[str | None, Query(max_length=100)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DealPage:
    deals = DealRepository(session).page(
        before_id=decode_cursor(cursor),
        limit=limit,
        region=region,
        segment=segment,
        status=status,
        verdict=verdict.value if verdict else None,
        owner_rep=owner_rep,
    )
    return DealPage(
        items=[deal_service.read_deal(d) for d in deals],
        next_cursor=encode_cursor(deals[-1].id) if len(deals) == limit else None,
    )


@router.put(
    "/{external_id}",
    response_model=DealRead,
    summary="Create or replace the deal for a Salesforce Opportunity Id",
    responses={
        201: {"model": DealRead, "description": "Created"},
        **problem_responses(401, 403, 422),
    },
)
def upsert_deal(
    external_id: ExternalIdPath,
    body: DealUpsert,
    principal: DealWriter,
    session: DbSession,
    request: Request,
    response: Response,
) -> DealRead:
    deal, created, recheck = deal_service.upsert_deal(session, principal, external_id, body)
    if recheck:
        approval_service.recheck(
            session, request.app.state.registry, principal, external_id, request.app.state.settings
        )
    response.status_code = 201 if created else 200
    return deal_service.read_deal(deal)


@router.patch(
    "/{external_id}",
    response_model=DealRead,
    summary="Change some of a deal's fields; terms merge key by key (null removes one)",
    responses=problem_responses(401, 403, 404, 422),
)
def update_deal(
    external_id: ExternalIdPath,
    body: DealUpdate,
    principal: DealWriter,
    session: DbSession,
    request: Request,
) -> DealRead:
    deal, recheck = deal_service.update_deal(session, principal, external_id, body)
    if recheck:
        # Approvals under way follow the change at once (smart re-approval), so a deal never
        # stays "approved" with terms nobody approved.
        approval_service.recheck(
            session, request.app.state.registry, principal, external_id, request.app.state.settings
        )
    return deal_service.read_deal(deal)


@router.get(
    "/{external_id}",
    response_model=DealRead,
    summary="A deal with its latest verdict",
    responses=problem_responses(401, 403, 404, 422),
)
def get_deal(external_id: ExternalIdPath, principal: Anyone, session: DbSession) -> DealRead:
    return deal_service.read_deal(deal_service.get_deal(session, external_id))


@router.post(
    "/{external_id}/checks",
    status_code=201,
    response_model=DealCheckRead,
    summary="Check the deal's current terms and keep the result in its history",
    responses=problem_responses(401, 403, 404, 422),
)
def run_check(
    external_id: ExternalIdPath, principal: DealWriter, session: DbSession, request: Request
) -> DealCheckRead:
    # A deal under review or approved also has its approvals re-evaluated (smart re-approval).
    check, requests = approval_service.recheck(
        session, request.app.state.registry, principal, external_id, request.app.state.settings
    )
    read = deal_service.read_check(check, salesforce_id_18(external_id))
    read.open_requests = approval_service.open_refs(requests)
    return read


@router.get(
    "/{external_id}/checks",
    response_model=DealCheckPage,
    summary="The deal's check history, newest first",
    responses=problem_responses(401, 403, 404, 422),
)
def list_checks(
    external_id: ExternalIdPath,
    principal: Anyone,
    session: DbSession,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> DealCheckPage:
    deal = deal_service.get_deal(session, external_id)
    checks = DealRepository(session).checks(deal.id, before_id=decode_cursor(cursor), limit=limit)
    return DealCheckPage(
        items=[deal_service.read_check(c, deal.external_id) for c in checks],
        next_cursor=encode_cursor(checks[-1].id) if len(checks) == limit else None,
    )
