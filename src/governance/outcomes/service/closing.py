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
from governance.errors import InvalidInput, NotFound
from governance.outcomes.models import Outcome, OutcomeTerm
from governance.outcomes.repository import OutcomeRepository
from governance.outcomes.schemas import (
    OutcomeRead,
    OutcomeTermRead,
    OutcomeTrade,
    OutcomeTradeInput,
)
from governance.outcomes.service.common import (
    SOURCES,
    governing_version,
    locked_deal,
    outcome_context,
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


def _term_row(
    outcome: Outcome, deal: Deal, figures: TermOutcome, trades: list[dict[str, Any]]
) -> OutcomeTerm:
    gets = list(dict.fromkeys(g for t in trades if t["gave"] == figures.key for g in t["got"]))
    final = figures.final
    return OutcomeTerm(
        outcome_id=outcome.id,
        deal_id=deal.id,
        term_key=figures.key,
        kind=figures.kind,
        unit=figures.unit,
        opening=wire(figures.opening),
        target=wire(figures.target),
        final=wire(final),
        walk_away=wire(figures.walk_away),
        final_micro=to_micro(final) if isinstance(final, Decimal) else None,
        status=figures.status.value,
        variance_ratio_micro=to_micro(figures.variance_ratio),
        conceded=figures.conceded,
        conceded_share_micro=(
            None if figures.conceded_share is None else to_micro(figures.conceded_share)
        ),
        held=figures.held,
        traded=bool(gets),
        gets=gets,
        cost=figures.cost,
        cost_cents=None if figures.cost is None else to_cents(figures.cost),
        close_date=outcome.close_date,
        won=outcome.won,
        currency=outcome.currency,
        amount_cents=outcome.amount_cents,
        deal_variance_micro=outcome.variance_micro,
        **outcome_context(outcome),
    )


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
    typed = parse_terms(published, raw, "terms" if final_terms is None else "final_terms")
    attributes = deal_service.engine_attributes(deal_service.attributes_of(deal))
    result = evaluate(published.compiled, typed, attributes)
    figures = measure(published.compiled, typed, attributes, result)
    recorded_trades = outcome_trades(published, figures, trades)

    repo = OutcomeRepository(session)
    outcome = repo.outcome(deal.id)
    created = outcome is None
    before = None if outcome is None else _summary(outcome)
    now = utcnow()
    if outcome is None:
        outcome = Outcome(deal_id=deal.id)
        repo.add(outcome)
    shown = None if created else outcome.won
    outcome.won = won
    outcome.closed_at = closed_at or now
    outcome.close_date = close_date or (closed_at or now).date()
    outcome.final_terms = raw
    outcome.source = source
    outcome.recorded_by = actor.actor
    outcome.loss_reason = loss_reason
    outcome.trades = recorded_trades
    outcome.playbook_key = published.key
    outcome.playbook_version = published.number
    outcome.amount = deal.amount
    outcome.amount_cents = None if deal.amount is None else to_cents(deal.amount)
    outcome.verdict = figures.verdict.value
    outcome.variance_micro = to_micro(figures.variance_score)
    outcome.cost = figures.cost
    outcome.cost_cents = None if figures.cost is None else to_cents(figures.cost)
    outcome.conceded_terms = figures.conceded_terms
    outcome.missed_targets = figures.missed_targets
    outcome.region, outcome.segment = deal.region, deal.segment
    outcome.team, outcome.owner_rep = deal.team, deal.owner_rep
    outcome.currency = deal.currency
    outcome.checked_on = (deal.last_checked_at or now).date()
    session.flush()
    repo.replace_terms(
        outcome.id, [_term_row(outcome, deal, t, recorded_trades) for t in figures.terms]
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


def _summary(outcome: Outcome) -> dict[str, Any]:
    return {
        "won": outcome.won,
        "close_date": outcome.close_date.isoformat() if outcome.close_date else None,
        "final_terms": outcome.final_terms,
        "loss_reason": outcome.loss_reason,
        "source": outcome.source,
        "playbook": f"{outcome.playbook_key}/{outcome.playbook_version}",
        "cost": None if outcome.cost is None else str(outcome.cost),
        "trades": outcome.trades,
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
