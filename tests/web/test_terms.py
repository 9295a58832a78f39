"""Terms drawn against their bands: the bars follow the rules that fired and the direction."""

from __future__ import annotations

from typing import Any

import yaml
from tests.conftest import DEMO

from governance.deals.serialize import check_body
from governance.engine import PlaybookDocument, compile_playbook, evaluate
from governance.playbooks.registry import Published
from governance.web.terms import TermView, view

DOC = PlaybookDocument.model_validate(yaml.safe_load(DEMO.read_text(encoding="utf-8")))
PUBLISHED = Published(
    version_id=1,
    key=DOC.key,
    name=DOC.name,
    number=1,
    scope={},
    compiled=compile_playbook(DOC, 1),
    labels={t.key: t.label or t.key for t in DOC.terms},
    units={t.key: getattr(t, "unit", None) for t in DOC.terms},
)


def checked(terms: dict[str, Any], attributes: dict[str, Any] | None = None) -> dict[str, TermView]:
    compiled = PUBLISHED.compiled
    result = evaluate(compiled, compiled.parse_terms(terms), attributes or {})
    body = check_body(PUBLISHED, result)
    return {t["key"]: view(t, DOC.term(t["key"])) for t in body["terms"] if t["key"] in terms}


def zones(term: TermView) -> list[str]:
    return [s.zone for s in term.segments]


def test_a_number_bar_shows_band_tiers_and_walk_away() -> None:
    discount = checked({"discount_pct": 30})["discount_pct"]
    assert zones(discount) == ["band", "tier1", "tier2", "blocked"]
    assert [t.text for t in discount.ticks] == ["0", "15", "25", "35"]
    assert discount.marker is not None
    tier2 = discount.segments[2]
    assert tier2.x < discount.marker < tier2.x + tier2.width  # 30 sits in the second tier
    assert discount.variance_text == "15% past the band edge, tier 2"
    assert "walk-away 35%" in discount.summary


def test_the_tiers_move_with_the_rules_that_fired() -> None:
    # Annual prepayment widens discount by 3 at every step: band 18, tiers 28 and 38.
    discount = checked({"discount_pct": 30, "billing_frequency": "annual_upfront"})["discount_pct"]
    assert [t.text for t in discount.ticks] == ["0", "18", "28", "38"]
    assert discount.rules == ["prepay_widens_discount"]


def test_higher_is_better_reads_the_same_way_left_to_right() -> None:
    months = checked({"contract_months": 3})["contract_months"]
    # Band 12–36: better on the left, worse (shorter) to the right, as for every term.
    assert zones(months) == ["band", "tier1", "tier2", "blocked"]
    assert [t.text for t in months.ticks] == ["36", "12", "6", "1"]
    assert "higher is better" in months.summary
    tier2 = months.segments[2]
    assert months.marker is not None
    assert tier2.x < months.marker < tier2.x + tier2.width  # 3 months: between 6 and 1


def test_a_blocked_value_sits_beyond_the_walk_away() -> None:
    discount = checked({"discount_pct": 50})["discount_pct"]
    assert discount.status == "blocked"
    blocked = discount.segments[-1]
    assert discount.marker is not None
    assert blocked.x < discount.marker <= 100
    assert discount.variance_text.endswith("beyond the walk-away")


def test_choices_and_flags_are_rows_of_options() -> None:
    terms = checked({"billing_frequency": "monthly", "uncapped_liability": True})
    billing = terms["billing_frequency"]
    assert [(c.value, c.zone, c.selected) for c in billing.chips] == [
        ("annual_upfront", "band", False),
        ("semi_annual", "band", False),
        ("quarterly", "tier1", False),
        ("monthly", "tier2", True),
    ]
    liability = terms["uncapped_liability"]
    assert [(c.text, c.zone, c.selected) for c in liability.chips] == [
        ("no", "band", False),
        ("yes", "tier1", True),
    ]
    assert "the other value needs legal then general counsel" in liability.summary
