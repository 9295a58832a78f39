"""SQL for the analytics reports, one method a report: each scopes its fact (`fact_repository`),
groups it by the dimensions asked for and lets the database aggregate, so Python only sees one
row per group.

Per-term variance keeps a row only for a term outside its band; the within-band terms are bits
of `deals.zero_terms`, counted from the deals and added to the histogram as value 0.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import JSONB

from governance.analytics.fact_repository import (
    DEALS,
    DECISIONS,
    OUTCOME_TERMS,
    OUTCOMES,
    REVIEWS,
    SCORE_BANDS,
    TERM_CHECKS,
    TERM_WON,
    Distribution,
    FactRepository,
    GroupKey,
    Row,
    amount_band,
    banded,
    count_if,
    total_of,
)
from governance.analytics.schemas import Across, Dimension, Filters
from governance.approvals.models import ApprovalRequest, RequestStatus
from governance.deals.models import AnalyticsTermBit, Deal, DealTermCheck
from governance.outcomes.models import AfterActionReview, Outcome, OutcomeTerm
from governance.playbooks.models import Playbook, PlaybookVersion


class AnalyticsRepository(FactRepository):
    """The reports' queries over the facts `FactRepository` scopes."""

    # --- reports -------------------------------------------------------------------------------

    def verdicts(self, filters: Filters, dimensions: Sequence[Dimension]) -> list[Row]:
        fact, groups = self.scope(DEALS, filters, dimensions)
        query = (
            select(
                *groups,
                func.count(),
                count_if(Deal.last_verdict == "auto_approved"),
                count_if(Deal.last_verdict == "needs_approval"),
                count_if(Deal.last_verdict == "blocked"),
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
        extras = [total_of(Deal.variance_micro), count_if(Deal.last_verdict != "auto_approved")]
        extras += [
            total_of(Deal.zero_terms.op(">>")(literal(bit, Integer)).op("&")(1)) for _, bit in bits
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
        outside = count_if(DealTermCheck.status.in_(("exception", "blocked")))
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
                count_if(share > 0),
                total_of(share),
                func.count(share),
                count_if(OutcomeTerm.held.is_(True)),
                total_of(OutcomeTerm.cost_cents),
                count_if(ungot),
                total_of(case((ungot, OutcomeTerm.cost_cents))),
            )
            .select_from(fact.source)
            .where(*fact.where, TERM_WON)
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
                count_if(Outcome.conceded_terms > 0),
                count_if(Outcome.missed_targets == 0),
                total_of(Outcome.cost_cents),
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
            count_if(ApprovalRequest.within_sla.is_(True)),
            count_if(ApprovalRequest.escalation_level > 0),
            count_if(ApprovalRequest.status == RequestStatus.rejected),
            count_if(ApprovalRequest.status == RequestStatus.countered),
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
            banded(Outcome.variance_micro, SCORE_BANDS, True).label(f"g{len(groups)}"),
        ]
        won = Outcome.won.is_(True)
        priced = and_(won, Outcome.amount_cents.is_not(None))
        query = (
            select(
                *keyed,
                func.count(),
                count_if(won),
                total_of(case((priced, func.coalesce(Outcome.cost_cents, 0)))),
                total_of(case((priced, Outcome.amount_cents))),
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
            banded(OutcomeTerm.deal_variance_micro, SCORE_BANDS, True).label(f"g{len(groups)}"),
        ]
        query = (
            select(*keyed, total_of(OutcomeTerm.final_micro), func.count(OutcomeTerm.final_micro))
            .select_from(fact.source)
            .where(
                *fact.where,
                OutcomeTerm.term_key == term,
                TERM_WON,
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
                count_if(won),
                total_of(Outcome.variance_micro),
                func.count(Outcome.variance_micro),
                count_if(Outcome.verdict == "auto_approved"),
                total_of(case((priced, func.coalesce(Outcome.cost_cents, 0)))),
                total_of(case((priced, Outcome.amount_cents))),
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
                total_of(share),
                total_of(OutcomeTerm.final_micro),
                func.count(OutcomeTerm.final_micro),
            )
            .select_from(fact.source)
            .where(*fact.where, TERM_WON, share.is_not(None))
            .group_by(*cell)
        )
        return self._rows(query)
