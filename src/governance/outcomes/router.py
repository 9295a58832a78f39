"""HTTP routes for a deal's outcome, preparation and after-action review."""

from __future__ import annotations

from fastapi import APIRouter, Response

from governance.auth.dependencies import Anyone, DealWriter
from governance.db import DbSession
from governance.errors import problem_responses
from governance.http import (
    ExternalIdPath,
    PreparationIfMatch,
    Registry,
    StrictRoute,
    etag,
    parse_if_match,
)
from governance.outcomes import service as outcome_service
from governance.outcomes.schemas import (
    AfterActionReviewRead,
    AfterActionReviewWrite,
    OutcomeCreate,
    OutcomeRead,
    PreparationRead,
    PreparationWrite,
)

router = APIRouter(prefix="/v1/deals", tags=["outcomes"], route_class=StrictRoute)


@router.post(
    "/{external_id}/outcome",
    response_model=OutcomeRead,
    status_code=201,
    summary="Record how the deal closed, with per-term conceded, held, traded and cost",
    description="Creates the outcome (201) or replaces an earlier one (200). Final terms default "
    "to the deal's current terms and are measured against the playbook version the deal was "
    "checked with.",
    responses={
        200: {"model": OutcomeRead, "description": "An earlier outcome was replaced"},
        **problem_responses(401, 403, 404, 422),
    },
)
def record_outcome(
    external_id: ExternalIdPath,
    body: OutcomeCreate,
    principal: DealWriter,
    session: DbSession,
    registry: Registry,
    response: Response,
) -> OutcomeRead:
    read, created = outcome_service.close_deal(
        session,
        registry,
        principal,
        external_id,
        won=body.won,
        close_date=body.close_date,
        final_terms=body.final_terms,
        loss_reason=body.loss_reason,
        trades=body.trades,
    )
    response.status_code = 201 if created else 200
    return read


@router.get(
    "/{external_id}/outcome",
    response_model=OutcomeRead,
    summary="How the deal closed, with its per-term figures",
    responses=problem_responses(401, 403, 404, 422),
)
def get_outcome(external_id: ExternalIdPath, principal: Anyone, session: DbSession) -> OutcomeRead:
    return outcome_service.get_outcome(session, external_id)


@router.put(
    "/{external_id}/preparation",
    response_model=PreparationRead,
    summary="Create or replace the rep's preparation for the deal",
    description="Goal, per key term the opening, goal and bottom line, the customer's likely "
    "interests and a three-item pre-mortem. Send the ETag as If-Match to replace safely.",
    responses={
        201: {"model": PreparationRead, "description": "Created"},
        **problem_responses(401, 403, 404, 412, 422),
    },
)
def put_preparation(
    external_id: ExternalIdPath,
    body: PreparationWrite,
    principal: DealWriter,
    session: DbSession,
    registry: Registry,
    response: Response,
    if_match: PreparationIfMatch = None,
) -> PreparationRead:
    read, created = outcome_service.put_preparation(
        session, registry, principal, external_id, body, parse_if_match(if_match)
    )
    response.status_code = 201 if created else 200
    response.headers["ETag"] = etag(read.version)
    return read


@router.get(
    "/{external_id}/preparation",
    response_model=PreparationRead,
    summary="The rep's preparation for the deal, with its ETag",
    responses=problem_responses(401, 403, 404, 422),
)
def get_preparation(
    external_id: ExternalIdPath, principal: Anyone, session: DbSession, response: Response
) -> PreparationRead:
    read = outcome_service.get_preparation(session, external_id)
    response.headers["ETag"] = etag(read.version)
    return read


@router.put(
    "/{external_id}/after-action-review",
    response_model=AfterActionReviewRead,
    summary="File or replace the after-action review of a closed deal",
    description="The subjective value inventory: instrumental, process, relationship and self "
    "outcomes, each from 1 to 7, with a note. Only once the deal has an outcome (else 409).",
    responses={
        201: {"model": AfterActionReviewRead, "description": "Created"},
        **problem_responses(401, 403, 404, 409, 422),
    },
)
def put_review(
    external_id: ExternalIdPath,
    body: AfterActionReviewWrite,
    principal: DealWriter,
    session: DbSession,
    response: Response,
) -> AfterActionReviewRead:
    read, created = outcome_service.put_review(session, principal, external_id, body)
    response.status_code = 201 if created else 200
    return read


@router.get(
    "/{external_id}/after-action-review",
    response_model=AfterActionReviewRead,
    summary="The deal's after-action review",
    responses=problem_responses(401, 403, 404, 422),
)
def get_review(
    external_id: ExternalIdPath, principal: Anyone, session: DbSession
) -> AfterActionReviewRead:
    return outcome_service.get_review(session, external_id)
