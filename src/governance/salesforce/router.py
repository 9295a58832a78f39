"""HTTP routes: sync status, the push outbox, and Salesforce Outbound Messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from governance.auth.dependencies import Admin, require
from governance.auth.principal import Principal
from governance.auth.schemas import Role
from governance.db import DbSession
from governance.errors import problem_responses
from governance.http import AppDatabase, AppSettings, StrictRoute
from governance.pagination import MAX_ID, decode_cursor, encode_cursor
from governance.salesforce import service as sf_service
from governance.salesforce.repository import SalesforceRepository
from governance.salesforce.schemas import OutboxItemRead, OutboxPage, SyncStatus

router = APIRouter(prefix="/v1/salesforce", tags=["salesforce"], route_class=StrictRoute)

Operator = Annotated[Principal, Depends(require(Role.admin, Role.integration, Role.leadership))]


@router.get(
    "/status",
    response_model=SyncStatus,
    summary="The sync: watermark, recent runs with their counts, API usage, outbox size",
    responses=problem_responses(401, 403),
)
def sync_status(principal: Operator, session: DbSession, settings: AppSettings) -> SyncStatus:
    return sf_service.status(session, settings)


@router.get(
    "/outbox",
    response_model=OutboxPage,
    summary="Opportunities waiting to be written back, or parked as dead, with their last error",
    responses=problem_responses(401, 403, 422),
)
def outbox(
    principal: Operator,
    session: DbSession,
    status: Annotated[str | None, Query(pattern="^(pending|dead)$")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> OutboxPage:
    rows = SalesforceRepository(session).outbox_page(
        status=status, after_id=decode_cursor(cursor), limit=limit
    )
    return OutboxPage(
        items=[sf_service.read_item(item, external_id) for item, external_id in rows],
        next_cursor=encode_cursor(rows[-1][0].id) if len(rows) == limit else None,
    )


@router.post(
    "/outbox/{item_id}/retry",
    response_model=OutboxItemRead,
    summary="Requeue one outbox item now (a dead one gets a fresh set of attempts)",
    responses=problem_responses(401, 403, 404, 422),
)
def retry(
    item_id: Annotated[int, Path(ge=1, le=MAX_ID)], principal: Admin, session: DbSession
) -> OutboxItemRead:
    return sf_service.retry(session, principal, item_id)


@router.post(
    "/outbound-messages",
    summary="Salesforce Outbound Messages (SOAP): queue a fetch of the named opportunities",
    description="Configure the Outbound Message's endpoint as "
    "`…/v1/salesforce/outbound-messages?secret=<GOVERNANCE_SALESFORCE__OUTBOUND_MESSAGE_SECRET>`. "
    "The organization id must match. Only the Ids are used: the opportunities are fetched from "
    "Salesforce. At most 100 notifications per message (Salesforce's own limit), each naming an "
    "ASCII 15- or 18-character Salesforce Id; anything else is refused with 400 naming the "
    "field. Answers with the SOAP Ack.",
    response_class=Response,
    responses={
        200: {"content": {"text/xml": {"schema": {"type": "string"}}}, "description": "Ack"},
        **problem_responses(400, 403, 422),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/xml": {"schema": {"type": "string"}}},
        }
    },
)
async def outbound_messages(
    request: Request,
    db: AppDatabase,
    settings: AppSettings,
    secret: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    # The secret is the caller's only credential: checked before a byte of the body is read.
    sf_service.check_outbound_secret(settings, secret)
    body = await request.body()

    def queue() -> None:
        with db.unit_of_work() as session:
            sf_service.outbound_message(session, settings, body, secret)

    await run_in_threadpool(queue)
    return Response(sf_service.ACK, media_type="text/xml")
