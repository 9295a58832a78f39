"""Deal rules: stateless checks, upserts by Salesforce Id, and stored checks with history."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.db import utcnow
from governance.deals.models import REVIEWING, Deal, DealCheck, DealStatus
from governance.deals.repository import DealRepository
from governance.deals.schemas import (
    CheckRequest,
    CheckResponse,
    DealAttributes,
    DealCheckRead,
    DealRead,
    DealUpdate,
    DealUpsert,
    LastCheck,
    salesforce_id_18,
)
from governance.deals.serialize import check_body
from governance.engine import DealInputError, evaluate
from governance.engine.results import CheckResult, Status, TermValue, Verdict
from governance.errors import InvalidDeal, NotFound
from governance.playbooks.registry import PlaybookRegistry, Published, resolve
from governance.salesforce import outbox as salesforce_outbox
from governance.scaled import to_micro

KNOWN_ATTRIBUTES = (
    "region", "segment", "product_line", "team", "currency", "amount", "stage", "close_date",
    "owner_rep", "value_position",
)  # fmt: skip


def engine_attributes(attributes: DealAttributes) -> dict[str, object]:
    """Attributes as rules and scopes see them: text, Decimal amounts, ISO dates."""
    out: dict[str, object] = {}
    for name in KNOWN_ATTRIBUTES:
        value = getattr(attributes, name)
        if value is None:
            continue
        out[name] = (
            value
            if isinstance(value, Decimal)
            else (value.isoformat() if hasattr(value, "isoformat") else str(value))
        )
    for name, value in (attributes.__pydantic_extra__ or {}).items():
        out[name] = value
    return out


def parse_terms(published: Published, raw: Mapping[str, object]) -> dict[str, TermValue]:
    """Typed term values, or 422 naming each offending term."""
    try:
        return published.compiled.parse_terms(raw)
    except DealInputError as exc:
        raise InvalidDeal(errors=exc.problems) from None


def check(index: tuple[Published, ...], request: CheckRequest) -> dict[str, Any]:
    """Evaluate proposed terms without storing anything; returns the `CheckResponse` body."""
    attributes = engine_attributes(request.attributes)
    published = resolve(index, attributes, request.playbook)
    terms = parse_terms(published, request.terms)
    return check_body(published, evaluate(published.compiled, terms, attributes))


# --- stored deals --------------------------------------------------------------------------------


def _stored_terms(terms: Mapping[str, object]) -> dict[str, Any]:
    """Terms as kept: floats become exact decimal strings, nulls (not stated) are dropped."""
    out: dict[str, Any] = {}
    for key, value in terms.items():
        if value is None:
            continue
        out[key] = str(Decimal(str(value))) if isinstance(value, float) else value
    return out


def attribute_columns(attributes: DealAttributes) -> dict[str, Any]:
    """The deal's columns for its attributes: the known ones by name (the value position as its
    text), the others in `extra_attributes` with floats as exact decimal text."""
    columns: dict[str, Any] = {name: getattr(attributes, name) for name in KNOWN_ATTRIBUTES}
    if columns["value_position"] is not None:
        columns["value_position"] = columns["value_position"].value
    columns["extra_attributes"] = {
        k: (str(Decimal(str(v))) if isinstance(v, float) else v)
        for k, v in (attributes.__pydantic_extra__ or {}).items()
    }
    return columns


def term_figures(result: CheckResult) -> list[tuple[str, str, int]]:
    """Each stated term's latest figures as deals keep them (see `replace_term_checks`):
    (term, status, variance ratio in millionths)."""
    return [
        (t.key, t.status.value, to_micro(t.variance_ratio))
        for t in result.terms
        if t.status is not Status.missing
    ]


def attributes_of(deal: Deal) -> DealAttributes:
    return _attributes({name: getattr(deal, name) for name in _ATTRIBUTE_COLUMNS})


_ATTRIBUTE_COLUMNS = (*KNOWN_ATTRIBUTES, "extra_attributes")
_READ_COLUMNS = (
    *_ATTRIBUTE_COLUMNS, "external_id", "name", "terms", "playbook_key", "status",
    "last_verdict", "last_variance_score", "last_checked_at", "created_at", "updated_at",
)  # fmt: skip


def _attributes(columns: Mapping[str, Any]) -> DealAttributes:
    values: dict[str, Any] = {name: columns[name] for name in KNOWN_ATTRIBUTES}
    values.update(columns["extra_attributes"] or {})
    return DealAttributes.model_validate({k: v for k, v in values.items() if v is not None})


def read_deal(deal: Deal) -> DealRead:
    return _read({name: getattr(deal, name) for name in _READ_COLUMNS})


def _read(columns: Mapping[str, Any]) -> DealRead:
    """A deal as the API shows it, from its columns."""
    last = None
    if columns["last_verdict"] is not None and columns["last_checked_at"] is not None:
        last = LastCheck(
            verdict=Verdict(columns["last_verdict"]),
            variance_score=columns["last_variance_score"] or Decimal(0),
            checked_at=columns["last_checked_at"],
        )
    return DealRead(
        external_id=columns["external_id"],
        name=columns["name"],
        attributes=_attributes(columns),
        terms=dict(columns["terms"]),
        playbook=columns["playbook_key"],
        status=columns["status"],
        last_check=last,
        created_at=columns["created_at"],
        updated_at=columns["updated_at"],
    )


def _snapshot(deal: Deal) -> dict[str, Any]:
    return read_deal(deal).model_dump(mode="json", exclude={"created_at", "updated_at"})


def snapshot(deal: Deal) -> dict[str, Any]:
    """The deal as its audit entries show it."""
    return _snapshot(deal)


def replacement_columns(data: DealUpsert) -> dict[str, Any]:
    """The columns `upsert_deal` writes for `data` (name, attributes, terms, playbook)."""
    return {
        "name": data.name,
        **attribute_columns(data.attributes),
        "terms": _stored_terms(data.terms),
        "playbook_key": data.playbook,
    }


def replaced_snapshot(
    current: Deal | None, external_id: str, columns: Mapping[str, Any]
) -> dict[str, Any]:
    """The audit snapshot of `current` (None: a new deal) once replaced by `columns`, as
    `upsert_deal` records it: before the check it is about to store."""
    now = utcnow()
    values = {name: columns[name] for name in _ATTRIBUTE_COLUMNS}
    values.update(
        external_id=external_id,
        name=columns["name"],
        terms=columns["terms"],
        playbook_key=columns["playbook_key"],
        status=DealStatus.draft if current is None else current.status,
        last_verdict=None if current is None else current.last_verdict,
        last_variance_score=None if current is None else current.last_variance_score,
        last_checked_at=None if current is None else current.last_checked_at,
        created_at=now,
        updated_at=now,
    )
    return _read(values).model_dump(mode="json", exclude={"created_at", "updated_at"})


def _governed(snapshot: dict[str, Any] | None) -> Any:
    """What a check depends on: a change here makes an approval under way re-check."""
    if snapshot is None:
        return None
    return (snapshot["terms"], snapshot["attributes"], snapshot["playbook"])


def needs_recheck(deal: Deal, before: dict[str, Any] | None) -> bool:
    """True when a deal under review or approved had its terms or attributes changed."""
    return deal.status in REVIEWING and _governed(before) != _governed(_snapshot(deal))


def get_deal(session: Session, external_id: str) -> Deal:
    external_id = salesforce_id_18(external_id)
    deal = DealRepository(session).by_external_id(external_id)
    if deal is None or deal.deleted_at is not None:
        raise NotFound(f"deal {external_id!r} does not exist")
    return deal


def differs(deal: Deal, data: DealUpsert) -> bool:
    """Whether replacing the deal with `data` would change anything it holds."""
    if deal.name != data.name or deal.playbook_key != data.playbook:
        return True
    if deal.terms != _stored_terms(data.terms):
        return True
    columns = attribute_columns(data.attributes)
    return any(getattr(deal, name) != value for name, value in columns.items())


def upsert_deal(
    session: Session, actor: Principal, external_id: str, data: DealUpsert
) -> tuple[Deal, bool, bool]:
    """Create or fully replace the deal for this Opportunity Id.

    Returns the deal, whether it was created, and whether its review must re-check.
    """
    external_id = salesforce_id_18(external_id)
    repo = DealRepository(session)
    # Insert-or-lock: concurrent first PUTs of one deal all succeed, one of them creating it.
    created = repo.insert_if_absent(external_id)
    deal = repo.by_external_id(external_id, for_update=True)
    assert deal is not None  # inserted above, or already there; deals are never removed
    before = None if created else _snapshot(deal)
    if not created:
        deal.lock_version += 1
        deal.deleted_at = None
    deal.name = data.name
    for column, value in attribute_columns(data.attributes).items():
        setattr(deal, column, value)
    deal.terms = _stored_terms(data.terms)
    deal.playbook_key = data.playbook
    if not created:
        repo.follow_context(deal)
    session.flush()
    audit.record(
        session,
        actor,
        "deal.created" if created else "deal.updated",
        "deal",
        external_id,
        before=before,
        after=_snapshot(deal),
    )
    return deal, created, needs_recheck(deal, before)


def update_deal(
    session: Session, actor: Principal, external_id: str, data: DealUpdate
) -> tuple[Deal, bool]:
    """Apply a partial update (`model_dump(exclude_unset=True)` semantics).

    Returns the deal and whether its review must re-check.
    """
    external_id = salesforce_id_18(external_id)
    deal = DealRepository(session).by_external_id(external_id, for_update=True)
    if deal is None or deal.deleted_at is not None:
        raise NotFound(f"deal {external_id!r} does not exist")
    before = _snapshot(deal)
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes:
        deal.name = data.name
    if "playbook" in changes:
        deal.playbook_key = data.playbook
    if data.attributes is not None:
        given = data.attributes.model_fields_set | set(data.attributes.__pydantic_extra__ or {})
        columns = attribute_columns(data.attributes)
        for name in KNOWN_ATTRIBUTES:
            if name in given:
                setattr(deal, name, columns[name])
        extra = dict(deal.extra_attributes or {})
        extra.update(columns["extra_attributes"])
        deal.extra_attributes = extra
    if data.terms is not None:
        merged = dict(deal.terms)
        for key, value in data.terms.items():
            if value is None:
                merged.pop(key, None)
        merged.update(_stored_terms(data.terms))
        deal.terms = merged
    deal.lock_version += 1
    DealRepository(session).follow_context(deal)
    session.flush()
    audit.record(
        session, actor, "deal.updated", "deal", external_id, before=before, after=_snapshot(deal)
    )
    return deal, needs_recheck(deal, before)


def evaluation(
    registry: PlaybookRegistry,
    index: tuple[Published, ...] | None,
    attributes: DealAttributes,
    terms: Mapping[str, object],
    playbook_key: str | None,
    review_version_id: int | None,
) -> tuple[Published, CheckResult, dict[str, Any]]:
    """Evaluate a deal's stored terms: against the version its review is pinned to, else the
    published one that fits (`index`: the published versions, when the caller holds them)."""
    engine_attrs = engine_attributes(attributes)
    if review_version_id is not None:
        published = registry.version(review_version_id)
    else:
        index = registry.published_sync() if index is None else index
        published = resolve(index, engine_attrs, playbook_key)
    parsed = parse_terms(published, terms)
    result = evaluate(published.compiled, parsed, engine_attrs)
    return published, result, check_body(published, result)


def check_columns(
    actor: Principal,
    attributes: DealAttributes,
    terms: Mapping[str, Any],
    published: Published,
    result: CheckResult,
    body: dict[str, Any],
) -> dict[str, Any]:
    """A stored check's columns (all but the deal's id)."""
    now = utcnow()
    return {
        "playbook_version_id": published.version_id,
        "playbook_key": published.key,
        "playbook_version": published.number,
        "verdict": result.verdict.value,
        "variance_score": result.variance_score,
        "terms": dict(terms),
        "attributes": attributes.model_dump(mode="json", exclude_none=True),
        "result": body,
        "checked_by": actor.actor,
        "created_at": now,
        "updated_at": now,
    }


def checked_columns(published: Published, result: CheckResult, now: datetime) -> dict[str, Any]:
    """The deal's copy of its latest check (what lists, analytics and the push read)."""
    return {
        "last_verdict": result.verdict.value,
        "last_variance_score": result.variance_score,
        "last_checked_at": now,
        "checked_playbook": published.key,
        "checked_version": published.number,
        "variance_micro": to_micro(result.variance_score),
    }


def check_deal(
    session: Session, registry: PlaybookRegistry, actor: Principal, deal: Deal
) -> tuple[DealCheck, CheckResult, Published]:
    """Store a check of the deal; a deal under review is checked against its pinned version."""
    external_id = deal.external_id
    attributes = attributes_of(deal)
    published, result, body = evaluation(
        registry, None, attributes, deal.terms, deal.playbook_key, deal.review_version_id
    )
    now = utcnow()
    stored = DealRepository(session).add_check(
        DealCheck(
            deal_id=deal.id, **check_columns(actor, attributes, deal.terms, published, result, body)
        )
    )
    shown = (deal.last_verdict, deal.last_variance_score)
    for column, value in checked_columns(published, result, now).items():
        setattr(deal, column, value)
    DealRepository(session).replace_term_checks(
        deal,
        {
            "playbook_key": published.key,
            "playbook_version": published.number,
            "checked_at": now,
        },
        term_figures(result),
    )
    session.flush()
    if shown != (deal.last_verdict, deal.last_variance_score):
        salesforce_outbox.enqueue(session, deal.id)  # Salesforce shows verdict and variance
    audit.record(
        session,
        actor,
        "deal.checked",
        "deal",
        external_id,
        after={
            "check_id": stored.id,
            "verdict": body["verdict"],
            "variance_score": body["variance_score"],
            "playbook": f"{published.key}/{published.number}",
        },
    )
    return stored, result, published


def mark_deleted(session: Session, deal: Deal, at: datetime) -> None:
    """The deal's opportunity is gone: hide the deal and drop it from the variance figures."""
    deal.deleted_at = at
    DealRepository(session).clear_term_checks(deal.id)


def read_check(check: DealCheck, external_id: str) -> DealCheckRead:
    return DealCheckRead(
        id=check.id,
        external_id=external_id,
        checked_at=check.created_at,
        checked_by=check.checked_by,
        result=CheckResponse.model_validate(check.result),
    )
