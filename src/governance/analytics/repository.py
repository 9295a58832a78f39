"""SQL for analytics: the database aggregates; Python only sees one row per group.

Each report reads one kind of fact: deals (their latest check), per-term checks, outcomes,
per-term outcomes, decided approval requests or after-action reviews. Every fact carries the
deal's context (region, segment, team, rep, playbook version), so no report joins the deals;
only rep style, rep region and a team missing on the deal come from the rep's profile, a join
with a table of a few rows.

Figures are scaled integers (see `governance.scaled`), so sums are exact and alike on both
databases. Each report is one pass over its facts into a histogram (a row per group and
distinct value, carrying the counts and sums the report needs), then a pass over that small
histogram with window functions: running counts give the two values around each wanted
percentile rank, which the caller interpolates as PostgreSQL's `percentile_cont` would.

Per-term variance keeps a row only for a term outside its band; the within-band terms are bits
of `deals.zero_terms`, counted from the deals and added to the histogram as value 0.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Integer,
    Select,
    String,
    and_,
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
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from governance.analytics.schemas import Across, Dimension, Filters
from governance.approvals.models import ApprovalRequest, RequestStatus
from governance.deals.models import AnalyticsTermBit, Deal, DealTermCheck
from governance.outcomes.models import AfterActionReview, Outcome, OutcomeTerm
from governance.playbooks.models import Playbook, PlaybookVersion
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
_TERM_WON = typing.cast("ColumnElement[bool]", OutcomeTerm.won)

_PROFILE_DIMENSIONS = frozenset({Dimension.team, Dimension.style, Dimension.rep_region})


def _n(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    """How many rows meet the condition."""
    return func.sum(case((condition, 1), else_=0))


def _total(value: Any) -> ColumnElement[Any]:
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


def _banded(value: Any, bands: tuple[tuple[int | None, str], ...], inclusive: bool) -> Any:
    whens = [
        ((value <= _constant(upper)) if inclusive else (value < _constant(upper)), _constant(label))
        for upper, label in bands
        if upper is not None
    ]
    return case(*whens, else_=_constant(bands[-1][1]))


def amount_band(cents: Any) -> Any:
    return case((cents.is_(None), _constant("unknown")), else_=_banded(cents, AMOUNT_BANDS, False))


class AnalyticsRepository:
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
            )
            .select_from(fact.source)
            .where(*fact.where)
            .group_by(*groups)
        )
        return self._rows(query)

    def scores(
        self, filters: Filters, dimensions: Sequence[Dimension]
    ) -> tuple[dict[GroupKey, Distribution], dict[GroupKey, dict[str, int]]]:
        """Variance scores per group, in thousandths (extra sums: the exact total in millionths,
        and the deals with any term outside), and per group and term the stated terms at ratio
        0, counted from `deals.zero_terms` in the same pass over the deals."""
        fact, groups = self.scope(DEALS, filters, dimensions)
        bits = self.session.execute(select(AnalyticsTermBit.term_key, AnalyticsTermBit.bit)).all()
        extras = [_total(Deal.variance_micro), _n(Deal.last_verdict != "auto_approved")]
        extras += [
            _total(Deal.zero_terms.op(">>")(literal(bit, Integer)).op("&")(1)) for _, bit in bits
        ]
        # Percentiles of the score count in thousandths (rounded down): at most a thousand
        # distinct values per group instead of one per deal keep the histogram small (grouped
        # by team and style over 1M deals: 1.2 s → 0.8 s). The mean stays exact: the first
        # extra sum is the scores' own total.
        histogram = self.histogram(fact, groups, Deal.variance_micro // 1000, extras)
        width = len(groups)
        found = self.distributions(histogram, width, len(extras), (width,))[width]
        zeros = {
            key: {term: int(n or 0) for (term, _), n in zip(bits, dist[2][2:], strict=True)}
            for key, dist in found.items()
        }
        return found, zeros

    def term_ratios(
        self,
        filters: Filters,
        dimensions: Sequence[Dimension],
        zeros: dict[GroupKey, dict[str, int]],
    ) -> dict[GroupKey, Distribution]:
        """Per group and term: variance ratios, with the within-band terms counted in `zeros`
        (from `scores`) added as zeros; the extra sum is the count outside the band."""
        width = len(dimensions)
        fact, groups = self.scope(TERM_CHECKS, filters, dimensions)
        term = DealTermCheck.term_key.label(f"g{width}")
        outside = _n(DealTermCheck.status.in_(("exception", "blocked")))
        rows = self.histogram(fact, [*groups, term], DealTermCheck.variance_ratio_micro, (outside,))
        counted = [
            [*key, term_key, count]
            for key, counts in zeros.items()
            for term_key, count in counts.items()
            if count
        ]
        histogram = union_all(rows, self._zero_rows(dimensions, counted)) if counted else rows
        return self.distributions(histogram, width + 1, 1, (width + 1,))[width + 1]

    def _zero_rows(self, dimensions: Sequence[Dimension], counted: list[list[Any]]) -> Select[Any]:
        """Histogram rows (g0…, term, v = 0, n, e0 = 0) read from one JSON parameter holding
        `[*group key, term, count]` per group and term. One row per group and term written as
        its own SELECT made the statement grow with the groups, past SQLite's 500 parts of a
        compound SELECT and PostgreSQL's stack depth (42 reps × 12 terms); a parameter keeps
        the statement the same size however many groups there are."""
        width = len(dimensions)
        types: list[Any] = [Integer if d is Dimension.version else String for d in dimensions]
        types.append(String)
        document = json.dumps(counted)
        if self.dialect == "postgresql":
            elements = func.jsonb_array_elements(cast(literal(document), JSONB))
            item = elements.table_valued("value").alias("z")

            def at(index: int, type_: Any) -> Any:
                return cast(item.c.value.op("->>")(literal_column(str(index))), type_)

        else:
            item = func.json_each(literal(document)).table_valued("value").alias("z")

            def at(index: int, type_: Any) -> Any:
                return cast(func.json_extract(item.c.value, f"$[{index}]"), type_)

        return select(
            *(at(i, type_).label(f"g{i}") for i, type_ in enumerate(types)),
            literal_column("0", BigInteger).label("v"),
            at(width + 1, BigInteger).label("n"),
            literal_column("0", BigInteger).label("e0"),
        ).select_from(item)

    def concessions_by_term(self, filters: Filters, dimensions: Sequence[Dimension]) -> list[Row]:
        """Per group and term, over won deals: stated, conceded, share sum and count, held,
        cost, and the concessions that got nothing in return (count and cost)."""
        fact, groups = self.scope(OUTCOME_TERMS, filters, dimensions)
        keyed = [*groups, OutcomeTerm.term_key.label(f"g{len(groups)}")]
        share = OutcomeTerm.conceded_share_micro
        ungot = and_(share > 0, OutcomeTerm.traded.is_(False))
        query = (
            select(
                *keyed,
                func.count(),
                _n(share > 0),
                _total(share),
                func.count(share),
                _n(OutcomeTerm.held.is_(True)),
                _total(OutcomeTerm.cost_cents),
                _n(ungot),
                _total(case((ungot, OutcomeTerm.cost_cents))),
            )
            .select_from(fact.source)
            .where(*fact.where, _TERM_WON)
            .group_by(*keyed)
        )
        return self._rows(query)

    def won_deals(self, filters: Filters, dimensions: Sequence[Dimension]) -> list[Row]:
        """Per group: won deals, those that conceded any term, those that held every target,
        and what their concessions cost."""
        fact, groups = self.scope(OUTCOMES, filters, dimensions)
        query = (
            select(
                *groups,
                func.count(),
                _n(Outcome.conceded_terms > 0),
                _n(Outcome.missed_targets == 0),
                _total(Outcome.cost_cents),
            )
            .select_from(fact.source)
            .where(*fact.where, Outcome.won.is_(True))
            .group_by(*groups)
        )
        return self._rows(query)

    def decisions(
        self, filters: Filters, dimensions: Sequence[Dimension]
    ) -> dict[int, dict[GroupKey, Distribution]]:
        """Cycle times in tenths of an hour (rounded down), per group (level `width`) and per group,
        approver group and step (level `width + 2`); extra sums: within SLA, escalated,
        rejected, countered."""
        fact, groups = self.scope(DECISIONS, filters, dimensions)
        width = len(groups)
        keyed = [
            *groups,
            # The group the chain names at that step: after an escalation the wait is still
            # that step's (the escalation counts against it), whoever decided in the end.
            ApprovalRequest.chain_group.label(f"g{width}"),
            ApprovalRequest.step.label(f"g{width + 1}"),
        ]
        extras = (
            _n(ApprovalRequest.within_sla.is_(True)),
            _n(ApprovalRequest.escalation_level > 0),
            _n(ApprovalRequest.status == RequestStatus.rejected),
            _n(ApprovalRequest.status == RequestStatus.countered),
        )
        # Cycle times count in tenths of an hour (6 minutes): a few thousand distinct values
        # instead of one per request keep the histogram small (2 s → 0.4 s grouped by team and
        # style over 800,000 requests; bench/RESULTS.md).
        tenths = ApprovalRequest.cycle_seconds // 360
        histogram = self.histogram(fact, keyed, tenths, extras)
        return self.distributions(histogram, width + 2, len(extras), (width, width + 2))

    def closed(self, filters: Filters, dimensions: Sequence[Dimension]) -> list[Row]:
        """Per group and score band at close: closed, won, and the won deals' concession cost
        and amount (for the margin kept)."""
        fact, groups = self.scope(OUTCOMES, filters, dimensions)
        keyed = [
            *groups,
            _banded(Outcome.variance_micro, SCORE_BANDS, True).label(f"g{len(groups)}"),
        ]
        won = Outcome.won.is_(True)
        priced = and_(won, Outcome.amount_cents.is_not(None))
        query = (
            select(
                *keyed,
                func.count(),
                _n(won),
                _total(case((priced, func.coalesce(Outcome.cost_cents, 0)))),
                _total(case((priced, Outcome.amount_cents))),
            )
            .select_from(fact.source)
            .where(*fact.where, Outcome.variance_micro.is_not(None))
            .group_by(*keyed)
        )
        return self._rows(query)

    def discounts(self, filters: Filters, dimensions: Sequence[Dimension], term: str) -> list[Row]:
        """Per group and score band at close: the won deals' summed final value of one term."""
        fact, groups = self.scope(OUTCOME_TERMS, filters, dimensions)
        keyed = [
            *groups,
            _banded(OutcomeTerm.deal_variance_micro, SCORE_BANDS, True).label(f"g{len(groups)}"),
        ]
        query = (
            select(*keyed, _total(OutcomeTerm.final_micro), func.count(OutcomeTerm.final_micro))
            .select_from(fact.source)
            .where(
                *fact.where,
                OutcomeTerm.term_key == term,
                _TERM_WON,
                OutcomeTerm.deal_variance_micro.is_not(None),
            )
            .group_by(*keyed)
        )
        return self._rows(query)

    def version_window(
        self, filters: Filters, playbook: str, version: int, start: date, end: date
    ) -> Row:
        """Closed deals of one playbook version checked in [start, end)."""
        narrowed = filters.model_copy(
            update={"playbook": None, "version": None, "date_from": None, "date_to": None}
        )
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
                Outcome.checked_on >= start,
                Outcome.checked_on < end,
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
            OutcomeTerm.playbook_key,
            OutcomeTerm.segment,
            OutcomeTerm.currency,  # amounts compare within one currency
            amount_band(OutcomeTerm.amount_cents),
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
            .where(*fact.where, _TERM_WON, share.is_not(None))
            .group_by(*cell)
        )
        return self._rows(query)
