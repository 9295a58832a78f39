"""`GET /v1/analytics/…`: JSON by default, CSV with `Accept: text/csv` (the same rows)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ValidationError

from governance.analytics import service as analytics
from governance.analytics.export import report_csv
from governance.analytics.schemas import (
    Across,
    ApprovalReport,
    ConcessionReport,
    ConsistencyReport,
    Dimension,
    Filters,
    OutcomeReport,
    ReviewReport,
    VarianceReport,
    VerdictReport,
    VersionReport,
)
from governance.auth.dependencies import AnalyticsReader, ConcessionReader
from governance.db import DbSession
from governance.engine.document import KEY_PATTERN, PLAYBOOK_KEY_PATTERN
from governance.errors import InvalidInput, problem_responses
from governance.http import StrictRoute
from governance.problems import Problem
from governance.reps.schemas import Style
from governance.types import IsoDate

router = APIRouter(prefix="/v1/analytics", tags=["analytics"], route_class=StrictRoute)

CSV = "text/csv"
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {CSV: {"schema": {"type": "string"}}}},
    **problem_responses(401, 403, 422),
}
Name = Annotated[str | None, Query(min_length=1, max_length=100)]


def _filters(
    date_from: date | None,
    date_to: date | None,
    region: str | None,
    segment: str | None,
    team: str | None,
    rep: str | None,
    style: Style | None,
    playbook: str | None,
    version: int | None,
    currency: str | None,
) -> Filters:
    try:
        return Filters.model_validate(
            {
                "from": date_from,
                "to": date_to,
                "region": region,
                "segment": segment,
                "team": team,
                "rep": rep,
                "style": style,
                "playbook": playbook,
                "version": version,
                "currency": currency,
            }
        )
    except ValidationError as exc:
        raise InvalidInput(
            "the filters are inconsistent",
            errors=[
                Problem(("query", *(e["loc"] or ("from",))), e["msg"].removeprefix("Value error, "))
                for e in exc.errors(include_url=False)
            ],
        ) from None


def _dimensions(group_by: list[Dimension]) -> list[Dimension]:
    seen: set[Dimension] = set()
    for dimension in group_by:
        if dimension in seen:
            raise InvalidInput(
                errors=[Problem(("query", "group_by"), f"{dimension.value!r} is given twice")]
            )
        seen.add(dimension)
    return group_by


class Common:
    """The filters and grouping every report takes.

    An unknown query parameter is refused, as on every route (`governance.http.StrictRoute`).
    """

    def __init__(
        self,
        date_from: Annotated[
            IsoDate | None,
            Query(
                alias="from",
                description="First date included (ISO 8601). Not on `versions`, whose windows "
                "are the versions' own lives.",
            ),
        ] = None,
        date_to: Annotated[
            IsoDate | None,
            Query(alias="to", description="Last date included (ISO 8601). Not on `versions`."),
        ] = None,
        region: Name = None,
        segment: Name = None,
        team: Name = None,
        rep: Name = None,
        style: Style | None = None,
        playbook: Annotated[str | None, Query(pattern=PLAYBOOK_KEY_PATTERN)] = None,
        version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
        currency: Annotated[
            str | None,
            Query(
                pattern=r"^[A-Z]{3}$",
                description="The deals' currency (ISO 4217), on every report: money is never "
                "converted, so filter or group by it when deals are priced in several.",
            ),
        ] = None,
        group_by: Annotated[
            list[Dimension],
            Query(
                max_length=4,
                description="Group rows by these, in this order (repeatable). Not on "
                "`versions` and `consistency`, which have rows of their own.",
            ),
        ] = [],  # noqa: B006 (FastAPI copies defaults)
    ) -> None:
        self.filters = _filters(
            date_from, date_to, region, segment, team, rep, style, playbook, version, currency
        )
        self.dimensions = _dimensions(list(group_by))


def _respond(request: Request, report: BaseModel, dimensions: list[Dimension]) -> Any:
    """The report, or its rows as CSV when the caller asks for CSV before JSON."""
    accept = request.headers.get("accept", "")
    if CSV not in accept or accept.find(CSV) > accept.find("json") >= 0:
        return report
    return Response(report_csv(report, dimensions), media_type=f"{CSV}; charset=utf-8")


Grouped = Annotated[Common, Depends()]


@router.get(
    "/variance",
    response_model=VarianceReport,
    summary="Variance scores and per-term variance ratios: mean, p50, p90, share outside band",
    description="Each deal counts once, with its latest stored check, dated by that check. "
    "Rows with `term` null describe the variance score (and the share of deals with any term "
    "outside its band); the others one term's variance ratio, most often outside first. "
    "Percentiles of the score are taken on scores rounded down to thousandths.",
    responses=RESPONSES,
)
def variance(
    principal: AnalyticsReader, session: DbSession, request: Request, common: Grouped
) -> Any:
    report = analytics.variance(session, common.filters, common.dimensions)
    return _respond(request, report, common.dimensions)


@router.get(
    "/verdicts",
    response_model=VerdictReport,
    summary="The verdict mix and the auto-approval rate",
    description="Each deal counts once, with its latest stored check, dated by that check.",
    responses=RESPONSES,
)
def verdicts(
    principal: AnalyticsReader, session: DbSession, request: Request, common: Grouped
) -> Any:
    report = analytics.verdicts(session, common.filters, common.dimensions)
    return _respond(request, report, common.dimensions)


@router.get(
    "/concessions",
    response_model=ConcessionReport,
    summary="Concession cost, the terms most conceded, and gives without gets",
    description="Won deals, dated by close date. Rows with `term` null are totals per group; "
    "term rows follow, most conceded first. An `integration` key may read one rep's own "
    "figures: it must send `X-Acting-User` and `rep` set to that same Salesforce user Id "
    "(18 characters), so a rep in Salesforce sees their own concessions and nobody else's "
    "(403 otherwise).",
    responses=RESPONSES,
)
def concessions(
    principal: ConcessionReader, session: DbSession, request: Request, common: Grouped
) -> Any:
    analytics.own_figures_only(principal, common.filters)
    report = analytics.concessions(session, common.filters, common.dimensions)
    return _respond(request, report, common.dimensions)


@router.get(
    "/approvals",
    response_model=ApprovalReport,
    summary="Approval cycle times (median, p90) per approver group and step, SLA, escalations",
    description="Decided requests (approved, rejected, countered), dated by decision. The "
    "cycle time runs from the request's first opening (the submit, or the previous step's "
    "approval) to its decision, through any escalation, counted in tenths of an hour (6 "
    "minutes, rounded down) and interpolated between them; each step's "
    "row is the group the chain names at that step, so it shows who kept the deal waiting.",
    responses=RESPONSES,
)
def approvals(
    principal: AnalyticsReader, session: DbSession, request: Request, common: Grouped
) -> Any:
    report = analytics.approvals(session, common.filters, common.dimensions)
    return _respond(request, report, common.dimensions)


@router.get(
    "/outcomes",
    response_model=OutcomeReport,
    summary="Win rate, average discount and margin kept against variance-score bands",
    description="Closed deals, dated by close date, banded by their variance score at close.",
    responses=RESPONSES,
)
def outcomes(
    principal: AnalyticsReader,
    session: DbSession,
    request: Request,
    common: Grouped,
    discount_term: Annotated[
        str, Query(pattern=KEY_PATTERN, description="The term averaged as the discount.")
    ] = "discount_pct",
) -> Any:
    report = analytics.outcomes(session, common.filters, common.dimensions, discount_term)
    return _respond(request, report, common.dimensions)


@router.get(
    "/versions",
    response_model=VersionReport,
    summary="Each playbook version against the previous one over equal windows",
    description="Closed deals measured on each version, by the date of the check that version "
    "judged: the version's first N days against the previous version's last N days, N the "
    "shorter of the two lives. "
    "`from`, `to` and `group_by` do not apply; the other filters do.",
    responses=RESPONSES,
)
def versions(
    principal: AnalyticsReader, session: DbSession, request: Request, common: Grouped
) -> Any:
    return _respond(request, analytics.versions(session, common.filters), [])


@router.get(
    "/reviews",
    response_model=ReviewReport,
    summary="Mean after-action review scores per dimension (1–7)",
    description="Reviews of closed deals, dated by the deal's close date.",
    responses=RESPONSES,
)
def reviews(
    principal: AnalyticsReader, session: DbSession, request: Request, common: Grouped
) -> Any:
    report = analytics.reviews(session, common.filters, common.dimensions)
    return _respond(request, report, common.dimensions)


@router.get(
    "/consistency",
    response_model=ConsistencyReport,
    summary="Where comparable deals get materially different outcomes across regions or teams",
    description="Won deals with the same playbook, segment and amount band are compared term "
    "by term on the mean share of the opening→walk-away range they conceded. Cells where the "
    "region (or team) that gave most and the one that gave least differ by at least "
    "`min_spread` are listed, widest first. `group_by` does not apply.",
    responses=RESPONSES,
)
def consistency(
    principal: AnalyticsReader,
    session: DbSession,
    request: Request,
    common: Grouped,
    across: Across = Across.region,
    min_deals: Annotated[
        int, Query(ge=1, le=100_000, description="Deals a region or team needs to be compared.")
    ] = 5,
    min_spread: Annotated[
        Decimal,
        Query(ge=0, le=10, max_digits=8, description="Smallest spread listed, 0–1 of the range."),
    ] = Decimal("0.1"),
) -> Any:
    report = analytics.consistency(session, common.filters, across, min_deals, min_spread)
    return _respond(request, report, [])
