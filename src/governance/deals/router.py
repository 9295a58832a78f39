"""HTTP routes for checks (the Salesforce page's on-demand call) and stored deals."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from governance.auth.dependencies import AnalyticsReader, Anyone, authenticate
from governance.db import DbSession
from governance.deals import impact as deal_impact
from governance.deals import service as deal_service
from governance.deals.repository import DealRepository
from governance.deals.schemas import (
    CheckRequest,
    CheckResponse,
    DealCheckPage,
    DealPage,
    DealRead,
    GroupImpactRead,
    ImpactRead,
    TermImpactRead,
    VerdictMove,
)
from governance.engine.document import PLAYBOOK_KEY_PATTERN
from governance.engine.results import Verdict
from governance.errors import Conflict, problem_responses
from governance.http import ExternalIdPath, StrictRoute, read_json, registry_of, require_json
from governance.observability import counters
from governance.pagination import decode_cursor, encode_cursor

checks_router = APIRouter(prefix="/v1/checks", tags=["checks"], route_class=StrictRoute)
router = APIRouter(prefix="/v1/deals", tags=["deals"], route_class=StrictRoute)
# A playbook version measured on deals: served under the playbook's path, answered from deals.
impact_router = APIRouter(prefix="/v1/playbooks", tags=["playbooks"], route_class=StrictRoute)


@checks_router.post(
    "",
    response_model=CheckResponse,
    summary="Check proposed terms against the playbook, storing nothing",
    responses=problem_responses(401, 403, 415, 422),
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
    require_json(request)
    try:
        body = CheckRequest.model_validate(await read_json(request))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None
    index = await registry_of(request).published()
    result = deal_service.check(index, body)
    counters.count_check(result["verdict"])
    return Response(orjson.dumps(result), media_type="application/json")


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


@router.get(
    "/{external_id}",
    response_model=DealRead,
    summary="A deal with its latest verdict",
    responses=problem_responses(401, 403, 404, 422),
)
def get_deal(external_id: ExternalIdPath, principal: Anyone, session: DbSession) -> DealRead:
    return deal_service.read_deal(deal_service.get_deal(session, external_id))


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


@impact_router.get(
    "/{key}/versions/{number}/impact",
    response_model=ImpactRead,
    summary="A version's effect on recent deals, against the published (or previous) version",
    description="Re-checks the latest terms of the deals last checked against this playbook in "
    "the last `days` days (the newest `limit`) under the version and under its baseline (for a "
    "draft, the published version; else the version before), with the engine alone: nothing is "
    "stored. 409 when the version has no baseline to compare with.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def playbook_impact(
    key: Annotated[str, Path(pattern=PLAYBOOK_KEY_PATTERN, max_length=64)],
    number: Annotated[int, Path(ge=1, le=1_000_000)],
    principal: AnalyticsReader,
    session: DbSession,
    days: Annotated[int, Query(ge=1, le=deal_impact.MAX_DAYS)] = deal_impact.DEFAULT_DAYS,
    limit: Annotated[int, Query(ge=1, le=deal_impact.MAX_LIMIT)] = deal_impact.DEFAULT_LIMIT,
) -> ImpactRead:
    measured = deal_impact.impact_of_version(session, key, number, days=days, limit=limit)
    if measured is None or measured.version is None or measured.baseline is None:
        raise Conflict(
            f"version {number} of {key!r} has no published or earlier version to compare with"
        )
    return ImpactRead(
        key=measured.key,
        version=measured.version,
        baseline=measured.baseline,
        days=measured.days,
        limit=measured.limit,
        since=measured.since,
        deals=measured.deals,
        skipped=measured.skipped,
        changed=measured.changed,
        verdicts_before=measured.verdicts_before,
        verdicts_after=measured.verdicts_after,
        moves=[VerdictMove(before=b, after=a, deals=n) for b, a, n in measured.moves],
        terms=[
            TermImpactRead(term=t.key, label=t.label, start=t.start, stop=t.stop)
            for t in measured.terms
        ],
        groups=[
            GroupImpactRead(group=g.group, before=g.before, after=g.after) for g in measured.groups
        ],
    )
