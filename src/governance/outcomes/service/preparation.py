"""The rep's preparation: goal, opening and bottom line per term, interests, a pre-mortem."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.deals import service as deal_service
from governance.deals.models import Deal
from governance.engine.document import ChoiceTerm, Direction, NumberTerm
from governance.engine.results import TermValue
from governance.errors import InvalidInput, NotFound, PreconditionFailed
from governance.outcomes.models import Preparation
from governance.outcomes.repository import OutcomeRepository
from governance.outcomes.schemas import (
    PremortemItem,
    PreparationRead,
    PreparationWrite,
    PreparedTermRead,
)
from governance.outcomes.service.common import governing_version, locked_deal, wire
from governance.playbooks.registry import PlaybookRegistry, Published
from governance.problems import Problem


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
        out[key] = {name: wire(value) for name, value in values.items()}
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
                f"{wire(values['opening'])} is {side} {wire(values['goal'])}",
            )
        )
    if badness(values["goal"]) > badness(values["bottom_line"]):
        problems.append(
            Problem(
                ("terms", key, "goal"),
                f"the goal must be at least as good for us as the bottom line; "
                f"{wire(values['goal'])} is {side} {wire(values['bottom_line'])}",
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
    deal = locked_deal(session, external_id)
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
