"""HTTP routes: submit and withdraw deals, the approver's queue, decisions, delegation, groups."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Path, Query, Response

from governance.approvals import service as approval_service
from governance.approvals.models import RequestStatus
from governance.approvals.schemas import (
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
)
from governance.auth.dependencies import Admin, Anyone, require
from governance.auth.principal import Principal
from governance.auth.schemas import Role
from governance.db import Database, DbSession, utcnow
from governance.deals.schemas import salesforce_id_18
from governance.errors import (
    GovernanceError,
    problem_body,
    problem_responses,
)
from governance.http import (
    AppDatabase,
    AppSettings,
    Registry,
    RequestId,
    RequestIfMatch,
    StrictRoute,
    etag,
    required_if_match,
)
from governance.pagination import decode_cursor, encode_cursor
from governance.playbooks.registry import PlaybookRegistry
from governance.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/approvals", tags=["approvals"], route_class=StrictRoute)
me_router = APIRouter(prefix="/v1/me", tags=["approvals"], route_class=StrictRoute)
groups_router = APIRouter(prefix="/v1/approval-groups", tags=["approvals"], route_class=StrictRoute)

Decider = Annotated[Principal, Depends(require(Role.admin, Role.leadership, Role.approver))]
WRITE = problem_responses(401, 403, 404, 409, 412, 422)
DECIDE = problem_responses(401, 403, 404, 409, 412, 422, 428)


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
    "/{request_id:int}",
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
    "/{request_id:int}/decision",
    response_model=ApprovalRequestRead,
    summary="Approve, reject or counter a request",
    description="Send the request's ETag as If-Match: without it (or with `*`) 428, a stale one "
    "412, and a request already decided 409. Reject and counter need a reason; a counter "
    "proposes values within the approver's authority.",
    responses=DECIDE,
)
def decide(
    request_id: RequestId,
    body: DecisionCreate,
    principal: Decider,
    session: DbSession,
    registry: Registry,
    settings: AppSettings,
    response: Response,
    if_match: RequestIfMatch = None,
) -> ApprovalRequestRead:
    version = required_if_match(if_match)
    row = approval_service.decide(session, registry, principal, request_id, body, version, settings)
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
    "Each result carries the status that decision alone would have had. Each item names the "
    "`version` of the request it decides (its ETag), as read.",
    responses=problem_responses(401, 403, 422),
)
def decide_many(
    body: BatchDecisions,
    principal: Decider,
    db: AppDatabase,
    registry: Registry,
    settings: AppSettings,
) -> BatchResult:
    return BatchResult(
        results=[_decide_one(db, registry, settings, principal, item) for item in body.decisions]
    )


@router.post(
    "/{request_id:int}/reassign",
    response_model=ApprovalRequestRead,
    summary="Move a request whose group has no active member to another group (admin)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def reassign(
    request_id: RequestId,
    body: Reassign,
    principal: Admin,
    session: DbSession,
    registry: Registry,
    settings: AppSettings,
) -> ApprovalRequestRead:
    row = approval_service.reassign(
        session, registry, principal, request_id, body.group, body.reason, settings
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
def list_groups(principal: Decider, session: DbSession, settings: AppSettings) -> list[GroupRead]:
    return approval_service.list_groups(session, settings)


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
    settings: AppSettings,
    response: Response,
) -> GroupRead:
    read, created = approval_service.put_group(session, principal, name, body, settings)
    response.status_code = 201 if created else 200
    return read
