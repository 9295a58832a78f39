"""Analytics reports: the repository's per-group sums become rates, means and percentiles.

Rounding, applied last and half to even: ratios, shares and rates by the ratio rule, money by
the money rule (`governance.figures`); term values 4 places, hours and review scores 2. Percentiles interpolate linearly between the two nearest ranks, as
PostgreSQL's `percentile_cont` and most spreadsheets do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from itertools import pairwise
from typing import Any

from sqlalchemy.orm import Session

from governance.analytics.fact_repository import SCORE_BANDS, Distribution, GroupKey
from governance.analytics.repository import AnalyticsRepository
from governance.analytics.schemas import (
    Across,
    ApprovalReport,
    ApprovalRow,
    ConcessionReport,
    ConcessionRow,
    ConsistencyReport,
    ConsistencyRow,
    Dimension,
    Filters,
    OutcomeReport,
    OutcomeRow,
    ReviewReport,
    ReviewRow,
    VarianceReport,
    VarianceRow,
    VerdictReport,
    VerdictRow,
    VersionReport,
    VersionRow,
)
from governance.auth.principal import Principal
from governance.auth.schemas import Role
from governance.db import utcnow
from governance.errors import Forbidden
from governance.figures import MONEY_STEP, RATIO_STEP
from governance.scaled import CENTS, MICRO

SIX = RATIO_STEP
FOUR = Decimal("0.0001")  # term values (a mean discount)
TWO = Decimal("0.01")  # hours and review scores
TENTHS = Decimal(10)  # cycle times come in tenths of an hour
THOUSANDTHS = Decimal(1000)  # variance-score percentiles come in thousandths
MEDIAN_P90 = ((1, 2), (9, 10))


def _q(value: Decimal, step: Decimal) -> Decimal:
    return value.quantize(step, ROUND_HALF_EVEN)


def _maybe(value: Decimal | None, step: Decimal) -> Decimal | None:
    return None if value is None else _q(value, step)


def _rate(part: Any, whole: Any) -> Decimal | None:
    whole = Decimal(whole or 0)
    return None if whole == 0 else _q(Decimal(part or 0) / whole, SIX)


def _mean(total: Any, count: Any, scale: Decimal, step: Decimal) -> Decimal | None:
    count = Decimal(count or 0)
    return None if count == 0 else _q(Decimal(total or 0) / count / scale, step)


def _interpolate(count: int, low: Any, high: Any, num: int, den: int) -> Decimal:
    rank = Fraction(num * (count - 1), den)
    part = rank - (rank.numerator // rank.denominator)
    lo, hi = Decimal(low), Decimal(high)
    result: Decimal = lo + (hi - lo) * Decimal(part.numerator) / Decimal(part.denominator)
    return result


def _pcts(
    found: tuple[int, list[tuple[Any, Any]]] | None, scale: Decimal, step: Decimal
) -> list[Decimal | None]:
    if found is None or found[0] == 0:
        return [None] * len(MEDIAN_P90)
    count, pairs = found
    return [
        _q(_interpolate(count, low, high, num, den) / scale, step)
        for (num, den), (low, high) in zip(MEDIAN_P90, pairs, strict=True)
    ]


def _group(dimensions: Sequence[Dimension], key: GroupKey) -> dict[str, Any]:
    return {d.value: key[i] for i, d in enumerate(dimensions)}


def _order(key: GroupKey) -> tuple[Any, ...]:
    """Groups in ascending order, empty values last."""
    return tuple((v is None, v if isinstance(v, int) else str(v or "")) for v in key)


def _split(rows: Iterable[Sequence[Any]], width: int) -> list[tuple[GroupKey, Sequence[Any]]]:
    """Group keys and figures, in group order; an empty group (an ungrouped aggregate over no
    rows still answers one row) is left out, so a report over nothing has no rows."""
    return sorted(
        ((tuple(r[:width]), r[width:]) for r in rows if r[width]),
        key=lambda kv: _order(kv[0]),
    )


# --- variance and verdicts -----------------------------------------------------------------------


def _dist_row(found: Distribution, scale: Decimal, step: Decimal) -> list[Decimal | None]:
    """Mean, p50 and p90 of a distribution."""
    count, total, _, pairs = found
    return [_mean(total, count, scale, step), *_pcts((count, pairs), scale, step)]


def variance(session: Session, filters: Filters, dimensions: list[Dimension]) -> VarianceReport:
    """Variance scores per group (dated by each deal's latest check), then each term's ratio."""
    repo = AnalyticsRepository(session)
    width = len(dimensions)
    by_group: dict[GroupKey, list[VarianceRow]] = defaultdict(list)
    scores, zeros = repo.scores(filters, dimensions)
    for key, found in repo.term_ratios(filters, dimensions, zeros).items():
        mean, p50, p90 = _dist_row(found, MICRO, SIX)
        by_group[key[:width]].append(
            VarianceRow(
                group=_group(dimensions, key[:width]),
                term=key[width],
                deals=found[0],
                mean=mean,
                p50=p50,
                p90=p90,
                outside_band_share=_rate(found[2][0], found[0]),
            )
        )
    rows: list[VarianceRow] = []
    for key in sorted(scores, key=_order):
        count, _, (total, outside, *_zeros), pairs = scores[key]
        p50, p90 = _pcts((count, pairs), THOUSANDTHS, SIX)
        rows.append(
            VarianceRow(
                group=_group(dimensions, key),
                term=None,
                deals=count,
                mean=_mean(total, count, MICRO, SIX),
                p50=p50,
                p90=p90,
                outside_band_share=_rate(outside, count),
            )
        )
        rows += sorted(
            by_group.get(key, []),
            key=lambda r: (-(r.outside_band_share or 0), -(r.mean or 0), r.term or ""),
        )
    return VarianceReport(group_by=dimensions, filters=filters, rows=rows)


def verdicts(session: Session, filters: Filters, dimensions: list[Dimension]) -> VerdictReport:
    """The verdict mix of each deal's latest check, dated by that check."""
    rows = [
        VerdictRow(
            group=_group(dimensions, key),
            deals=count,
            auto_approved=int(auto),
            needs_approval=int(needs),
            blocked=int(blocked),
            auto_approval_rate=_rate(auto, count),
        )
        for key, (count, auto, needs, blocked) in _split(
            AnalyticsRepository(session).verdicts(filters, dimensions), len(dimensions)
        )
    ]
    return VerdictReport(group_by=dimensions, filters=filters, rows=rows)


# --- concessions ---------------------------------------------------------------------------------


def own_figures_only(principal: Principal, filters: Filters) -> None:
    """Refuse an `integration` key a report on anyone but the rep it acts for.

    Analytics compare reps, so reps do not read them; the Salesforce package's key may only read
    the figures of the Salesforce user it vouches for (`X-Acting-User`, already validated as a
    Salesforce Id), asked for by name in `rep`. Other roles pass unchanged.
    """
    if principal.role is not Role.integration:
        return
    if principal.acting_user is None:
        raise Forbidden(
            "an integration key reads concessions only for the rep it acts for: "
            "send X-Acting-User with that rep's Salesforce user Id"
        )
    if filters.rep != principal.acting_user:
        raise Forbidden(
            "an integration key reads concessions only for the rep it acts for: "
            f"set rep={principal.acting_user} (the X-Acting-User)"
        )


def _concession_row(
    dimensions: list[Dimension], key: GroupKey, term: str | None, deals: int, figures: Sequence[Any]
) -> ConcessionRow:
    gave, share, shares, held, cost, ungot, ungot_cost = figures
    return ConcessionRow(
        group=_group(dimensions, key),
        term=term,
        deals=deals,
        conceded=int(gave),
        mean_conceded_share=_mean(share, shares, MICRO, SIX),
        held=int(held),
        cost=_q(Decimal(cost) / CENTS, MONEY_STEP),
        cost_per_deal=_mean(cost, deals, CENTS, MONEY_STEP),
        gives_without_gets=int(ungot),
        gives_without_gets_cost=_q(Decimal(ungot_cost) / CENTS, MONEY_STEP),
    )


def concessions(
    session: Session, filters: Filters, dimensions: list[Dimension]
) -> ConcessionReport:
    """What won deals conceded and what it cost, dated by close date: totals, then each term,
    most conceded first."""
    repo = AnalyticsRepository(session)
    width = len(dimensions)
    by_group: dict[GroupKey, list[ConcessionRow]] = defaultdict(list)
    # Totals of the per-term figures (shares, give-without-get) add up across terms.
    summed: dict[GroupKey, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
    for key, (count, gave, share, shares, held, cost, ungot, ungot_cost) in _split(
        repo.concessions_by_term(filters, dimensions), width + 1
    ):
        group = key[:width]
        by_group[group].append(
            _concession_row(
                dimensions, group, key[width], count,
                (gave, share, shares, held, cost, ungot, ungot_cost),
            )
        )  # fmt: skip
        totals = summed[group]
        for i, value in enumerate((share, shares, ungot, ungot_cost)):
            totals[i] += Decimal(value or 0)
    rows: list[ConcessionRow] = []
    for key, (count, gave, held, cost) in _split(repo.won_deals(filters, dimensions), width):
        share, shares, ungot, ungot_cost = summed[key]
        rows.append(
            _concession_row(
                dimensions, key, None, count, (gave, share, shares, held, cost, ungot, ungot_cost)
            )
        )
        rows += sorted(by_group.get(key, []), key=lambda r: (-r.conceded, -r.cost, r.term or ""))
    return ConcessionReport(group_by=dimensions, filters=filters, rows=rows)


# --- approvals -----------------------------------------------------------------------------------


def approvals(session: Session, filters: Filters, dimensions: list[Dimension]) -> ApprovalReport:
    """Decided requests, dated by decision: all of them, then per approver group and step."""
    width = len(dimensions)
    levels = AnalyticsRepository(session).decisions(filters, dimensions)

    def row(key: GroupKey, found: Distribution) -> ApprovalRow:
        decided, _, (within, escalated, rejected, countered), pairs = found
        p50, p90 = _pcts((decided, pairs), TENTHS, TWO)
        return ApprovalRow(
            group=_group(dimensions, key[:width]),
            approver_group=key[width] if len(key) > width else None,
            step=key[width + 1] if len(key) > width else None,
            decided=decided,
            cycle_hours_p50=p50,
            cycle_hours_p90=p90,
            within_sla_share=_rate(within, decided),
            escalated=int(escalated),
            rejection_rate=_rate(rejected, decided),
            counter_rate=_rate(countered, decided),
        )

    by_group: dict[GroupKey, list[ApprovalRow]] = defaultdict(list)
    steps = levels[width + 2]
    for key in sorted(steps, key=_order):
        by_group[key[:width]].append(row(key, steps[key]))
    rows: list[ApprovalRow] = []
    totals = levels[width]
    for key in sorted(totals, key=_order):
        rows.append(row(key, totals[key]))
        rows += by_group.get(key, [])
    return ApprovalReport(group_by=dimensions, filters=filters, rows=rows)


# --- outcomes ------------------------------------------------------------------------------------


def _margin(cost: Any, amount: Any) -> Decimal | None:
    amount = Decimal(amount or 0)
    return None if amount == 0 else _q(1 - Decimal(cost or 0) / amount, SIX)


def outcomes(
    session: Session, filters: Filters, dimensions: list[Dimension], discount_term: str
) -> OutcomeReport:
    """Win rate, average discount and margin kept per variance-score band at close; the group
    totals add the bands up."""
    repo = AnalyticsRepository(session)
    width = len(dimensions)
    discounts = {
        tuple(r[: width + 1]): (r[width + 1], r[width + 2])
        for r in repo.discounts(filters, dimensions, discount_term)
    }

    def row(key: GroupKey, band: str | None, figures: Sequence[Decimal]) -> OutcomeRow:
        closed, won, cost, amount, discount, discounts_n = figures
        return OutcomeRow(
            group=_group(dimensions, key),
            band=band,
            closed=int(closed),
            won=int(won),
            win_rate=_rate(won, closed),
            average_discount=_mean(discount, discounts_n, MICRO, FOUR),
            margin_kept=_margin(cost, amount),
        )

    band_order = {label: i for i, (_, label) in enumerate(SCORE_BANDS)}
    banded: dict[GroupKey, list[OutcomeRow]] = defaultdict(list)
    totals: dict[GroupKey, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 6)
    for key, (closed, won, cost, amount) in _split(repo.closed(filters, dimensions), width + 1):
        discount, discounts_n = discounts.get(key, (0, 0))
        figures = [Decimal(v or 0) for v in (closed, won, cost, amount, discount, discounts_n)]
        group = key[:width]
        banded[group].append(row(group, key[width], figures))
        totals[group] = [a + b for a, b in zip(totals[group], figures, strict=True)]
    rows: list[OutcomeRow] = []
    for group in sorted(totals, key=_order):
        rows.append(row(group, None, totals[group]))
        rows += sorted(banded[group], key=lambda r: band_order.get(r.band or "", 99))
    return OutcomeReport(
        group_by=dimensions, filters=filters, rows=rows, discount_term=discount_term
    )


def versions(session: Session, filters: Filters) -> VersionReport:
    """Each published version against its predecessor over equal windows of check dates: the
    deals checked in the version's first N days against those checked in the previous
    version's last N days, each judged by how they closed (so a slow close still counts for the
    version it was negotiated under)."""
    repo = AnalyticsRepository(session)
    today = utcnow().date()
    published = repo.published_versions(filters.playbook)
    rows: list[VersionRow] = []
    for (key, prev_number, prev_pub, prev_sup), (key2, number, pub, sup) in pairwise(published):
        if key != key2:
            continue
        if filters.version is not None and number != filters.version:
            continue
        start = pub.date()
        end = sup.date() if sup is not None else today + timedelta(days=1)
        prev_start = prev_pub.date()
        prev_end = prev_sup.date() if prev_sup is not None else start
        days = min((end - start).days, (prev_end - prev_start).days)
        if days <= 0:
            continue
        now_fig = repo.version_window(filters, key, number, start, start + timedelta(days=days))
        prev_fig = repo.version_window(
            filters, key, prev_number, prev_end - timedelta(days=days), prev_end
        )
        rows.append(
            VersionRow(
                playbook=key,
                version=number,
                previous_version=prev_number,
                window_days=days,
                version_from=start,
                version_to=start + timedelta(days=days - 1),
                previous_from=prev_end - timedelta(days=days),
                previous_to=prev_end - timedelta(days=1),
                closed=now_fig[0],
                previous_closed=prev_fig[0],
                win_rate=_rate(now_fig[1], now_fig[0]),
                previous_win_rate=_rate(prev_fig[1], prev_fig[0]),
                mean_variance_score=_mean(now_fig[2], now_fig[3], MICRO, SIX),
                previous_mean_variance_score=_mean(prev_fig[2], prev_fig[3], MICRO, SIX),
                auto_approval_rate=_rate(now_fig[4], now_fig[0]),
                previous_auto_approval_rate=_rate(prev_fig[4], prev_fig[0]),
                margin_kept=_margin(now_fig[5], now_fig[6]),
                previous_margin_kept=_margin(prev_fig[5], prev_fig[6]),
            )
        )
    return VersionReport(filters=filters, rows=rows)


# --- reviews -------------------------------------------------------------------------------------


def reviews(session: Session, filters: Filters, dimensions: list[Dimension]) -> ReviewReport:
    """Mean subjective value scores (1–7) per dimension, dated by the deal's close date."""
    rows = []
    for key, (count, instrumental, process, relationship, self_score) in _split(
        AnalyticsRepository(session).reviews(filters, dimensions), len(dimensions)
    ):
        total = sum(Decimal(v or 0) for v in (instrumental, process, relationship, self_score))
        rows.append(
            ReviewRow(
                group=_group(dimensions, key),
                reviews=count,
                instrumental=_mean(instrumental, count, Decimal(1), TWO),
                process=_mean(process, count, Decimal(1), TWO),
                relationship=_mean(relationship, count, Decimal(1), TWO),
                self=_mean(self_score, count, Decimal(1), TWO),
                overall=_mean(total, count * 4, Decimal(1), TWO),
            )
        )
    return ReviewReport(group_by=dimensions, filters=filters, rows=rows)


# --- consistency ---------------------------------------------------------------------------------


def consistency(
    session: Session, filters: Filters, across: Across, min_deals: int, min_spread: Decimal
) -> ConsistencyReport:
    """Where comparable won deals got materially different concessions on the same term.

    Comparable: same playbook, segment and amount band. Each region (or team) with at least
    `min_deals` such deals is compared on its mean conceded share; cells whose spread reaches
    `min_spread` are ranked, widest first.
    """
    cells: dict[tuple[Any, ...], list[tuple[Any, int, Decimal, Decimal | None]]] = defaultdict(list)
    for (
        term,
        playbook,
        segment,
        currency,
        band,
        who,
        count,
        share,
        finals_total,
        finals,
    ) in AnalyticsRepository(session).consistency_cells(filters, across):
        if count < min_deals:
            continue
        mean_share = Decimal(share) / Decimal(count) / MICRO
        mean_final = None if not finals else Decimal(finals_total) / Decimal(finals) / MICRO
        cells[(term, playbook, segment, currency, band)].append(
            (who, int(count), mean_share, mean_final)
        )
    rows: list[ConsistencyRow] = []
    for (term, playbook, segment, currency, band), members in cells.items():
        if len(members) < 2:
            continue
        ordered = sorted(members, key=lambda m: (-m[2], str(m[0] or "")))
        most, least = ordered[0], ordered[-1]
        spread = most[2] - least[2]
        if spread < min_spread:
            continue
        rows.append(
            ConsistencyRow(
                term=term,
                playbook=playbook,
                segment=segment,
                currency=currency,
                amount_band=band,
                across=across,
                most_given=most[0],
                most_given_share=_q(most[2], SIX),
                most_given_final=_maybe(most[3], FOUR),
                most_given_deals=most[1],
                least_given=least[0],
                least_given_share=_q(least[2], SIX),
                least_given_final=_maybe(least[3], FOUR),
                least_given_deals=least[1],
                spread=_q(spread, SIX),
                compared=len(members),
            )
        )
    rows.sort(key=lambda r: (-r.spread, r.term, r.playbook, str(r.segment), r.amount_band))
    return ConsistencyReport(
        filters=filters, across=across, min_deals=min_deals, min_spread=min_spread, rows=rows
    )
