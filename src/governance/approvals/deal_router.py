"""HTTP routes that change a deal and follow it through review: store (PUT/PATCH) and check
it, submit it, withdraw it, accept a counter; they all go through `service.review` or
`service.lifecycle`, the same workflow the Salesforce pull uses."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response

from governance.approvals import service as approval_service
from governance.approvals.schemas import (
    AcceptCounter,
    RequestSummary,
    SubmissionRead,
    SubmitRequest,
)
from governance.approvals.service import review
from governance.auth.dependencies import Anyone, DealWriter
from governance.db import DbSession
from governance.deals import service as deal_service
from governance.deals.schemas import (
    DealCheckRead,
    DealRead,
    DealUpdate,
    DealUpsert,
    salesforce_id_18,
)
from governance.errors import problem_responses
from governance.http import AppSettings, ExternalIdPath, Registry, StrictRoute

router = APIRouter(prefix="/v1/deals", route_class=StrictRoute)


def _submission(submission: approval_service.Submission) -> SubmissionRead:
    check = deal_service.read_check(submission.check, submission.deal.external_id)
    check.open_requests = approval_service.open_refs(submission.requests)
    return SubmissionRead(
        deal_status=submission.deal.status,
        check=check,
        requests=[approval_service.summary(r) for r in submission.requests],
        opened=submission.changes.opened,
        updated=submission.changes.updated,
        withdrawn=submission.changes.withdrawn,
        kept=submission.changes.kept,
    )


@router.put(
    "/{external_id}",
    response_model=DealRead,
    tags=["deals"],
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
    registry: Registry,
    settings: AppSettings,
    response: Response,
) -> DealRead:
    reviewed = review.save_deal(session, registry, settings, principal, external_id, body)
    response.status_code = 201 if reviewed.created else 200
    return deal_service.read_deal(reviewed.deal)


@router.patch(
    "/{external_id}",
    response_model=DealRead,
    tags=["deals"],
    summary="Change some of a deal's fields; terms merge key by key (null removes one)",
    responses=problem_responses(401, 403, 404, 422),
)
def update_deal(
    external_id: ExternalIdPath,
    body: DealUpdate,
    principal: DealWriter,
    session: DbSession,
    registry: Registry,
    settings: AppSettings,
) -> DealRead:
    # Approvals under way follow the change at once (smart re-approval), so a deal never
    # stays "approved" with terms nobody approved.
    reviewed = review.update_deal(session, registry, settings, principal, external_id, body)
    return deal_service.read_deal(reviewed.deal)


@router.post(
    "/{external_id}/checks",
    status_code=201,
    response_model=DealCheckRead,
    tags=["deals"],
    summary="Check the deal's current terms and keep the result in its history",
    responses=problem_responses(401, 403, 404, 422),
)
def run_check(
    external_id: ExternalIdPath,
    principal: DealWriter,
    session: DbSession,
    registry: Registry,
    settings: AppSettings,
) -> DealCheckRead:
    # A deal under review or approved also has its approvals re-evaluated (smart re-approval).
    reviewed = review.check_deal(session, registry, settings, principal, external_id)
    assert reviewed.check is not None
    read = deal_service.read_check(reviewed.check, reviewed.deal.external_id)
    read.open_requests = approval_service.open_refs(reviewed.requests)
    return read


@router.post(
    "/{external_id}/submit",
    response_model=SubmissionRead,
    tags=["approvals"],
    summary="Submit the deal for approval: check it and open requests for its exceptions",
    description="Submitting again re-checks the deal: approvals stay valid for terms that got no "
    "worse, only worse terms are asked again, and no request is duplicated. A blocked deal gets "
    "409 naming the blocked terms.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def submit_deal(
    external_id: ExternalIdPath,
    principal: DealWriter,
    session: DbSession,
    registry: Registry,
    settings: AppSettings,
    body: Annotated[SubmitRequest | None, Body()] = None,
) -> SubmissionRead:
    submission = approval_service.submit(
        session,
        registry,
        principal,
        external_id,
        settings,
        (body or SubmitRequest()).justifications,
    )
    return _submission(submission)


@router.post(
    "/{external_id}/withdraw",
    response_model=DealRead,
    tags=["approvals"],
    summary="Withdraw the deal from review: open requests close as withdrawn",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def withdraw_deal(
    external_id: ExternalIdPath, principal: DealWriter, session: DbSession, settings: AppSettings
) -> DealRead:
    deal = approval_service.withdraw(session, principal, external_id, settings)
    return deal_service.read_deal(deal)


@router.post(
    "/{external_id}/accept-counter",
    response_model=SubmissionRead,
    tags=["approvals"],
    summary="Accept an approver's counter: the deal takes its values and is checked again",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def accept_counter(
    external_id: ExternalIdPath,
    body: AcceptCounter,
    principal: DealWriter,
    session: DbSession,
    registry: Registry,
    settings: AppSettings,
) -> SubmissionRead:
    submission = approval_service.accept_counter(
        session, registry, principal, external_id, body.request_id, settings
    )
    return _submission(submission)


@router.get(
    "/{external_id}/approvals",
    response_model=list[RequestSummary],
    tags=["approvals"],
    summary="The deal's approval requests, every round, oldest first",
    responses=problem_responses(401, 403, 404, 422),
)
def deal_approvals(
    external_id: ExternalIdPath, principal: Anyone, session: DbSession
) -> list[RequestSummary]:
    deal = deal_service.get_deal(session, salesforce_id_18(external_id))
    return [approval_service.summary(r) for r in approval_service.requests_of(session, deal)]
