"""HTTP routes: submit and withdraw deals, the approver's queue, decisions, delegation, groups."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from sqlalchemy.orm import Session

from governance.approvals import service as approval_service
from governance.approvals.schemas import (
    AcceptCounter,
    ApprovalPage,
    ApprovalRequestRead,
    BatchDecision,
    BatchDecisions,
    BatchItemResult,
    BatchResult,
    DecisionCreate,
    DelegationRead,
    DelegationWrite,
    GroupRead,
    GroupWrite,
    MyDelegations,
    Reassign,
    RequestStatus,
    RequestSummary,
    SubmissionRead,
    SubmitRequest,
)
from governance.auth.dependencies import Admin, Anyone, DealWriter, require
from governance.auth.principal import Principal
from governance.auth.schemas import Role
from governance.db import Database, DbSession, utcnow
from governance.deals import service as deal_service
from governance.deals.router import ExternalIdPath
from governance.deals.schemas import DealRead, salesforce_id_18
from governance.errors import (
    GovernanceError,
    PreconditionFailed,
    problem_body,
    problem_responses,
)
from governance.pagination import MAX_ID, decode_cursor, encode_cursor
from governance.playbooks.registry import PlaybookRegistry
from governance.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/approvals", tags=["approvals"])
deals_router = APIRouter(prefix="/v1/deals", tags=["approvals"])
me_router = APIRouter(prefix="/v1/me", tags=["approvals"])
groups_router = APIRouter(prefix="/v1/approval-groups", tags=["approvals"])

Decider = Annotated[Principal, Depends(require(Role.admin, Role.leadership, Role.approver))]
RequestId = Annotated[int, Path(ge=1, le=MAX_ID)]
IfMatch = Annotated[
    str | None,
    Header(max_length=200, description="The request's ETag; a stale one gets 412."),
]
WRITE = problem_responses(401, 403, 404, 409, 412, 422)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _registry(request: Request) -> PlaybookRegistry:
    registry: PlaybookRegistry = request.app.state.registry
    return registry


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    """The version an If-Match names; `*` or no header means "whatever is current"."""
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not re.fullmatch(r"[0-9]{1,10}", text):
        raise PreconditionFailed(f"If-Match {value!r} is not an ETag this API issued")
    return int(text)


def _submission(session: Session, submission: approval_service.Submission) -> SubmissionRead:
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


# --- deals ------------------------------------------------------------------------------------


@deals_router.post(
    "/{external_id}/submit",
    response_model=SubmissionRead,
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
    request: Request,
    body: Annotated[SubmitRequest | None, Body()] = None,
) -> SubmissionRead:
    submission = approval_service.submit(
        session,
        _registry(request),
        principal,
        external_id,
        _settings(request),
        (body or SubmitRequest()).justifications,
    )
    return _submission(session, submission)


@deals_router.post(
    "/{external_id}/withdraw",
    response_model=DealRead,
    summary="Withdraw the deal from review: open requests close as withdrawn",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def withdraw_deal(
    external_id: ExternalIdPath, principal: DealWriter, session: DbSession, request: Request
) -> DealRead:
    deal = approval_service.withdraw(session, principal, external_id, _settings(request))
    return deal_service.read_deal(deal)


@deals_router.post(
    "/{external_id}/accept-counter",
    response_model=SubmissionRead,
    summary="Accept an approver's counter: the deal takes its values and is checked again",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def accept_counter(
    external_id: ExternalIdPath,
    body: AcceptCounter,
    principal: DealWriter,
    session: DbSession,
    request: Request,
) -> SubmissionRead:
    submission = approval_service.accept_counter(
        session, _registry(request), principal, external_id, body.request_id, _settings(request)
    )
    return _submission(session, submission)


@deals_router.get(
    "/{external_id}/approvals",
    response_model=list[RequestSummary],
    summary="The deal's approval requests, every round, oldest first",
    responses=problem_responses(401, 403, 404, 422),
)
def deal_approvals(
    external_id: ExternalIdPath, principal: Anyone, session: DbSession
) -> list[RequestSummary]:
    deal = deal_service.get_deal(session, salesforce_id_18(external_id))
    return [approval_service.summary(r) for r in approval_service.requests_of(session, deal)]


# --- the queue and decisions ------------------------------------------------------------------


@router.get(
    "",
    response_model=ApprovalPage,
    summary="The caller's approval queue, oldest first, with everything needed to decide",
    description="Pending requests of the caller's groups and of anyone who delegated to them. "
    "Admins and leadership without groups see every group.",
    responses=problem_responses(401, 403, 422),
)
def queue(
    principal: Decider,
    session: DbSession,
    status: RequestStatus = RequestStatus.pending,
    group: Annotated[str | None, Query(max_length=100)] = None,
    deal: Annotated[
        str | None,
        Query(pattern=r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$", description="Opportunity Id"),
    ] = None,
    min_age_hours: Annotated[
        int | None, Query(ge=0, le=100_000, description="Only requests open at least this long.")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    page = approval_service.queue(
        session,
        principal,
        status=status.value,
        group=group,
        deal_external_id=salesforce_id_18(deal) if deal else None,
        opened_before=utcnow() - timedelta(hours=min_age_hours) if min_age_hours else None,
        after_id=decode_cursor(cursor),
        limit=limit,
    )
    # Served as JSON built without pydantic (see approvals/serialize.py); the schema is
    # still `ApprovalPage`, which the tests and the contract tests check it against.
    body = {
        "items": page,
        "next_cursor": encode_cursor(page[-1]["id"]) if len(page) == limit else None,
    }
    return Response(orjson.dumps(body), media_type="application/json")


@router.get(
    "/{request_id}",
    response_model=ApprovalRequestRead,
    summary="One approval request, with its ETag",
    responses=problem_responses(401, 403, 404, 422),
)
def get_request(
    request_id: RequestId, principal: Anyone, session: DbSession, response: Response
) -> ApprovalRequestRead:
    read = approval_service.get_request(session, request_id)
    response.headers["ETag"] = etag(read.version)
    return read


@router.post(
    "/{request_id}/decision",
    response_model=ApprovalRequestRead,
    summary="Approve, reject or counter a request",
    description="Send the request's ETag as If-Match: a stale one gets 412, and a request "
    "already decided gets 409. Reject and counter need a reason; a counter proposes values "
    "within the approver's authority.",
    responses=WRITE,
)
def decide(
    request_id: RequestId,
    body: DecisionCreate,
    principal: Decider,
    session: DbSession,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> ApprovalRequestRead:
    row = approval_service.decide(
        session,
        _registry(request),
        principal,
        request_id,
        body,
        parse_if_match(if_match),
        _settings(request),
    )
    response.headers["ETag"] = etag(row.lock_version)
    return approval_service.get_request(session, row.id)


def _decide_one(
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    principal: Principal,
    item: BatchDecision,
) -> BatchItemResult:
    try:
        with db.unit_of_work() as session:
            row = approval_service.decide(
                session, registry, principal, item.id, item, item.version, settings
            )
            read = approval_service.get_request(session, row.id)
    except GovernanceError as exc:
        return BatchItemResult(id=item.id, status=exc.status_code, problem=problem_body(exc))
    except Exception:  # this item failed unexpectedly; the ones before it stand, say so
        log.exception("batch decision on request %s failed", item.id)
        problem = {"type": "about:blank", "title": "Internal error", "status": 500}
        return BatchItemResult(id=item.id, status=500, problem=problem)
    return BatchItemResult(id=item.id, status=200, request=read)


@router.post(
    "/decisions",
    response_model=BatchResult,
    summary="Decide several requests; each succeeds or fails on its own",
    description="Every item is its own transaction: one failure does not undo the others. "
    "Each result carries the status that decision alone would have had.",
    responses=problem_responses(401, 403, 422),
)
def decide_many(body: BatchDecisions, principal: Decider, request: Request) -> BatchResult:
    db: Database = request.app.state.db
    registry, settings = _registry(request), _settings(request)
    return BatchResult(
        results=[_decide_one(db, registry, settings, principal, item) for item in body.decisions]
    )


@router.post(
    "/{request_id}/reassign",
    response_model=ApprovalRequestRead,
    summary="Move a request whose group has no active member to another group (admin)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def reassign(
    request_id: RequestId, body: Reassign, principal: Admin, session: DbSession, request: Request
) -> ApprovalRequestRead:
    row = approval_service.reassign(
        session,
        _registry(request),
        principal,
        request_id,
        body.group,
        body.reason,
        _settings(request),
    )
    return approval_service.get_request(session, row.id)


# --- delegation -------------------------------------------------------------------------------


@me_router.get(
    "/delegation",
    response_model=MyDelegations,
    summary="The delegation you gave and those you hold now",
    responses=problem_responses(401, 403),
)
def my_delegation(principal: Decider, session: DbSession) -> MyDelegations:
    return approval_service.my_delegations(session, principal)


@me_router.put(
    "/delegation",
    response_model=DelegationRead,
    summary="Let someone decide for your groups while you are away",
    description="The delegate acts for the groups you hold yourself; delegations you hold "
    "cannot be passed on. Decisions record both the delegate and you.",
    responses={201: {"model": DelegationRead, "description": "Created"}, **WRITE},
)
def set_delegation(
    body: DelegationWrite, principal: Decider, session: DbSession, response: Response
) -> DelegationRead:
    read, created = approval_service.set_delegation(session, principal, body)
    response.status_code = 201 if created else 200
    return read


@me_router.delete(
    "/delegation",
    status_code=204,
    summary="End your delegation",
    responses=problem_responses(401, 403, 404),
)
def clear_delegation(principal: Decider, session: DbSession) -> Response:
    approval_service.clear_delegation(session, principal)
    return Response(status_code=204)


# --- approver groups --------------------------------------------------------------------------


@groups_router.get(
    "",
    response_model=list[GroupRead],
    summary="Approver groups with their SLA, webhook and escalation settings",
    responses=problem_responses(401, 403),
)
def list_groups(principal: Decider, session: DbSession, request: Request) -> list[GroupRead]:
    return approval_service.list_groups(session, _settings(request))


@groups_router.put(
    "/{name}",
    response_model=GroupRead,
    summary="Set a group's SLA, Slack-compatible webhook and escalation group (admin)",
    responses={
        201: {"model": GroupRead, "description": "Created"},
        **problem_responses(401, 403, 422),
    },
)
def put_group(
    name: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,99}$")],
    body: GroupWrite,
    principal: Admin,
    session: DbSession,
    request: Request,
    response: Response,
) -> GroupRead:
    read, created = approval_service.put_group(session, principal, name, body, _settings(request))
    response.status_code = 201 if created else 200
    return read
