"""SQL for analytics: the database aggregates; Python only sees one row per group.

Each report reads one kind of fact (deals' latest checks, per-term checks, outcomes, per-term
outcomes, decided approval requests, after-action reviews) joined to its deal, and to the rep's
profile when a rep dimension is asked for. Figures are scaled integers (see `governance.scaled`),
so sums are exact and alike on both databases. Percentiles come from a histogram of distinct
values with running counts (window functions both databases have): the two values around the
wanted rank, interpolated by the caller as PostgreSQL's `percentile_cont` would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.orm import Session

from governance.analytics.schemas import Across, Dimension, Filters
from governance.approvals.models import ApprovalRequest
from governance.deals.models import Deal, DealTermCheck
from governance.outcomes.models import AfterActionReview, Outcome, OutcomeTerm
from governance.playbooks.models import Playbook, PlaybookVersion
from governance.reps.models import RepProfile

Row = Sequence[Any]
GroupKey = tuple[Any, ...]

DECIDED = ("approved", "rejected", "countered")

# Score bands at close for win rates (upper bounds in millionths, inclusive) and their labels.
SCORE_BANDS: tuple[tuple[int | None, str], ...] = (
    (0, "0"),
    (100_000, "(0, 0.1]"),
    (200_000, "(0.1, 0.2]"),
    (350_000, "(0.2, 0.35]"),
    (500_000, "(0.35, 0.5]"),
    (None, "> 0.5"),
)
# Amount bands for "comparable deals" (upper bounds in cents, exclusive).
AMOUNT_BANDS: tuple[tuple[int | None, str], ...] = (
    (1_000_000, "< 10k"),
    (5_000_000, "10k–50k"),
    (25_000_000, "50k–250k"),
    (100_000_000, "250k–1M"),
    (None, "≥ 1M"),
)


@dataclass(frozen=True)
class Fact:
    """One report's facts: the join they come from and where their dimensions live."""

    source: FromClause
    when: Any  # the date or timestamp the date filters apply to
    when_is_timestamp: bool
    playbook: Any
    version: Any
    where: tuple[ColumnElement[bool], ...] = ()
    profile_joined: bool = field(default=False)


_live = Deal.deleted_at.is_(None)

DEALS = Fact(
    source=Deal.__table__,
    when=Deal.last_checked_at,
    when_is_timestamp=True,
    playbook=Deal.checked_playbook,
    version=Deal.checked_version,
    where=(_live, Deal.last_verdict.is_not(None)),
)
TERM_CHECKS = Fact(
    source=DealTermCheck.__table__.join(Deal.__table__, DealTermCheck.deal_id == Deal.id),
    when=Deal.last_checked_at,
    when_is_timestamp=True,
    playbook=Deal.checked_playbook,
    version=Deal.checked_version,
    where=(_live,),
)
OUTCOMES = Fact(
    source=Outcome.__table__.join(Deal.__table__, Outcome.deal_id == Deal.id),
    when=Outcome.close_date,
    when_is_timestamp=False,
    playbook=Outcome.playbook_key,
    version=Outcome.playbook_version,
    where=(_live,),
)
OUTCOME_TERMS = Fact(
    source=OutcomeTerm.__table__.join(Outcome.__table__, OutcomeTerm.outcome_id == Outcome.id).join(
        Deal.__table__, Outcome.deal_id == Deal.id
    ),
    when=Outcome.close_date,
    when_is_timestamp=False,
    playbook=Outcome.playbook_key,
    version=Outcome.playbook_version,
    where=(_live,),
)
DECISIONS = Fact(
    source=ApprovalRequest.__table__.join(Deal.__table__, ApprovalRequest.deal_id == Deal.id),
    when=ApprovalRequest.decided_at,
    when_is_timestamp=True,
    playbook=ApprovalRequest.playbook_key,
    version=ApprovalRequest.playbook_version,
    where=(ApprovalRequest.status.in_(DECIDED), ApprovalRequest.cycle_seconds.is_not(None)),
)
REVIEWS = Fact(
    source=AfterActionReview.__table__.join(
        Outcome.__table__, Outcome.deal_id == AfterActionReview.deal_id
    ).join(Deal.__table__, AfterActionReview.deal_id == Deal.id),
    when=Outcome.close_date,
    when_is_timestamp=False,
    playbook=Outcome.playbook_key,
    version=Outcome.playbook_version,
    where=(_live,),
)

_PROFILE_DIMENSIONS = frozenset({Dimension.team, Dimension.style, Dimension.rep_region})


def _n(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    """How many rows meet the condition."""
    return func.sum(case((condition, 1), else_=0))


def _total(value: Any) -> ColumnElement[Any]:
    """A sum that is 0, not NULL, over no rows."""
    return func.coalesce(func.sum(value), 0)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _banded(value: Any, bands: tuple[tuple[int | None, str], ...], inclusive: bool) -> Any:
    whens = [
        ((value <= upper) if inclusive else (value < upper), literal(label))
        for upper, label in bands
        if upper is not None
    ]
    return case(*whens, else_=literal(bands[-1][1]))


def amount_band(cents: Any) -> Any:
    return case((cents.is_(None), literal("unknown")), else_=_banded(cents, AMOUNT_BANDS, False))


class AnalyticsRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    # --- scoping -------------------------------------------------------------------------------

    def _month(self, fact: Fact) -> Any:
        if self.dialect == "sqlite":
            return func.strftime("%Y-%m", fact.when)
        column = func.timezone("UTC", fact.when) if fact.when_is_timestamp else fact.when
        return func.to_char(column, "YYYY-MM")

    def dimension(self, dimension: Dimension, fact: Fact) -> Any:
        return (
            {
                Dimension.region: Deal.region,
                Dimension.segment: Deal.segment,
                Dimension.team: func.coalesce(Deal.team, RepProfile.team),
                Dimension.rep: Deal.owner_rep,
                Dimension.style: RepProfile.style,
                Dimension.rep_region: RepProfile.region,
                Dimension.playbook: fact.playbook,
                Dimension.version: fact.version,
            }.get(dimension)
            if dimension is not Dimension.month
            else self._month(fact)
        )

    def scope(
        self, fact: Fact, filters: Filters, dimensions: Sequence[Dimension], *extra: Dimension
    ) -> tuple[Fact, list[Any]]:
        """The fact narrowed by the filters, and its group columns labelled g0, g1, …"""
        wanted = set(dimensions) | set(extra)
        source = fact.source
        if filters.style or filters.team or wanted & _PROFILE_DIMENSIONS:
            source = source.outerjoin(RepProfile.__table__, RepProfile.rep == Deal.owner_rep)
        where = list(fact.where)
        if filters.date_from is not None:
            start = _start_of(filters.date_from) if fact.when_is_timestamp else filters.date_from
            where.append(fact.when >= start)
        if filters.date_to is not None:
            if fact.when_is_timestamp:
                where.append(fact.when < _start_of(filters.date_to + timedelta(days=1)))
            else:
                where.append(fact.when <= filters.date_to)
        equal = {
            Dimension.region: filters.region,
            Dimension.segment: filters.segment,
            Dimension.team: filters.team,
            Dimension.rep: filters.rep,
            Dimension.style: filters.style.value if filters.style else None,
            Dimension.playbook: filters.playbook,
            Dimension.version: filters.version,
        }
        for dimension, value in equal.items():
            if value is not None:
                where.append(self.dimension(dimension, fact) == value)
        scoped = replace(fact, source=source, where=tuple(where), profile_joined=True)
        groups = [self.dimension(d, fact).label(f"g{i}") for i, d in enumerate(dimensions)]
        return scoped, groups

    def _rows(self, query: Select[Any]) -> list[Row]:
        return list(self.session.execute(query).all())

    def percentiles(
        self,
        fact: Fact,
        groups: Sequence[Any],
        value: Any,
        fractions: Sequence[tuple[int, int]],
        where: Sequence[ColumnElement[bool]] = (),
    ) -> dict[GroupKey, tuple[int, list[tuple[Any, Any]]]]:
        """Per group: the count and, per fraction num/den, the values at ranks ⌊h⌋ and ⌈h⌉
        (0-based) where h = num/den × (count − 1)."""
        base = (
            select(*groups, value.label("v"))
            .select_from(fact.source)
            .where(*fact.where, *where, value.is_not(None))
            .subquery("b")
        )
        keys = [base.c[f"g{i}"] for i in range(len(groups))]
        hist = (
            select(*keys, base.c.v, func.count().label("n")).group_by(*keys, base.c.v).subquery("h")
        )
        hkeys = [hist.c[f"g{i}"] for i in range(len(groups))]
        partition = hkeys or None
        running = (
            select(
                *hkeys,
                hist.c.v,
                cast(
                    func.sum(hist.c.n).over(
                        partition_by=partition, order_by=hist.c.v, rows=(None, 0)
                    ),
                    BigInteger,
                ).label("upto"),
                cast(func.sum(hist.c.n).over(partition_by=partition), BigInteger).label("total"),
            )
        ).subquery("c")
        ckeys = [running.c[f"g{i}"] for i in range(len(groups))]
        picks: list[Any] = []
        for num, den in fractions:
            spread = (running.c.total - 1) * num
            low_rank = spread // den
            high_rank = (spread + (den - 1)) // den
            picks.append(func.min(case((running.c.upto > low_rank, running.c.v))))
            picks.append(func.min(case((running.c.upto > high_rank, running.c.v))))
        query = select(*ckeys, func.max(running.c.total), *picks).group_by(*ckeys)
        out: dict[GroupKey, tuple[int, list[tuple[Any, Any]]]] = {}
        for row in self.session.execute(query).all():
            key = tuple(row[: len(groups)])
            rest = row[len(groups) :]
            if rest[0] is None:  # no rows at all (an ungrouped aggregate still answers)
                continue
            pairs = [(rest[1 + 2 * i], rest[2 + 2 * i]) for i in range(len(fractions))]
            out[key] = (int(rest[0]), pairs)
        return out

    # --- reports -------------------------------------------------------------------------------

    def verdicts(self, filters: Filters, dimensions: Sequence[Dimension]) -> list[Row]:
        fact, groups = self.scope(DEALS, filters, dimensions)
        query = (
            select(
                *groups,
                func.count(),
                _n(Deal.last_verdict == "auto_approved"),
                _n(Deal.last_verdict == "needs_approval"),
                _n(Deal.last_verdict == "blocked"),
                _total(Deal.variance_micro),
            )
            .select_from(fact.source)
            .where(*fact.where)
            .group_by(*groups)
        )
        return self._rows(query)

    def score_percentiles(
        self,
        filters: Filters,
        dimensions: Sequence[Dimension],
        fractions: Sequence[tuple[int, int]],
    ) -> dict[GroupKey, tuple[int, list[tuple[Any, Any]]]]:
        fact, groups = self.scope(DEALS, filters, dimensions)
        return self.percentiles(fact, groups, Deal.variance_micro, fractions)

    def term_variance(
        self, filters: Filters, dimensions: Sequence[Dimension]
    ) -> tuple[list[Row], dict[GroupKey, tuple[int, list[tuple[Any, Any]]]]]:
        fact, groups = self.scope(TERM_CHECKS, filters, dimensions)
        keyed = [*groups, DealTermCheck.term_key.label(f"g{len(groups)}")]
        ratio = DealTermCheck.variance_ratio_micro
        query = (
            select(
                *keyed,
                func.count(),
                _total(ratio),
                _n(DealTermCheck.status.in_(("exception", "blocked"))),
            )
            .select_from(fact.source)
            .where(*fact.where)
            .group_by(*keyed)
        )
        return self._rows(query), self.percentiles(fact, keyed, ratio, ((1, 2), (9, 10)))

    def concessions_by_term(self, filters: Filters, dimensions: Sequence[Dimension]) -> list[Row]:
        fact, groups = self.scope(OUTCOME_TERMS, filters, dimensions)
        keyed = [*groups, OutcomeTerm.term_key.label(f"g{len(groups)}")]
        share = OutcomeTerm.conceded_share_micro
        gave = share > 0
        query = (
            select(
                *keyed,
                func.count(),
                _n(gave),
                _total(share),
                func.count(share),
                _n(OutcomeTerm.held.is_(True)),
                _total(OutcomeTerm.cost_cents),
                _n(and_(gave, OutcomeTerm.traded.is_(False))),
                _total(case((and_(gave, OutcomeTerm.traded.is_(False)), OutcomeTerm.cost_cents))),
            )
            .select_from(fact.source)
            .where(*fact.where, Outcome.won.is_(True))
            .group_by(*keyed)
        )
        return self._rows(query)

    def concession_totals(self, filters: Filters, dimensions: Sequence[Dimension]) -> list[Row]:
        """Per group: won deals, their summed cost, deals that conceded, deals that held every
        term with a target, and the mean conceded share and give-without-get figures."""
        fact, groups = self.scope(OUTCOMES, filters, dimensions)
        gave = OutcomeTerm.conceded_share_micro > 0
        per_deal = (
            select(
                OutcomeTerm.outcome_id.label("outcome_id"),
                _n(gave).label("gave"),
                _n(OutcomeTerm.held.is_(False)).label("missed"),
                _total(OutcomeTerm.conceded_share_micro).label("share"),
                func.count(OutcomeTerm.conceded_share_micro).label("shares"),
                _n(and_(gave, OutcomeTerm.traded.is_(False))).label("ungot"),
                _total(
                    case((and_(gave, OutcomeTerm.traded.is_(False)), OutcomeTerm.cost_cents))
                ).label("ungot_cost"),
            )
            .group_by(OutcomeTerm.outcome_id)
            .subquery("t")
        )
        source = fact.source.outerjoin(per_deal, per_deal.c.outcome_id == Outcome.id)
        query = (
            select(
                *groups,
                func.count(),
                _n(per_deal.c.gave > 0),
                _total(per_deal.c.share),
                _total(per_deal.c.shares),
                _n(func.coalesce(per_deal.c.missed, 0) == 0),
                _total(Outcome.cost_cents),
                _total(per_deal.c.ungot),
                _total(per_deal.c.ungot_cost),
            )
            .select_from(source)
            .where(*fact.where, Outcome.won.is_(True))
            .group_by(*groups)
        )
        return self._rows(query)

    def decisions(
        self, filters: Filters, dimensions: Sequence[Dimension], by_step: bool
    ) -> tuple[list[Row], dict[GroupKey, tuple[int, list[tuple[Any, Any]]]]]:
        fact, groups = self.scope(DECISIONS, filters, dimensions)
        keyed = list(groups)
        if by_step:
            keyed += [
                ApprovalRequest.group.label(f"g{len(groups)}"),
                ApprovalRequest.step.label(f"g{len(groups) + 1}"),
            ]
        query = (
            select(
                *keyed,
                func.count(),
                _n(ApprovalRequest.within_sla.is_(True)),
                _n(ApprovalRequest.escalation_level > 0),
                _n(ApprovalRequest.status == "rejected"),
                _n(ApprovalRequest.status == "countered"),
            )
            .select_from(fact.source)
            .where(*fact.where)
            .group_by(*keyed)
        )
        cycle = ApprovalRequest.cycle_seconds
        return self._rows(query), self.percentiles(fact, keyed, cycle, ((1, 2), (9, 10)))

    def outcomes(
        self, filters: Filters, dimensions: Sequence[Dimension], discount_term: str, by_band: bool
    ) -> list[Row]:
        fact, groups = self.scope(OUTCOMES, filters, dimensions)
        keyed = list(groups)
        if by_band:
            keyed.append(
                _banded(Outcome.variance_micro, SCORE_BANDS, True).label(f"g{len(groups)}")
            )
        discount = OutcomeTerm.__table__.alias("discount")
        source = fact.source.outerjoin(
            discount,
            and_(discount.c.outcome_id == Outcome.id, discount.c.term_key == discount_term),
        )
        won = Outcome.won.is_(True)
        priced = and_(won, Outcome.amount_cents.is_not(None))
        query = (
            select(
                *keyed,
                func.count(),
                _n(won),
                _total(case((won, discount.c.final_micro))),
                func.count(case((won, discount.c.final_micro))),
                _total(case((priced, func.coalesce(Outcome.cost_cents, 0)))),
                _total(case((priced, Outcome.amount_cents))),
            )
            .select_from(source)
            .where(*fact.where, Outcome.variance_micro.is_not(None) if by_band else true())
            .group_by(*keyed)
        )
        return self._rows(query)

    def version_window(
        self, filters: Filters, playbook: str, version: int, start: date, end: date
    ) -> Row:
        """Closed deals of one playbook version with a close date in [start, end)."""
        narrowed = filters.model_copy(update={"playbook": None, "version": None})
        narrowed = narrowed.model_copy(update={"date_from": None, "date_to": None})
        fact, _ = self.scope(OUTCOMES, narrowed, ())
        won = Outcome.won.is_(True)
        priced = and_(won, Outcome.amount_cents.is_not(None))
        query = (
            select(
                func.count(),
                _n(won),
                _total(Outcome.variance_micro),
                func.count(Outcome.variance_micro),
                _n(Outcome.verdict == "auto_approved"),
                _total(case((priced, func.coalesce(Outcome.cost_cents, 0)))),
                _total(case((priced, Outcome.amount_cents))),
            )
            .select_from(fact.source)
            .where(
                *fact.where,
                Outcome.playbook_key == playbook,
                Outcome.playbook_version == version,
                Outcome.close_date >= start,
                Outcome.close_date < end,
            )
        )
        return self.session.execute(query).one()

    def published_versions(self, playbook: str | None) -> list[Row]:
        """(playbook key, version number, published_at, superseded_at) of every published one."""
        query = (
            select(
                Playbook.key,
                PlaybookVersion.number,
                PlaybookVersion.published_at,
                PlaybookVersion.superseded_at,
            )
            .join(Playbook, Playbook.id == PlaybookVersion.playbook_id)
            .where(PlaybookVersion.published_at.is_not(None))
            .order_by(Playbook.key, PlaybookVersion.number)
        )
        if playbook is not None:
            query = query.where(Playbook.key == playbook)
        return self._rows(query)

    def reviews(self, filters: Filters, dimensions: Sequence[Dimension]) -> list[Row]:
        fact, groups = self.scope(REVIEWS, filters, dimensions)
        r = AfterActionReview
        query = (
            select(
                *groups,
                func.count(),
                func.sum(r.instrumental),
                func.sum(r.process),
                func.sum(r.relationship),
                func.sum(r.self_score),
            )
            .select_from(fact.source)
            .where(*fact.where)
            .group_by(*groups)
        )
        return self._rows(query)

    def consistency_cells(self, filters: Filters, across: Across) -> list[Row]:
        """Won deals' per-term concessions, per comparable cell and per region or team."""
        fact, _ = self.scope(OUTCOME_TERMS, filters, (), Dimension(across.value))
        versus = self.dimension(Dimension(across.value), fact)
        share = OutcomeTerm.conceded_share_micro
        cell = (
            OutcomeTerm.term_key,
            Outcome.playbook_key,
            Deal.segment,
            amount_band(Outcome.amount_cents),
            versus,
        )
        query = (
            select(
                *cell,
                func.count(),
                _total(share),
                _total(OutcomeTerm.final_micro),
                func.count(OutcomeTerm.final_micro),
            )
            .select_from(fact.source)
            .where(*fact.where, Outcome.won.is_(True), share.is_not(None))
            .group_by(*cell)
        )
        return self._rows(query)
