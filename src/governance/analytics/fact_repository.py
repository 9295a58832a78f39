"""The analytics reports' facts and the SQL they share: what each fact is, how a report scopes
one (filters, group columns) and how a histogram of it becomes distributions.

Each report reads one kind of fact: deals (their latest check), per-term checks, outcomes,
per-term outcomes, decided approval requests or after-action reviews. Every fact carries the
deal's context (region, segment, team, rep, playbook version), so no report joins the deals;
only rep style, rep region and a team missing on the deal come from the rep's profile, a join
with a table of a few rows.

Figures are scaled integers (see `governance.scaled`), so sums are exact and alike on both
databases. Each report is one pass over its facts into a histogram (a row per group and
distinct value, carrying the counts and sums the report needs), then a pass over that small
histogram with window functions: running counts give the two values around each wanted
percentile rank, which the caller interpolates as PostgreSQL's `percentile_cont` would. The
reports themselves are `repository`'s `AnalyticsRepository`.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Select,
    String,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from governance.analytics.schemas import Dimension, Filters
from governance.approvals.models import ApprovalRequest, RequestStatus
from governance.deals.models import Deal, DealTermCheck
from governance.outcomes.models import AfterActionReview, Outcome, OutcomeTerm
from governance.reps.models import RepProfile

Row = Sequence[Any]
GroupKey = tuple[Any, ...]
# Per group: how many values, their sum, the extra sums asked for, and per fraction the values
# at the two ranks around it.
Distribution = tuple[int, Any, list[Any], list[tuple[Any, Any]]]

DECIDED = (RequestStatus.approved, RequestStatus.rejected, RequestStatus.countered)
MEDIAN_P90 = ((1, 2), (9, 10))

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
    """One kind of fact: its table, the date filters apply to, and its context columns."""

    source: FromClause
    when: Any
    when_is_timestamp: bool
    region: Any
    segment: Any
    team: Any
    rep: Any
    playbook: Any
    version: Any
    where: tuple[ColumnElement[bool], ...] = ()
    # The deal's currency: a column of the fact's own, else read from its deal (`deal_id`).
    currency: Any = None
    deal_id: Any = None


def _fact(model: Any, when: Any, timestamp: bool, *where: ColumnElement[bool]) -> Fact:
    return Fact(
        source=model.__table__,
        when=when,
        when_is_timestamp=timestamp,
        region=model.region,
        segment=model.segment,
        team=model.team,
        rep=model.owner_rep,
        playbook=model.playbook_key,
        version=model.playbook_version,
        where=where,
        currency=getattr(model, "currency", None),
        deal_id=getattr(model, "deal_id", None),
    )


DEALS = Fact(
    source=Deal.__table__,
    when=Deal.last_checked_at,
    when_is_timestamp=True,
    region=Deal.region,
    segment=Deal.segment,
    team=Deal.team,
    rep=Deal.owner_rep,
    playbook=Deal.checked_playbook,
    version=Deal.checked_version,
    where=(
        Deal.deleted_at.is_(None),
        Deal.last_verdict.is_not(None),
        Deal.variance_micro.is_not(None),
    ),
    currency=Deal.currency,
)
TERM_CHECKS = _fact(DealTermCheck, DealTermCheck.checked_at, True)
OUTCOMES = _fact(Outcome, Outcome.close_date, False)
OUTCOME_TERMS = _fact(OutcomeTerm, OutcomeTerm.close_date, False)
DECISIONS = _fact(
    ApprovalRequest,
    ApprovalRequest.decided_at,
    True,
    ApprovalRequest.status.in_(DECIDED),
    ApprovalRequest.cycle_seconds.is_not(None),
)
REVIEWS = _fact(AfterActionReview, AfterActionReview.close_date, False)

# Won term outcomes, spelled as the covering index's predicate (`WHERE won`) so PostgreSQL uses it.
TERM_WON = typing.cast("ColumnElement[bool]", OutcomeTerm.won)

_PROFILE_DIMENSIONS = frozenset({Dimension.team, Dimension.style, Dimension.rep_region})


def count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    """How many rows meet the condition."""
    return func.sum(case((condition, 1), else_=0))


def total_of(value: Any) -> ColumnElement[Any]:
    """A sum that is 0, not NULL, over no rows."""
    return func.coalesce(func.sum(value), 0)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _constant(value: int | str) -> Any:
    """A constant written into the SQL (bands are code, never input): PostgreSQL matches a band
    expression to its extended statistics only when it holds constants, not parameters."""
    if isinstance(value, int):
        return literal_column(str(int(value)), BigInteger)
    return literal_column("'" + value.replace("'", "''") + "'", String)


def banded(value: Any, bands: tuple[tuple[int | None, str], ...], inclusive: bool) -> Any:
    whens = [
        ((value <= _constant(upper)) if inclusive else (value < _constant(upper)), _constant(label))
        for upper, label in bands
        if upper is not None
    ]
    return case(*whens, else_=_constant(bands[-1][1]))


def amount_band(cents: Any) -> Any:
    return case((cents.is_(None), _constant("unknown")), else_=banded(cents, AMOUNT_BANDS, False))


class FactRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name
        if self.dialect == "postgresql":
            # For this transaction only. JIT compilation cost more than it saved on every
            # report measured (0.7 s of a 3 s query), and the default 4 MB of work memory made
            # PostgreSQL sort groups on disk rather than hash them (bench/RESULTS.md).
            session.execute(text("SET LOCAL jit = off"))
            session.execute(text("SET LOCAL work_mem = '256MB'"))

    # --- scoping -------------------------------------------------------------------------------

    def _month(self, fact: Fact) -> Any:
        if self.dialect == "sqlite":
            return func.strftime("%Y-%m", fact.when)
        column = func.timezone("UTC", fact.when) if fact.when_is_timestamp else fact.when
        return func.to_char(column, "YYYY-MM")

    def dimension(self, dimension: Dimension, fact: Fact) -> Any:
        if dimension is Dimension.month:
            return self._month(fact)
        if dimension is Dimension.currency:
            # Facts without a currency of their own read their deal's (`scope` joins it).
            return Deal.currency if fact.currency is None else fact.currency
        return {
            Dimension.region: fact.region,
            Dimension.segment: fact.segment,
            Dimension.team: func.coalesce(fact.team, RepProfile.team),
            Dimension.rep: fact.rep,
            Dimension.style: RepProfile.style,
            Dimension.rep_region: RepProfile.region,
            Dimension.playbook: fact.playbook,
            Dimension.version: fact.version,
        }[dimension]

    def scope(
        self, fact: Fact, filters: Filters, dimensions: Sequence[Dimension], *extra: Dimension
    ) -> tuple[Fact, list[Any]]:
        """The fact narrowed by the filters, and its group columns labelled g0, g1, …"""
        wanted = set(dimensions) | set(extra)
        source = fact.source
        if filters.style or filters.team or wanted & _PROFILE_DIMENSIONS:
            source = source.outerjoin(RepProfile.__table__, RepProfile.rep == fact.rep)
        if fact.currency is None and (filters.currency or Dimension.currency in wanted):
            source = source.join(Deal.__table__, Deal.id == fact.deal_id)
        where = list(fact.where)
        if filters.date_from is not None:
            start = _start_of(filters.date_from) if fact.when_is_timestamp else filters.date_from
            where.append(fact.when >= start)
        if filters.date_to is not None:
            if fact.when_is_timestamp:
                if filters.date_to < date.max:  # to 9999-12-31 is to the end of time
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
            Dimension.currency: filters.currency,
        }
        for dimension, value in equal.items():
            if value is not None:
                where.append(self.dimension(dimension, fact) == value)
        scoped = replace(fact, source=source, where=tuple(where))
        groups = [self.dimension(d, fact).label(f"g{i}") for i, d in enumerate(dimensions)]
        return scoped, groups

    def _rows(self, query: Select[Any]) -> list[Row]:
        return list(self.session.execute(query).all())

    # --- distributions -------------------------------------------------------------------------

    @staticmethod
    def histogram(
        fact: Fact, keys: Sequence[Any], value: Any, extras: Sequence[Any] = ()
    ) -> Select[Any]:
        """One row per group and distinct value: how many, and the extra sums."""
        return (
            select(
                *keys,
                value.label("v"),
                func.count().label("n"),
                *(e.label(f"e{i}") for i, e in enumerate(extras)),
            )
            .select_from(fact.source)
            .where(*fact.where, value.is_not(None))
            .group_by(*keys, value)
        )

    def distributions(
        self,
        histogram: Any,
        width: int,
        extras: int,
        levels: Sequence[int],
        fractions: Sequence[tuple[int, int]] = MEDIAN_P90,
    ) -> dict[int, dict[GroupKey, Distribution]]:
        """Per level (how many leading keys it groups by) and group: the distribution of the
        histogram's values.

        The histogram (rows of g0…g{width-1}, v, n, e0…) is aggregated once per level in the
        same statement, so a report's totals and its breakdown cost one pass over the facts.
        """
        base = histogram.cte("h0")
        parts = []
        for level in levels:
            keys = [base.c[f"g{i}"] for i in range(level)]
            padding = [null().label(f"g{i}") for i in range(level, width)]
            parts.append(
                select(
                    literal(level).label("lvl"),
                    *keys,
                    *padding,
                    base.c.v,
                    func.sum(base.c.n).label("n"),
                    *(func.sum(base.c[f"e{i}"]).label(f"e{i}") for i in range(extras)),
                ).group_by(*keys, base.c.v)
            )
        hist = union_all(*parts).subquery("h")
        partition = [hist.c.lvl, *(hist.c[f"g{i}"] for i in range(width))]
        running = select(
            hist,
            cast(
                func.sum(hist.c.n).over(partition_by=partition, order_by=hist.c.v, rows=(None, 0)),
                BigInteger,
            ).label("upto"),
            cast(func.sum(hist.c.n).over(partition_by=partition), BigInteger).label("total"),
        ).subquery("c")
        ckeys = [running.c.lvl, *(running.c[f"g{i}"] for i in range(width))]
        picks: list[Any] = []
        for num, den in fractions:
            spread = (running.c.total - 1) * num
            picks.append(func.min(case((running.c.upto > spread // den, running.c.v))))
            picks.append(
                func.min(case((running.c.upto > (spread + (den - 1)) // den, running.c.v)))
            )
        query = select(
            *ckeys,
            func.max(running.c.total),
            func.sum(running.c.v * running.c.n),
            *(func.sum(running.c[f"e{i}"]) for i in range(extras)),
            *picks,
        ).group_by(*ckeys)
        out: dict[int, dict[GroupKey, Distribution]] = {level: {} for level in levels}
        for row in self.session.execute(query).all():
            level = int(row[0])
            key = tuple(row[1 : 1 + level])
            rest = row[1 + width :]
            if rest[0] is None:
                continue
            sums = list(rest[2 : 2 + extras])
            tail = rest[2 + extras :]
            pairs = [(tail[2 * i], tail[2 * i + 1]) for i in range(len(fractions))]
            out[level][key] = (int(rest[0]), rest[1], sums, pairs)
        return out
