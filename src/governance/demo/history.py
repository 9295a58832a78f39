"""The rows of the sample history, deal by deal: the deal, its stored check and per-term
figures, its approval requests, its outcome with per-term figures, and the odd review.

Each row holds what the service itself would store, computed by the domain's own functions:
the engine's check (`evaluate`, `check_body`), the deal's attribute columns and engine
attributes (`deals.service`), its zero-term bits (`deals.repository.zero_term_mask`), the review
(`demo.approvals`) and the outcome figures and inferred trades (`engine.outcomes.measure`,
`outcomes.service.outcome_trades`). Rows are plain tuples in `repository.COLUMNS` order.
"""

from __future__ import annotations

import gc
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any

import orjson

from governance.deals.repository import zero_term_mask
from governance.deals.schemas import DealAttributes, salesforce_id_18
from governance.deals.serialize import check_body, number
from governance.deals.service import attribute_columns, engine_attributes, term_figures
from governance.demo.approvals import Review, Reviews
from governance.demo.market import (
    AMOUNT,
    COMPANY,
    CYCLE_DAYS,
    LOSS_REASONS,
    LOSS_WEIGHTS,
    PRODUCT_LINES,
    SEGMENT_WEIGHTS,
    SEGMENTS,
    SUFFIX,
    draw_terms,
    weighted,
    win_probability,
)
from governance.demo.people import DACH_FRENCH_SHARE, TEAMS, Rep
from governance.demo.playbooks import Timeline
from governance.demo.repository import (
    CHECKS,
    DEALS,
    ID_STRIDE,
    OUTCOME_TERMS,
    OUTCOMES,
    REQUESTS,
    REVIEWS,
    TERM_CHECKS,
    Rows,
)
from governance.engine import evaluate
from governance.engine.outcomes import OutcomeFigures, measure
from governance.engine.results import TermValue, Verdict
from governance.outcomes.service import outcome_trades
from governance.playbooks.registry import Published
from governance.scaled import to_cents, to_micro

NOTES = (
    "Should have asked for the multi-year commitment earlier.",
    "Procurement pushed hard on payment terms.",
    "Good preparation paid off.",
    "Conceded discount too early.",
    "Relationship with the champion carried it.",
)


@dataclass
class Report:
    """What was generated (per chunk, then in total), and how fast."""

    deals: int = 0
    checks: int = 0
    approvals: int = 0
    outcomes: int = 0
    reviews: int = 0
    rep_profiles: int = 0
    seconds: float = 0.0
    verdicts: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.deals / self.seconds if self.seconds else 0.0


def _json(value: TermValue | None) -> Any:
    return number(value) if isinstance(value, Decimal) else value


def _stored(value: TermValue) -> Any:
    """A term as the deal states it: whole numbers as JSON numbers, others as decimal strings."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else number(value)
    return value


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _same(value: Any) -> Any:
    return value


class Generator:
    """Builds the rows of chunks of deals; pure apart from the random draws."""

    def __init__(
        self,
        seed: int,
        timeline: Timeline,
        v1: Published,
        v2: Published,
        reps: Sequence[Rep],
        sla_hours: int,
        total: int,
        *,
        bits: Mapping[str, int] | None = None,
        json_text: bool = False,
    ) -> None:
        self.bits = dict(bits or {})
        self.seed = seed
        # COPY takes JSON columns as text: encode them as the rows are built (no second pass).
        self.json: Callable[[Any], Any] = _json_text if json_text else _same
        self.timeline = timeline
        self.v1 = v1
        self.v2 = v2
        self.reps = tuple(reps)
        self.reps_by_team = {t.name: [r for r in reps if r.team is t] for t in TEAMS}
        self.reviews = Reviews(timeline.as_of, sla_hours)
        self.total = total
        self.span = (timeline.as_of - timeline.start).total_seconds()
        self.team_weights = [t.weight for t in TEAMS]
        self._ranges: dict[tuple[int, str], tuple[Any, Any, Any]] = {}

    def chunk(self, index: int, first: int, count: int) -> tuple[Rows, Report]:
        """Rows for deals `first`..`first + count - 1` (1-based numbers, which are their ids)."""
        rng = random.Random(f"governance-demo:{self.seed}:{index}")
        rows = Rows()
        report = Report()
        # The chunk's rows live until written and hold no reference cycles: the cyclic collector
        # would only traverse them over and over (reference counting frees everything else).
        collecting = gc.isenabled()
        gc.disable()
        try:
            for n in range(first, first + count):
                self._deal(rng, n, rows, report)
        finally:
            if collecting:
                gc.enable()
        return rows, report

    def _deal(self, rng: random.Random, n: int, rows: Rows, report: Report) -> None:
        j = self.json
        tl = self.timeline
        created = tl.start + timedelta(seconds=(n - 1 + rng.random()) * self.span / self.total)
        team = weighted(rng, TEAMS, self.team_weights)
        rep = rng.choice(self.reps_by_team[team.name])
        segment = weighted(rng, SEGMENTS, SEGMENT_WEIGHTS)
        country = rng.choice(team.countries)
        if team.name == "DACH" and rng.random() < DACH_FRENCH_SHARE:
            country = "FR"
        median, sigma = AMOUNT[segment]
        amount = Decimal(max(1, round(rng.lognormvariate(math.log(median), sigma) / 100)) * 100)
        position = weighted(rng, ("strong", "parity", "weak", None), (0.22, 0.45, 0.23, 0.10))
        if rep.style == "game_changer" and position == "parity" and rng.random() < 0.4:
            position = "strong"  # they reframe the value before talking price
        product = rng.choice(PRODUCT_LINES)
        checked = created + timedelta(minutes=rng.randint(5, 3 * 24 * 60))
        checked = min(checked, tl.as_of - timedelta(minutes=1))
        published = self.v1 if checked < tl.v2_published else self.v2
        terms = draw_terms(rng, rep, segment, position, published is self.v2)
        cycle = rng.lognormvariate(math.log(CYCLE_DAYS[segment]), 0.5)
        close = (checked + timedelta(days=cycle)).date()

        # Checked as the service checks a stored deal: its attributes as rules see them.
        attributes = DealAttributes.model_validate(
            {
                "region": team.region,
                "segment": segment,
                "product_line": product,
                "team": team.name,
                "currency": team.currency,
                "amount": amount,
                "close_date": close,
                "owner_rep": rep.rep,
                "value_position": position,
                "country": country,
            }
        )
        result = evaluate(published.compiled, terms, engine_attributes(attributes))
        body = check_body(published, result)
        verdict = result.verdict
        report.verdicts[verdict.value] = report.verdicts.get(verdict.value, 0) + 1

        status = "draft"
        submitted: datetime | None = None
        review_version: int | None = None
        ended: datetime | None = checked
        review = Review()
        if verdict is Verdict.needs_approval:
            submitted = checked + timedelta(minutes=rng.randint(2, 240))
            if submitted >= tl.as_of:
                submitted = None
            else:
                review = self.reviews.review(rng, n, submitted, result, body, published)
                status, ended = review.status, review.ended
                review_version = published.version_id
        elif verdict is Verdict.auto_approved and (close < tl.as_of.date() or rng.random() < 0.5):
            submitted = checked + timedelta(minutes=rng.randint(1, 60))
            if submitted < tl.as_of:
                status, ended = "approved", submitted
            else:
                submitted = None
        requests = review.requests
        # A deal closes after its review ends; one still in review is open.
        if ended is None or (submitted is None and verdict is Verdict.needs_approval):
            close = max(close, tl.as_of.date() + timedelta(days=rng.randint(3, 45)))
        elif close <= ended.date():
            close = ended.date() + timedelta(days=rng.randint(1, 14))
        closed = close < tl.as_of.date()
        won = closed and rng.random() < win_probability(segment, position, result, status)
        stage = (
            ("Closed Won" if won else "Closed Lost")
            if closed
            else weighted(rng, ("Proposal", "Negotiation", "Contracting"), (0.4, 0.45, 0.15))
        )
        attributes.stage, attributes.close_date = stage, close
        closed_at = (
            datetime.combine(close, dtime(rng.randint(8, 19), rng.randint(0, 59)), tzinfo=UTC)
            if closed
            else None
        )
        last_change = max(
            [checked, submitted or checked]
            + [r[k] for r in requests for k in ("decided_at", "escalated_at") if r[k] is not None]
            + ([closed_at] if closed_at else [])
        )
        stored_terms = j({k: _stored(v) for k, v in terms.items()})  # the deal's, its check's
        company = f"{rng.choice(COMPANY)} {SUFFIX.get(country, 'Inc')}"
        variance = result.variance_score
        # Terms at ratio 0 are bits of `zero_terms`; the others get rows (see `DealTermCheck`).
        zero_terms, term_rows = zero_term_mask(term_figures(result), self.bits)
        columns = attribute_columns(attributes)
        context = (team.region, segment, team.name, rep.rep)
        rows.add(
            DEALS,
            (
                n, salesforce_id_18(f"006Dm{n:010d}"), f"{company} — {product} ({segment})",
                columns["region"], columns["segment"], columns["product_line"], columns["team"],
                columns["currency"], columns["amount"], columns["stage"], columns["close_date"],
                columns["owner_rep"], columns["value_position"], j(columns["extra_attributes"]),
                stored_terms, None, status, 1 + (status != "draft") + len(requests),
                verdict.value, variance, checked, review_version, 1, submitted, published.key,
                published.number, to_micro(variance), created, last_change, zero_terms,
            ),
        )  # fmt: skip
        # Stored compactly: the terms the deal does not state are left out of the history.
        stored_body = {**body, "terms": [t for t in body["terms"] if t["status"] != "missing"]}
        rows.add(
            CHECKS,
            (
                n, n, published.version_id, published.key, published.number, verdict.value,
                variance, stored_terms, j(attributes.model_dump(mode="json", exclude_none=True)),
                j(stored_body), rep.rep, checked, checked,
            ),
        )  # fmt: skip
        for key, term_status, ratio in term_rows:
            rows.add(
                TERM_CHECKS,
                (n, key, term_status, ratio, checked, checked, *context, published.key,
                 published.number, checked),
            )  # fmt: skip
        self._requests(n, rep, published, requests, context, rows)
        report.deals += 1
        report.checks += 1
        report.approvals += len(requests)
        if closed_at is None:
            return
        final, final_terms = terms, stored_terms
        if won and review.countered:
            final = {**terms, **review.countered}
            final_terms = j({k: _stored(v) for k, v in final.items()})
        # A counter changed the terms the deal closed on: measure those, not the checked ones.
        figures = measure(
            published.compiled,
            final,
            engine_attributes(attributes),
            None if final is not terms else result,
        )
        self._outcome(
            rng, n, won, closed_at, close, final_terms, figures, published, amount, team.currency,
            checked.date(), context, rows,
        )  # fmt: skip
        report.outcomes += 1
        if rng.random() < 0.3:
            filed = closed_at + timedelta(days=rng.randint(0, 10), hours=rng.randint(1, 8))
            if filed < tl.as_of:
                self._review(rng, n, rep, won, variance, filed, figures, close, context, rows)
                report.reviews += 1

    def _requests(
        self,
        n: int,
        rep: Rep,
        published: Published,
        requests: Sequence[dict[str, Any]],
        context: tuple[str, str, str, str],
        rows: Rows,
    ) -> None:
        j = self.json
        for r in requests:
            rows.add(
                REQUESTS,
                (
                    r["id"], n, 1, n, published.version_id, published.key, published.number,
                    r["group"], r["chain_group"], r["step"], j(r["terms"]), r["status"],
                    1 + (r["opened_at"] is not None) + (r["decided_at"] is not None)
                    + r["escalation_level"],
                    rep.rep, r["opened_at"], r["due_at"], r["remind_at"], r["reminded_at"],
                    r["escalated_at"], r["escalation_level"], r["decided_at"], r["decided_by"],
                    None, False, r["reason"], j(r["decided_values"]), j(r["counter_terms"]), None,
                    r["first_opened_at"], r["cycle_seconds"], r["within_sla"], r["created_at"],
                    r["decided_at"] or r["escalated_at"] or r["opened_at"] or r["created_at"],
                    *context,
                ),
            )  # fmt: skip

    def _outcome(
        self,
        rng: random.Random,
        n: int,
        won: bool,
        closed_at: datetime,
        close: date,
        final_terms: Any,
        figures: OutcomeFigures,
        published: Published,
        amount: Decimal,
        currency: str,
        checked_on: date,
        context: tuple[str, str, str, str],
        rows: Rows,
    ) -> None:
        """The outcome as `outcomes.service.record_outcome` records a Salesforce close."""
        j = self.json
        recorded = closed_at + timedelta(minutes=rng.randint(5, 180))
        recorded = min(recorded, self.timeline.as_of)
        cost = figures.cost
        rows.add(
            OUTCOMES,
            (
                n, n, won, closed_at, close, final_terms,
                "salesforce", "salesforce-sync",
                None if won else weighted(rng, LOSS_REASONS, LOSS_WEIGHTS),
                j(outcome_trades(published, figures)), figures.playbook, figures.version, amount,
                to_cents(amount), figures.verdict.value, to_micro(figures.variance_score), cost,
                None if cost is None else to_cents(cost), recorded, recorded, *context,
                figures.conceded_terms, figures.missed_targets, currency, checked_on,
            ),
        )  # fmt: skip
        cents, variance = to_cents(amount), to_micro(figures.variance_score)
        for k, t in enumerate(figures.terms):
            # The bargaining range is the document's: encoded once per version and term.
            declared = self._ranges.get((published.version_id, t.key))
            if declared is None:
                declared = (j(_json(t.opening)), j(_json(t.target)), j(_json(t.walk_away)))
                self._ranges[(published.version_id, t.key)] = declared
            opening, target, walk_away = declared
            rows.add(
                OUTCOME_TERMS,
                (
                    n * ID_STRIDE + k, n, n, t.key, t.kind, t.unit, opening, target,
                    j(_json(t.final)), walk_away,
                    to_micro(t.final) if isinstance(t.final, Decimal) else None, t.status.value,
                    to_micro(t.variance_ratio), t.conceded,
                    None if t.conceded_share is None else to_micro(t.conceded_share), t.held,
                    bool(t.gets), j(list(t.gets)), t.cost,
                        None if t.cost is None else to_cents(t.cost), recorded, recorded, *context,
                    figures.playbook, figures.version, close, won, cents, variance, currency,
                ),
            )  # fmt: skip

    @staticmethod
    def _review(
        rng: random.Random,
        n: int,
        rep: Rep,
        won: bool,
        variance: Decimal,
        filed: datetime,
        figures: OutcomeFigures,
        close: date,
        context: tuple[str, str, str, str],
        rows: Rows,
    ) -> None:
        def score(mean: float) -> int:
            return min(7, max(1, round(rng.gauss(mean, 1.1))))

        instrumental = score((5.3 if won else 3.2) - 1.5 * float(min(variance, Decimal(1))))
        note = rng.choice(NOTES) if rng.random() < 0.4 else None
        rows.add(
            REVIEWS,
            (
                n, n, instrumental, score(4.8), score(5.2 if won else 4.4),
                score(5.0 if won else 4.0), note, rep.rep, filed, filed, *context,
                figures.playbook, figures.version, close,
            ),
        )  # fmt: skip
