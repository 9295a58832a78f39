"""Outcome rules: record how a deal closed with its per-term figures; preparations; reviews.

Every close, from the API or the Salesforce sync, goes through `record_outcome`, so both carry
the same figures. The final terms are measured against the playbook version the deal was
governed by: the version its review is pinned to, else the one its latest check used, else the
live version its scope resolves to.
"""

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
from governance.deals.repository import DealRepository
from governance.deals.schemas import salesforce_id_18
from governance.engine.compiler import DealInputError
from governance.engine.document import ChoiceTerm, Direction, NumberTerm
from governance.engine.evaluator import evaluate
from governance.engine.outcomes import OutcomeFigures, TermOutcome, measure
from governance.engine.results import Status, TermValue, Verdict
from governance.errors import Conflict, InvalidDeal, InvalidInput, NotFound, PreconditionFailed
from governance.outcomes.models import AfterActionReview, Outcome, OutcomeTerm, Preparation
from governance.outcomes.repository import OutcomeRepository
from governance.outcomes.schemas import (
    AfterActionReviewRead,
    AfterActionReviewWrite,
    OutcomeRead,
    OutcomeTermRead,
    OutcomeTrade,
    OutcomeTradeInput,
    PremortemItem,
    PreparationRead,
    PreparationWrite,
    PreparedTermRead,
)
from governance.playbooks.registry import PlaybookRegistry, Published, resolve
from governance.problems import Problem
from governance.salesforce import outbox as salesforce_outbox
from governance.scaled import from_micro, to_cents, to_micro

SOURCES = ("api", "salesforce")


def _wire(value: TermValue | None) -> str | bool | None:
    """A term value as JSON keeps it: numbers as plain decimal text."""
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def _plain(value: Decimal | None) -> Decimal | None:
    """Money without the storage scale's trailing zeros, alike from PostgreSQL and SQLite."""
    if value is None:
        return None
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _stored_terms(terms: Mapping[str, object]) -> dict[str, Any]:
    """Terms as deals keep them: floats become exact decimal text, nulls (not stated) drop."""
    return {
        key: str(Decimal(str(value))) if isinstance(value, float) else value
        for key, value in terms.items()
        if value is not None
    }


def governing_version(session: Session, registry: PlaybookRegistry, deal: Deal) -> Published:
    """The version the deal's terms are measured against (see the module docstring)."""
    if deal.review_version_id is not None:
        return registry.version(deal.review_version_id)
    checked = OutcomeRepository(session).latest_check_version(deal.id)
    if checked is not None:
        return registry.version(checked)
    attributes = deal_service.engine_attributes(deal_service.attributes_of(deal))
    return resolve(registry.published_sync(), attributes, deal.playbook_key)


def _locked_deal(session: Session, external_id: str) -> Deal:
    external_id = salesforce_id_18(external_id)
    deal = DealRepository(session).by_external_id(external_id, for_update=True)
    if deal is None or deal.deleted_at is not None:
        raise NotFound(f"deal {external_id!r} does not exist")
    return deal


def _parse(published: Published, raw: Mapping[str, object], field: str) -> dict[str, TermValue]:
    try:
        return published.compiled.parse_terms(raw)
    except DealInputError as exc:
        raise InvalidDeal(
            errors=[Problem((field, *p.loc[1:]), p.message) for p in exc.problems]
        ) from None


# --- outcomes ------------------------------------------------------------------------------------


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
        opening=_wire(figures.opening),
        target=_wire(figures.target),
        final=_wire(final),
        walk_away=_wire(figures.walk_away),
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
        **_context(outcome),
    )


def _context(outcome: Outcome) -> dict[str, Any]:
    """The outcome's deal context, copied onto its term rows and its review for analytics."""
    return {
        "region": outcome.region,
        "segment": outcome.segment,
        "team": outcome.team,
        "owner_rep": outcome.owner_rep,
        "playbook_key": outcome.playbook_key,
        "playbook_version": outcome.playbook_version,
    }


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
    raw = dict(deal.terms) if final_terms is None else _stored_terms(final_terms)
    typed = _parse(published, raw, "terms" if final_terms is None else "final_terms")
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
        _place_review(review, outcome)
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
    deal = _locked_deal(session, external_id)
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
        amount=_plain(outcome.amount),
        verdict=None if outcome.verdict is None else Verdict(outcome.verdict),
        variance_score=None
        if outcome.variance_micro is None
        else from_micro(outcome.variance_micro),
        cost=_plain(outcome.cost),
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
                cost=_plain(row.cost),
            )
            for row in rows
        ],
        created_at=outcome.created_at,
        updated_at=outcome.updated_at,
    )


# --- preparation ---------------------------------------------------------------------------------


def _prepared_terms(published: Published, terms: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    compiled = published.compiled
    document = compiled.document
    problems: list[Problem] = []
    out: dict[str, dict[str, Any]] = {}
    for key, prepared in terms.items():
        term = document.term(key)
        if term is None:
            known = ", ".join(t.key for t in document.terms)
            problems.append(
                Problem(
                    ("terms", key), f"unknown term {key!r}: playbook {compiled.key} knows {known}"
                )
            )
            continue
        parse = compiled.by_key[key].parse
        values: dict[str, TermValue] = {}
        for name in ("goal", "opening", "bottom_line"):
            raw = getattr(prepared, name)
            if raw is None:
                problems.append(Problem(("terms", key, name), "required"))
                continue
            try:
                values[name] = parse(str(Decimal(str(raw))) if isinstance(raw, float) else raw)
            except ValueError as exc:
                problems.append(Problem(("terms", key, name), str(exc)))
        if len(values) == 3:
            problems.extend(_order_problems(term, key, values))
        out[key] = {name: _wire(value) for name, value in values.items()}
    if problems:
        raise InvalidInput(errors=problems)
    return out


def _order_problems(term: Any, key: str, values: Mapping[str, TermValue]) -> list[Problem]:
    """Opening at or better than goal, goal at or better than bottom line (numbers, choices)."""
    if isinstance(term, NumberTerm):
        sign = 1 if term.direction is Direction.lower_is_better else -1

        def badness(value: TermValue) -> Decimal:
            assert isinstance(value, Decimal)
            return sign * value

        side = "above" if sign == 1 else "below"
    elif isinstance(term, ChoiceTerm):

        def badness(value: TermValue) -> Decimal:
            return Decimal(term.options.index(str(value)))

        side = "ranked after"
    else:
        return []
    problems = []
    if badness(values["opening"]) > badness(values["goal"]):
        problems.append(
            Problem(
                ("terms", key, "opening"),
                f"the opening must be at least as good for us as the goal; "
                f"{_wire(values['opening'])} is {side} {_wire(values['goal'])}",
            )
        )
    if badness(values["goal"]) > badness(values["bottom_line"]):
        problems.append(
            Problem(
                ("terms", key, "goal"),
                f"the goal must be at least as good for us as the bottom line; "
                f"{_wire(values['goal'])} is {side} {_wire(values['bottom_line'])}",
            )
        )
    return problems


def put_preparation(
    session: Session,
    registry: PlaybookRegistry,
    actor: Principal,
    external_id: str,
    data: PreparationWrite,
    expected_version: int | None = None,
) -> tuple[PreparationRead, bool]:
    """Create or replace the deal's preparation; returns it and whether it was created."""
    deal = _locked_deal(session, external_id)
    # Prepared against the playbook the deal is governed by, like its checks.
    terms = (
        _prepared_terms(governing_version(session, registry, deal), data.terms)
        if data.terms
        else {}
    )
    repo = OutcomeRepository(session)
    row = repo.preparation(deal.id)
    if expected_version is not None and (row is None or row.lock_version != expected_version):
        raise PreconditionFailed(
            "the preparation changed since you read it; read it again"
            if row is not None
            else "the deal has no preparation yet; send no If-Match to create it"
        )
    created = row is None
    before = (
        None
        if row is None
        else _preparation_read(deal, row).model_dump(
            mode="json", exclude={"created_at", "updated_at"}
        )
    )
    if row is None:
        row = Preparation(deal_id=deal.id, lock_version=1)
        repo.add(row)
    else:
        row.lock_version += 1
    row.goal = data.goal
    row.terms = terms
    row.customer_interests = list(data.customer_interests)
    row.premortem = [item.model_dump() for item in data.premortem]
    row.prepared_by = actor.actor
    session.flush()
    read = _preparation_read(deal, row)
    audit.record(
        session,
        actor,
        "deal.prepared",
        "deal",
        deal.external_id,
        before=before,
        after=read.model_dump(mode="json", exclude={"created_at", "updated_at"}),
    )
    return read, created


def get_preparation(session: Session, external_id: str) -> PreparationRead:
    deal = deal_service.get_deal(session, external_id)
    row = OutcomeRepository(session).preparation(deal.id)
    if row is None:
        raise NotFound(f"deal {deal.external_id!r} has no preparation yet")
    return _preparation_read(deal, row)


def _preparation_read(deal: Deal, row: Preparation) -> PreparationRead:
    return PreparationRead(
        external_id=deal.external_id,
        goal=row.goal,
        terms={k: PreparedTermRead.model_validate(v) for k, v in row.terms.items()},
        customer_interests=list(row.customer_interests),
        premortem=[PremortemItem.model_validate(p) for p in row.premortem],
        prepared_by=row.prepared_by,
        version=row.lock_version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# --- after-action review -------------------------------------------------------------------------


def put_review(
    session: Session, actor: Principal, external_id: str, data: AfterActionReviewWrite
) -> tuple[AfterActionReviewRead, bool]:
    """File (or replace) the after-action review; only a closed deal has one."""
    deal = _locked_deal(session, external_id)
    repo = OutcomeRepository(session)
    if repo.outcome(deal.id) is None:
        raise Conflict(
            f"deal {deal.external_id!r} has no outcome yet: record how it closed "
            "(POST /v1/deals/{external_id}/outcome) before reviewing it"
        )
    outcome = repo.outcome(deal.id)
    row = repo.review(deal.id)
    created = row is None
    before = (
        None
        if row is None
        else _review_read(deal, row).model_dump(
            mode="json", by_alias=True, exclude={"created_at", "updated_at"}
        )
    )
    if row is None:
        row = AfterActionReview(deal_id=deal.id)
        repo.add(row)
    row.instrumental = data.instrumental
    row.process = data.process
    row.relationship = data.relationship
    row.self_score = data.self_score
    row.note = data.note
    row.filed_by = actor.actor
    if outcome is not None:
        _place_review(row, outcome)
    session.flush()
    read = _review_read(deal, row)
    audit.record(
        session,
        actor,
        "deal.reviewed",
        "deal",
        deal.external_id,
        before=before,
        after=read.model_dump(mode="json", by_alias=True, exclude={"created_at", "updated_at"}),
    )
    return read, created


def _place_review(review: AfterActionReview, outcome: Outcome) -> None:
    """Reviews are reported by the deal's close date and context."""
    review.close_date = outcome.close_date
    for name, value in _context(outcome).items():
        setattr(review, name, value)


def get_review(session: Session, external_id: str) -> AfterActionReviewRead:
    deal = deal_service.get_deal(session, external_id)
    row = OutcomeRepository(session).review(deal.id)
    if row is None:
        raise NotFound(f"deal {deal.external_id!r} has no after-action review yet")
    return _review_read(deal, row)


def _review_read(deal: Deal, row: AfterActionReview) -> AfterActionReviewRead:
    return AfterActionReviewRead(
        external_id=deal.external_id,
        instrumental=row.instrumental,
        process=row.process,
        relationship=row.relationship,
        self_score=row.self_score,
        note=row.note,
        filed_by=row.filed_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
