"""Analytics dashboards: one page per question leadership asks, drawn as charts over the
analytics service's reports, with the API's filters as a GET form and the shown report as CSV.

The figures come from `governance.analytics.service` (the same calls as `/v1/analytics/…`) and
the CSV from `governance.analytics.export` (the API's own CSV form), so a page, its download
and the API always agree. The table under the charts is that CSV, read back.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

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
from governance.db import DbSession, utcnow
from governance.reps.schemas import Style
from governance.web.charts import Chart, Series, series
from governance.web.dependencies import DeciderViewer, PageError, PageRoute
from governance.web.rendering import label, render_page

router = APIRouter(route_class=PageRoute)

HUNDRED = Decimal(100)
NONE = "none"  # the "group by" choice for no grouping
DISCOUNT_TERM = "discount_pct"
TOP_CELLS = 12

# The report filters, in the form's order: (query name, label, hint).
FILTERS: tuple[tuple[str, str, str], ...] = (
    ("from", "From", ""),
    ("to", "To", ""),
    ("region", "Region", "as the deal states it, e.g. EMEA"),
    ("segment", "Segment", "e.g. enterprise"),
    ("team", "Team", ""),
    ("rep", "Rep", "the rep's name"),
    ("style", "Rep style", ""),
    ("playbook", "Playbook", "its key"),
    ("version", "Playbook version", ""),
    ("currency", "Currency", "ISO code, e.g. EUR"),
)
FIELD_HINTS = {
    "from": "Enter a date as YYYY-MM-DD.",
    "to": "Enter a date as YYYY-MM-DD.",
    "version": "Enter a version number (1 or more).",
    "currency": "Enter three capital letters, like EUR.",
    "playbook": "Enter a playbook key: lower-case letters, digits, _ and -.",
    "style": "Choose one of the styles.",
}
STYLES = tuple(s.value for s in Style)
VERDICT_TONES = (("auto_approved", "ok"), ("needs_approval", "warn"), ("blocked", "bad"))


@dataclass
class Asked:
    """What the page was asked for: the form's values, the parsed filters, and the problems."""

    values: dict[str, str]
    filters: Filters
    dimensions: list[Dimension]
    errors: dict[str, str] = field(default_factory=dict)
    across: Across = Across.region
    min_deals: int = 5
    min_spread: Decimal = Decimal("0.1")

    def query(self) -> str:
        """The query string that asks for this again (for the CSV link)."""
        return urlencode([(k, v) for k, v in self.values.items() if v])


@dataclass(frozen=True)
class Dashboard:
    """One question: the report it runs, the charts it draws, the groupings it offers."""

    slug: str
    title: str
    question: str
    run: Callable[[Session, Asked], BaseModel]
    charts: Callable[[Any, Asked], list[Chart]]
    groupings: tuple[Dimension | None, ...] = ()  # the first is the default
    dated: bool = True
    note: str = ""


# --- labels --------------------------------------------------------------------------------------


def _group_label(group: dict[str, Any], dimensions: Sequence[Dimension]) -> str:
    if not dimensions:
        return "all deals"
    parts = []
    for d in dimensions:
        value = group.get(d.value)
        if value is None:
            parts.append("(not set)")
        elif d is Dimension.version:
            parts.append(f"v{value}")
        else:
            parts.append(label(value))
    return " · ".join(parts)


def _pct(value: Decimal | None) -> Decimal | None:
    return None if value is None else value * HUNDRED


# --- charts per report -----------------------------------------------------------------------------


def _variance_charts(report: VarianceReport, asked: Asked) -> list[Chart]:
    dims = asked.dimensions
    if not dims:
        terms = [r for r in report.rows if r.term is not None]
        names = tuple(label(r.term) for r in terms)
        return [
            Chart("variance-terms-outside", "bar", "Deals with the term outside its band",
                  names, (series("outside band", [_pct(r.outside_band_share) for r in terms]),),
                  unit="%", axis="term",
                  summary="For each term, the share of deals stating it that are outside its "
                  "band."),
            Chart("variance-terms-mean", "bar", "Mean variance ratio per term", names,
                  (series("mean ratio", [r.mean for r in terms]),), axis="term",
                  summary="How far, on average, each term sits from its band (0: within)."),
        ]  # fmt: skip
    totals = [r for r in report.rows if r.term is None]
    groups = tuple(_group_label(r.group, dims) for r in totals)
    axis = " · ".join(d.value for d in dims)
    return [
        Chart("variance-score", "bar", "Variance score by " + label(axis), groups,
              (series("mean", [r.mean for r in totals]), series("p90", [r.p90 for r in totals])),
              axis=axis, summary="The mean and 90th percentile of deals' variance scores."),
        Chart("variance-outside", "bar", "Deals with any term outside its band", groups,
              (series("outside band", [_pct(r.outside_band_share) for r in totals]),),
              unit="%", axis=axis),
    ]  # fmt: skip


def _verdict_charts(report: VerdictReport, asked: Asked) -> list[Chart]:
    months = tuple(_group_label(r.group, asked.dimensions) for r in report.rows)
    mix = tuple(
        Series(label(name), tuple(getattr(r, name) for r in report.rows), tone)
        for name, tone in VERDICT_TONES
    )
    return [
        Chart("verdict-mix", "stacked", "Verdict mix by month", months, mix, axis="month",
              summary="Deals by the verdict of their latest check, month by month."),
        Chart("verdict-auto", "line", "Auto-approval rate by month", months,
              (series("auto-approval rate", [_pct(r.auto_approval_rate) for r in report.rows]),),
              unit="%", axis="month"),
    ]  # fmt: skip


def _concession_charts(report: ConcessionReport, asked: Asked) -> list[Chart]:
    dims = asked.dimensions
    totals = [r for r in report.rows if r.term is None]
    # Term rows count concessions (deal × term), so they add up across terms and groups; a
    # total row's `conceded` counts deals instead, and is not summed here.
    by_term: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_group: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in report.rows:
        if r.term is not None:
            for tally in (by_term[r.term], by_group[_group_label(r.group, dims)]):
                tally[0] += r.conceded
                tally[1] += r.gives_without_gets
    terms = sorted(by_term, key=lambda t: (-by_term[t][0], t))
    axis = " · ".join(d.value for d in dims) or "deals"
    charts = [
        Chart("concessions-terms", "stacked", "Concessions by term", tuple(map(label, terms)),
              (Series("given for a get", tuple(by_term[t][0] - by_term[t][1] for t in terms)),
               Series("given without a get", tuple(by_term[t][1] for t in terms), "bad")),
              axis="term", summary="Won deals that conceded each term, and how many of those "
              "concessions got nothing in return."),
    ]  # fmt: skip
    if dims:
        groups = tuple(_group_label(r.group, dims) for r in totals)
        charts += [
            Chart("concessions-groups", "stacked", "Concessions by " + label(axis), groups,
                  (Series("given for a get",
                          tuple(by_group[g][0] - by_group[g][1] for g in groups)),
                   Series("given without a get", tuple(by_group[g][1] for g in groups), "bad")),
                  axis=axis,
                  summary="Concessions (deal × term) made by each group's won deals."),
            Chart("concessions-cost", "bar", "Concession cost per won deal", groups,
                  (series("cost per deal", [r.cost_per_deal for r in totals]),), axis=axis,
                  summary="In each deal's own currency, summed: filter by currency to compare "
                  "like with like."),
        ]  # fmt: skip
    return charts


def _approval_charts(report: ApprovalReport, asked: Asked) -> list[Chart]:
    steps = [r for r in report.rows if r.approver_group is not None]
    names = tuple(
        (_group_label(r.group, asked.dimensions) + " · " if asked.dimensions else "")
        + f"{label(r.approver_group)} · step {r.step}"
        for r in steps
    )
    return [
        Chart("approvals-cycle", "bar", "Approval cycle time by group and step", names,
              (series("median", [r.cycle_hours_p50 for r in steps]),
               series("p90", [r.cycle_hours_p90 for r in steps])),
              unit="h", axis="approver group",
              summary="Hours from a request's opening to its decision: median and 90th "
              "percentile."),
        Chart("approvals-sla", "bar", "Decided within the SLA", names,
              (series("within SLA", [_pct(r.within_sla_share) for r in steps]),),
              unit="%", axis="approver group"),
    ]  # fmt: skip


def _outcome_charts(report: OutcomeReport, asked: Asked) -> list[Chart]:
    bands = [r for r in report.rows if r.band is not None]
    names = tuple(
        (_group_label(r.group, asked.dimensions) + " · " if asked.dimensions else "") + str(r.band)
        for r in bands
    )
    return [
        Chart("outcomes-win", "bar", "Win rate by variance band", names,
              (series("win rate", [_pct(r.win_rate) for r in bands]),), unit="%",
              axis="variance score band",
              summary="Closed deals won, by how far their terms were from the playbook at "
              "close."),
        Chart("outcomes-margin", "bar", "Margin kept by variance band", names,
              (series("margin kept", [_pct(r.margin_kept) for r in bands]),), unit="%",
              axis="variance score band",
              summary="1 − concession cost ÷ amount, over the won deals of each band."),
    ]  # fmt: skip


def _version_charts(report: VersionReport, asked: Asked) -> list[Chart]:
    charts = []
    for r in report.rows:
        charts.append(
            Chart(f"versions-{r.playbook}-{r.version}", "bar",
                  f"{r.playbook}: version {r.version} against {r.previous_version}",
                  ("win rate", "auto-approval rate", "margin kept"),
                  (series(f"v{r.previous_version}, its last {r.window_days} days",
                          [_pct(r.previous_win_rate), _pct(r.previous_auto_approval_rate),
                           _pct(r.previous_margin_kept)]),
                   series(f"v{r.version}, its first {r.window_days} days",
                          [_pct(r.win_rate), _pct(r.auto_approval_rate), _pct(r.margin_kept)])),
                  unit="%", axis="measure",
                  summary=f"Closed deals checked under each version over {r.window_days} days.")
        )  # fmt: skip
    return charts


def _review_charts(report: ReviewReport, asked: Asked) -> list[Chart]:
    groups = tuple(_group_label(r.group, asked.dimensions) for r in report.rows)
    axis = " · ".join(d.value for d in asked.dimensions) or "deals"
    return [
        Chart("reviews-scores", "bar", "After-action review scores (1–7)", groups,
              tuple(series(name, [getattr(r, name) for r in report.rows])
                    for name in ("instrumental", "process", "relationship", "self")),
              axis=axis, summary="Mean scores of the reviews of closed deals, per dimension."),
        Chart("reviews-overall", "bar", "Overall review score (1–7)", groups,
              (series("overall", [r.overall for r in report.rows]),), axis=axis,
              summary="The mean of the four dimensions."),
    ]  # fmt: skip


def _consistency_charts(report: ConsistencyReport, asked: Asked) -> list[Chart]:
    cells = report.rows[:TOP_CELLS]
    names = tuple(
        f"{label(r.term)} · {r.segment or '(no segment)'} · {r.amount_band}" for r in cells
    )
    return [
        Chart("consistency-spread", "bar",
              f"Widest differences across {label(report.across.value)}s", names,
              (series("gave most", [_pct(r.most_given_share) for r in cells]),
               series("gave least", [_pct(r.least_given_share) for r in cells])),
              unit="%", axis="term · segment · amount band",
              summary="Mean share of the opening→walk-away range conceded by the "
              f"{report.across.value} that gave most and the one that gave least, among "
              "comparable won deals."),
    ]  # fmt: skip


# --- the dashboards ------------------------------------------------------------------------------

GROUPS = (Dimension.region, Dimension.team, Dimension.segment, Dimension.style, Dimension.rep)

DASHBOARDS: tuple[Dashboard, ...] = (
    Dashboard(
        "variance", "Variance by region and team",
        "How far deals stray from the playbook, and where.",
        lambda s, a: analytics.variance(s, a.filters, a.dimensions),
        _variance_charts, (*GROUPS, Dimension.version, Dimension.month, None),
        note="Each deal counts once, with its latest check, dated by that check.",
    ),
    Dashboard(
        "verdicts", "Verdict mix over time",
        "How many deals pass alone, need approval or are blocked, month by month.",
        lambda s, a: analytics.verdicts(s, a.filters, a.dimensions),
        _verdict_charts, (Dimension.month,),
        note="Each deal counts once, with its latest check, dated by that check.",
    ),
    Dashboard(
        "concessions", "Concessions by term and by style",
        "What won deals gave away, and what was given without a get.",
        lambda s, a: analytics.concessions(s, a.filters, a.dimensions),
        _concession_charts, (Dimension.style, *GROUPS[:3], None),
        note="Won deals, dated by close date. Costs are summed in each deal's currency: "
        "filter by currency to compare money.",
    ),
    Dashboard(
        "approvals", "Approval cycle times by group",
        "How long each approver group and step keeps a deal waiting.",
        lambda s, a: analytics.approvals(s, a.filters, a.dimensions),
        _approval_charts, (None, *GROUPS[:3]),
        note="Decided requests (approved, rejected, countered), dated by decision.",
    ),
    Dashboard(
        "outcomes", "Win rate and margin by variance band",
        "Do deals that stray from the playbook win more, and what do they keep?",
        lambda s, a: analytics.outcomes(s, a.filters, a.dimensions, DISCOUNT_TERM),
        _outcome_charts, (None, *GROUPS[:4]),
        note="Closed deals, dated by close date, banded by their variance score at close.",
    ),
    Dashboard(
        "versions", "Version against version",
        "Did the new playbook version do better than the one before?",
        lambda s, a: analytics.versions(s, a.filters),
        _version_charts, dated=False,
        note="Each version's first days against the previous version's last days, as many of "
        "each; the date range does not apply.",
    ),
    Dashboard(
        "reviews", "After-action reviews",
        "How reps rate their closed deals: outcome, process, relationship and themselves.",
        lambda s, a: analytics.reviews(s, a.filters, a.dimensions),
        _review_charts, (*GROUPS, None),
        note="Reviews of closed deals, dated by the deal's close date.",
    ),
    Dashboard(
        "consistency", "Consistency across regions and teams",
        "Where comparable deals get materially different concessions.",
        lambda s, a: analytics.consistency(s, a.filters, a.across, a.min_deals, a.min_spread),
        _consistency_charts,
        note="Won deals with the same playbook, segment and amount band, compared term by term.",
    ),
)  # fmt: skip
BY_SLUG = {d.slug: d for d in DASHBOARDS}


# --- reading the form ----------------------------------------------------------------------------


def _read(request: Request, board: Dashboard) -> Asked:
    params = request.query_params
    names = [name for name, _, _ in FILTERS if board.dated or name not in ("from", "to")]
    values = {name: params.get(name, "").strip() for name in names}
    errors: dict[str, str] = {}
    try:
        filters = Filters.model_validate({k: v for k, v in values.items() if v})
    except ValidationError as exc:
        filters = Filters()
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0]) if error["loc"] else "from"
            if not error["loc"]:
                errors["to"] = "The end date is before the start date."
            else:
                errors[name] = FIELD_HINTS.get(name, error["msg"])
    dimensions: list[Dimension] = []
    if board.groupings:
        default = board.groupings[0]
        chosen = params.get("group_by", "").strip()
        values["group_by"] = chosen
        choices = {(d.value if d else NONE): d for d in board.groupings}
        if chosen and chosen not in choices:
            errors["group_by"] = "Choose one of the groupings."
        grouping = choices.get(chosen, default) if chosen else default
        dimensions = [grouping] if grouping is not None else []
    asked = Asked(values, filters, dimensions, errors)
    if board.slug == "consistency":
        _read_consistency(params, asked)
    return asked


def _read_consistency(params: Any, asked: Asked) -> None:
    for name in ("across", "min_deals", "min_spread"):
        asked.values[name] = params.get(name, "").strip()
    across, deals, spread = (asked.values[n] for n in ("across", "min_deals", "min_spread"))
    if across:
        try:
            asked.across = Across(across)
        except ValueError:
            asked.errors["across"] = "Choose region, team or rep region."
    if deals:
        if deals.isascii() and deals.isdigit() and 1 <= int(deals) <= 100_000:
            asked.min_deals = int(deals)
        else:
            asked.errors["min_deals"] = "Enter a whole number from 1 to 100000."
    if spread:
        try:
            value = Decimal(spread)
        except InvalidOperation:
            value = Decimal(-1)
        if value.is_finite() and 0 <= value <= 1:
            asked.min_spread = value
        else:
            asked.errors["min_spread"] = "Enter a share from 0 to 1, like 0.1."


def _board(slug: str) -> Dashboard:
    board = BY_SLUG.get(slug)
    if board is None:
        raise PageError(404, "No such dashboard", "Pick one from the analytics page.")
    return board


def _dimensions_of(report: BaseModel, asked: Asked) -> list[Dimension]:
    return list(asked.dimensions) if hasattr(report, "group_by") else []


def _table(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return (rows[0], rows[1:]) if rows else ([], [])


# --- pages ---------------------------------------------------------------------------------------


@router.get("/analytics")
def index(request: Request, viewer: DeciderViewer) -> Response:
    return render_page(request, "analytics/index.html", title="Analytics", boards=DASHBOARDS)


@router.get("/analytics/{slug}.csv")
def download(request: Request, slug: str, viewer: DeciderViewer, session: DbSession) -> Response:
    board = _board(slug)
    asked = _read(request, board)
    if asked.errors:
        raise PageError(
            422,
            "These filters are not valid",
            "; ".join(f"{name}: {message}" for name, message in asked.errors.items()),
        )
    report = board.run(session, asked)
    text = report_csv(report, _dimensions_of(report, asked))
    filename = f"{board.slug}-{utcnow().date().isoformat()}.csv"
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/analytics/{slug}")
def dashboard(request: Request, slug: str, viewer: DeciderViewer, session: DbSession) -> Response:
    board = _board(slug)
    asked = _read(request, board)
    charts: list[Chart] = []
    header: list[str] = []
    rows: list[list[str]] = []
    if not asked.errors:
        report = board.run(session, asked)
        charts = board.charts(report, asked)
        header, rows = _table(report_csv(report, _dimensions_of(report, asked)))
    return render_page(
        request,
        "analytics/dashboard.html",
        status_code=422 if asked.errors else 200,
        title=board.title,
        board=board,
        boards=DASHBOARDS,
        asked=asked,
        filters=[f for f in FILTERS if board.dated or f[0] not in ("from", "to")],
        styles=STYLES,
        no_grouping=NONE,
        acrosses=tuple(a.value for a in Across),
        charts=charts,
        header=header,
        rows=rows,
        csv_url=f"/analytics/{board.slug}.csv" + (f"?{asked.query()}" if asked.query() else ""),
    )
