"""A deal's outcome: won or lost, final terms, trades, and per-term figures (conceded, held,
cost) measured against the playbook version the deal was checked against."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from governance.approvals.schemas import PlaybookVersionRef
from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.db import utcnow
from governance.deals import service as deal_service
from governance.deals.models import Deal
from governance.engine.evaluator import evaluate
from governance.engine.outcomes import OutcomeFigures, TermOutcome, measure
from governance.engine.results import Status, Verdict
from governance.errors import GovernanceError, InvalidInput, NotFound
from governance.outcomes.models import Outcome, OutcomeTerm
from governance.outcomes.repository import OutcomeRepository
from governance.outcomes.schemas import (
    OutcomeRead,
    OutcomeTermRead,
    OutcomeTrade,
    OutcomeTradeInput,
)
from governance.outcomes.service.common import (
    CONTEXT,
    SOURCES,
    governed_by,
    governing_version,
    locked_deal,
    parse_terms,
    plain,
    stored_terms,
    wire,
)
from governance.outcomes.service.review import place_review
from governance.playbooks.registry import PlaybookRegistry, Published
from governance.problems import Problem
from governance.salesforce import outbox as salesforce_outbox
from governance.scaled import from_micro, to_cents, to_micro


def outcome_trades(
    published: Published, figures: OutcomeFigures, given: Sequence[OutcomeTradeInput] = ()
) -> list[dict[str, Any]]:
    """An outcome's trades as stored: the recorded ones (`given`), checked, then those the
    figures infer (`TermOutcome.gets`) that were not recorded; 422 naming each bad field."""
    document = published.compiled.document
    problems: list[Problem] = []
    out: list[dict[str, Any]] = []
    got_by_term: dict[str, list[str]] = {}
    for i, trade in enumerate(given):
        outcome = figures.term(trade.gave)
        term = document.term(trade.gave)
        if term is None:
            problems.append(
                Problem(("trades", i, "gave"), f"{trade.gave!r} is not a term of the playbook")
            )
            continue
        if outcome is None:
            problems.append(
                Problem(("trades", i, "gave"), f"{trade.gave} is not among the final terms")
            )
            continue
        conceded = (
            outcome.conceded > 0
            if outcome.conceded is not None
            else outcome.status in (Status.exception, Status.blocked)
        )
        if not conceded:
            problems.append(
                Problem(
                    ("trades", i, "gave"),
                    f"{trade.gave} was not conceded (it closed at or better than its opening)",
                )
            )
            continue
        for j, got in enumerate(trade.got):
            if document.term(got) is None and got not in term.gets:
                problems.append(
                    Problem(
                        ("trades", i, "got", j),
                        f"{got!r} is neither a term of the playbook nor one of {trade.gave}'s "
                        f"gets {term.gets}",
                    )
                )
        got_list = list(dict.fromkeys(trade.got))
        got_by_term.setdefault(trade.gave, []).extend(got_list)
        out.append({"gave": trade.gave, "got": got_list, "note": trade.note, "inferred": False})
    if problems:
        raise InvalidInput(errors=problems)
    for outcome in figures.terms:
        recorded = got_by_term.get(outcome.key, [])
        inferred = [g for g in outcome.gets if g not in recorded]
        if inferred:
            out.append({"gave": outcome.key, "got": inferred, "note": None, "inferred": True})
    return out


def _term_values(
    outcome_id: int,
    deal_id: int,
    outcome: Mapping[str, Any],
    figures: TermOutcome,
    trades: list[dict[str, Any]],
) -> dict[str, Any]:
    """One per-term row of an outcome (`outcome`: the outcome's columns, see `_outcome_values`)."""
    gets = list(dict.fromkeys(g for t in trades if t["gave"] == figures.key for g in t["got"]))
    final = figures.final
    return {
        "outcome_id": outcome_id,
        "deal_id": deal_id,
        "term_key": figures.key,
        "kind": figures.kind,
        "unit": figures.unit,
        "opening": wire(figures.opening),
        "target": wire(figures.target),
        "final": wire(final),
        "walk_away": wire(figures.walk_away),
        "final_micro": to_micro(final) if isinstance(final, Decimal) else None,
        "status": figures.status.value,
        "variance_ratio_micro": to_micro(figures.variance_ratio),
        "conceded": figures.conceded,
        "conceded_share_micro": (
            None if figures.conceded_share is None else to_micro(figures.conceded_share)
        ),
        "held": figures.held,
        "traded": bool(gets),
        "gets": gets,
        "cost": figures.cost,
        "cost_cents": None if figures.cost is None else to_cents(figures.cost),
        "close_date": outcome["close_date"],
        "won": outcome["won"],
        "currency": outcome["currency"],
        "amount_cents": outcome["amount_cents"],
        "deal_variance_micro": outcome["variance_micro"],
        **{name: outcome[name] for name in CONTEXT},
    }


def _outcome_values(
    actor: Principal,
    deal: Deal,
    published: Published,
    figures: OutcomeFigures,
    *,
    won: bool,
    raw: dict[str, Any],
    trades: list[dict[str, Any]],
    close_date: date | None,
    closed_at: datetime | None,
    loss_reason: str | None,
    source: str,
    now: datetime,
) -> dict[str, Any]:
    """An outcome's columns (all but its ids): how it closed, its figures, the deal's context."""
    return {
        "won": won,
        "closed_at": closed_at or now,
        "close_date": close_date or (closed_at or now).date(),
        "final_terms": raw,
        "source": source,
        "recorded_by": actor.actor,
        "loss_reason": loss_reason,
        "trades": trades,
        "playbook_key": published.key,
        "playbook_version": published.number,
        "amount": deal.amount,
        "amount_cents": None if deal.amount is None else to_cents(deal.amount),
        "verdict": figures.verdict.value,
        "variance_micro": to_micro(figures.variance_score),
        "cost": figures.cost,
        "cost_cents": None if figures.cost is None else to_cents(figures.cost),
        "conceded_terms": figures.conceded_terms,
        "missed_targets": figures.missed_targets,
        "region": deal.region,
        "segment": deal.segment,
        "team": deal.team,
        "owner_rep": deal.owner_rep,
        "currency": deal.currency,
        "checked_on": (deal.last_checked_at or now).date(),
    }


def _figures(
    published: Published, deal: Deal, raw: Mapping[str, object], field: str
) -> OutcomeFigures:
    """The deal's closing figures for these terms under `published` (422 for bad terms)."""
    typed = parse_terms(published, raw, field)
    attributes = deal_service.engine_attributes(deal_service.attributes_of(deal))
    result = evaluate(published.compiled, typed, attributes)
    return measure(published.compiled, typed, attributes, result)


def record_outcome(
    session: Session,
    registry: PlaybookRegistry,
    actor: Principal,
    deal: Deal,
    *,
    won: bool,
    close_date: date | None = None,
    final_terms: Mapping[str, object] | None = None,
    loss_reason: str | None = None,
    trades: Sequence[OutcomeTradeInput] = (),
    source: str = "api",
    closed_at: datetime | None = None,
) -> tuple[Outcome, bool]:
    """Record (or replace) how the deal closed, with every stated term's figures.

    `final_terms` default to the deal's current terms; `close_date` to today (UTC); `closed_at`
    to now. A lost deal needs a `loss_reason`, except from the Salesforce sync, which has none.
    Returns the outcome and whether it was created (False: an earlier one was replaced).
    """
    assert source in SOURCES
    problems: list[Problem] = []
    if won and loss_reason is not None:
        problems.append(Problem(("loss_reason",), "only a lost deal has a loss reason"))
    if not won and loss_reason is None and source != "salesforce":
        problems.append(Problem(("loss_reason",), "required when the deal was lost"))
    if problems:
        raise InvalidInput(errors=problems)
    published = governing_version(session, registry, deal)
    raw = dict(deal.terms) if final_terms is None else stored_terms(final_terms)
    figures = _figures(published, deal, raw, "terms" if final_terms is None else "final_terms")
    recorded_trades = outcome_trades(published, figures, trades)

    repo = OutcomeRepository(session)
    outcome = repo.outcome(deal.id)
    created = outcome is None
    before = None if outcome is None else _summary(outcome)
    if outcome is None:
        outcome = Outcome(deal_id=deal.id)
        repo.add(outcome)
    shown = None if created else outcome.won
    values = _outcome_values(
        actor,
        deal,
        published,
        figures,
        won=won,
        raw=raw,
        trades=recorded_trades,
        close_date=close_date,
        closed_at=closed_at,
        loss_reason=loss_reason,
        source=source,
        now=utcnow(),
    )
    for name, value in values.items():
        setattr(outcome, name, value)
    session.flush()
    repo.replace_terms(
        outcome.id,
        [
            OutcomeTerm(**_term_values(outcome.id, deal.id, values, t, recorded_trades))
            for t in figures.terms
        ],
    )
    review = repo.review(deal.id)
    if review is not None:  # a re-recorded close moves its review with it
        place_review(review, outcome)
    session.flush()
    if shown != won:
        salesforce_outbox.enqueue(session, deal.id)  # Salesforce shows won or lost
    audit.record(
        session,
        actor,
        "deal.closed",
        "deal",
        deal.external_id,
        before=before,
        after=_summary(outcome),
    )
    return outcome, created


def record_synced_outcomes(
    session: Session,
    registry: PlaybookRegistry,
    actor: Principal,
    closes: Sequence[tuple[Deal, bool]],
) -> dict[int, GovernanceError]:
    """`record_outcome(source="salesforce")` for many deals with no outcome yet (won or lost,
    their current terms, the deal's close date), in a few statements: the Salesforce pull's
    page of closed opportunities. The caller holds the deals' locks. Returns the refusals
    (a deal whose terms cannot be measured), by deal id; the others are recorded."""
    repo = OutcomeRepository(session)
    checked = repo.latest_check_versions([d.id for d, _ in closes if d.review_version_id is None])
    now = utcnow()
    refused: dict[int, GovernanceError] = {}
    measured: list[tuple[Deal, OutcomeFigures, list[dict[str, Any]], dict[str, Any]]] = []
    for deal, won in closes:
        try:
            published = governed_by(registry, deal, checked.get(deal.id))
            raw = dict(deal.terms)
            figures = _figures(published, deal, raw, "terms")
            trades = outcome_trades(published, figures)
        except GovernanceError as exc:
            refused[deal.id] = exc
            continue
        values = _outcome_values(
            actor,
            deal,
            published,
            figures,
            won=won,
            raw=raw,
            trades=trades,
            close_date=deal.close_date,
            closed_at=None,
            loss_reason=None,
            source="salesforce",
            now=now,
        )
        measured.append((deal, figures, trades, values))
    if not measured:
        return refused
    ids = repo.add_outcomes(
        [
            {"deal_id": deal.id, **values, "created_at": now, "updated_at": now}
            for deal, _, _, values in measured
        ]
    )
    repo.add_terms(
        [
            {
                **_term_values(outcome_id, deal.id, values, term, trades),
                "created_at": now,
                "updated_at": now,
            }
            for (deal, figures, trades, values), outcome_id in zip(measured, ids, strict=True)
            for term in figures.terms
        ]
    )
    # Salesforce shows won or lost: every new outcome goes out.
    salesforce_outbox.enqueue_many(session, [deal.id for deal, _, _, _ in measured])
    for deal, _, _, values in measured:
        audit.record(
            session, actor, "deal.closed", "deal", deal.external_id, after=_summary_of(values)
        )
    return refused


def _summary(outcome: Outcome) -> dict[str, Any]:
    return _summary_of({name: getattr(outcome, name) for name in SUMMARY})


SUMMARY = (
    "won",
    "close_date",
    "final_terms",
    "loss_reason",
    "source",
    "playbook_key",
    "playbook_version",
    "cost",
    "trades",
)


def _summary_of(outcome: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of an outcome (`outcome`: its columns)."""
    close_date = outcome["close_date"]
    cost = outcome["cost"]
    return {
        "won": outcome["won"],
        "close_date": close_date.isoformat() if close_date else None,
        "final_terms": outcome["final_terms"],
        "loss_reason": outcome["loss_reason"],
        "source": outcome["source"],
        "playbook": f"{outcome['playbook_key']}/{outcome['playbook_version']}",
        "cost": None if cost is None else str(cost),
        "trades": outcome["trades"],
    }


def close_deal(
    session: Session,
    registry: PlaybookRegistry,
    actor: Principal,
    external_id: str,
    *,
    won: bool,
    close_date: date | None = None,
    final_terms: Mapping[str, object] | None = None,
    loss_reason: str | None = None,
    trades: Sequence[OutcomeTradeInput] = (),
) -> tuple[OutcomeRead, bool]:
    """The API's close: lock the deal, record its outcome, return it as read."""
    deal = locked_deal(session, external_id)
    outcome, created = record_outcome(
        session,
        registry,
        actor,
        deal,
        won=won,
        close_date=close_date or utcnow().date(),
        final_terms=final_terms,
        loss_reason=loss_reason,
        trades=trades,
    )
    return read_outcome(session, deal, outcome), created


def get_outcome(session: Session, external_id: str) -> OutcomeRead:
    deal = deal_service.get_deal(session, external_id)
    outcome = OutcomeRepository(session).outcome(deal.id)
    if outcome is None:
        raise NotFound(f"deal {deal.external_id!r} has no outcome yet")
    return read_outcome(session, deal, outcome)


def read_outcome(session: Session, deal: Deal, outcome: Outcome) -> OutcomeRead:
    rows = OutcomeRepository(session).terms(outcome.id)
    return OutcomeRead(
        external_id=deal.external_id,
        won=outcome.won,
        close_date=outcome.close_date,
        closed_at=outcome.closed_at,
        source=outcome.source,
        recorded_by=outcome.recorded_by,
        loss_reason=outcome.loss_reason,
        playbook=(
            None
            if outcome.playbook_key is None or outcome.playbook_version is None
            else PlaybookVersionRef(key=outcome.playbook_key, version=outcome.playbook_version)
        ),
        amount=plain(outcome.amount),
        verdict=None if outcome.verdict is None else Verdict(outcome.verdict),
        variance_score=None
        if outcome.variance_micro is None
        else from_micro(outcome.variance_micro),
        cost=plain(outcome.cost),
        final_terms=dict(outcome.final_terms),
        trades=[OutcomeTrade.model_validate(t) for t in outcome.trades or []],
        terms=[
            OutcomeTermRead(
                key=row.term_key,
                kind=row.kind,
                unit=row.unit,
                opening=row.opening,
                target=row.target,
                walk_away=row.walk_away,
                final=row.final,
                status=Status(row.status),
                variance_ratio=from_micro(row.variance_ratio_micro),
                conceded=row.conceded,
                conceded_share=(
                    None
                    if row.conceded_share_micro is None
                    else from_micro(row.conceded_share_micro)
                ),
                held=row.held,
                traded=row.traded,
                gets=list(row.gets or []),
                cost=plain(row.cost),
            )
            for row in rows
        ],
        created_at=outcome.created_at,
        updated_at=outcome.updated_at,
    )
