"""What outcomes, preparations and reviews share: the playbook version a deal is judged by,
the deal under its lock, and term values as stored."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from governance.deals import service as deal_service
from governance.deals.models import Deal
from governance.deals.repository import DealRepository
from governance.deals.schemas import salesforce_id_18
from governance.engine.compiler import DealInputError
from governance.engine.results import TermValue
from governance.errors import InvalidDeal, NotFound
from governance.outcomes.models import Outcome
from governance.outcomes.repository import OutcomeRepository
from governance.playbooks.registry import PlaybookRegistry, Published, resolve
from governance.problems import Problem

SOURCES = ("api", "salesforce")


def wire(value: TermValue | None) -> str | bool | None:
    """A term value as JSON keeps it: numbers as plain decimal text."""
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def plain(value: Decimal | None) -> Decimal | None:
    """Money without the storage scale's trailing zeros, alike from PostgreSQL and SQLite."""
    if value is None:
        return None
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def stored_terms(terms: Mapping[str, object]) -> dict[str, Any]:
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
    return governed_by(registry, deal, OutcomeRepository(session).latest_check_version(deal.id))


def governed_by(registry: PlaybookRegistry, deal: Deal, checked: int | None) -> Published:
    """`governing_version`, given the version id of the deal's latest check (`checked`)."""
    if deal.review_version_id is not None:
        return registry.version(deal.review_version_id)
    if checked is not None:
        return registry.version(checked)
    attributes = deal_service.engine_attributes(deal_service.attributes_of(deal))
    return resolve(registry.published_sync(), attributes, deal.playbook_key)


def locked_deal(session: Session, external_id: str) -> Deal:
    external_id = salesforce_id_18(external_id)
    deal = DealRepository(session).by_external_id(external_id, for_update=True)
    if deal is None or deal.deleted_at is not None:
        raise NotFound(f"deal {external_id!r} does not exist")
    return deal


def parse_terms(
    published: Published, raw: Mapping[str, object], field: str
) -> dict[str, TermValue]:
    try:
        return published.compiled.parse_terms(raw)
    except DealInputError as exc:
        raise InvalidDeal(
            errors=[Problem((field, *p.loc[1:]), p.message) for p in exc.problems]
        ) from None


# The outcome's deal context, copied onto its term rows and its review for analytics.
CONTEXT = ("region", "segment", "team", "owner_rep", "playbook_key", "playbook_version")


def outcome_context(outcome: Outcome) -> dict[str, Any]:
    """The outcome's deal context (`CONTEXT`), copied onto its term rows and its review."""
    return {name: getattr(outcome, name) for name in CONTEXT}
