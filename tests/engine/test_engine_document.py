"""Playbook validation: each cross-field problem is reported at the exact field that causes it."""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

import pydantic
import pytest
import yaml
from tests.driver import contract_term, discount_term, liability_term

from governance.engine import PlaybookDocument, semantic_problems
from governance.problems import format_loc

DISCOUNT = discount_term(target=8, opening=0)
CONTRACT = contract_term()
SUPPORT: dict[str, Any] = {
    "key": "support_level",
    "kind": "choice",
    "options": ["standard", "premium", "platinum", "bespoke"],
    "owner": "product",
    "priority": 3,
    "band": {"allowed": ["standard", "premium"]},
    "tiers": [
        {"options": ["platinum"], "approver": "product"},
        {"options": ["bespoke"], "approver": "cto"},
    ],
}
LIABILITY = liability_term(priority=4, tiers=[{"approver": "legal"}])
RULE: dict[str, Any] = {
    "key": "multi_year",
    "when": [{"term": "contract_months", "op": ">=", "value": 36}],
    "then": [{"term": "discount_pct", "shift": 5}],
}


def locs(*, terms: Any = None, rules: Any = None) -> list[tuple[str | int, ...]]:
    """Problem locations of a playbook; by default the four base terms and one rule."""
    if rules is None:
        rules = [RULE] if terms is None else []
    doc = PlaybookDocument.model_validate(
        {
            "key": "test",
            "name": "Test",
            "terms": terms if terms is not None else [DISCOUNT, CONTRACT, SUPPORT, LIABILITY],
            "rules": rules,
        }
    )
    return [p.loc for p in semantic_problems(doc)]


def edited(term: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(term)
    out.update(changes)
    return out


def test_the_base_playbook_and_the_demo_are_valid() -> None:
    assert locs() == []
    text = resources.files("governance").joinpath("demo/standard.yaml").read_text("utf-8")
    assert semantic_problems(PlaybookDocument.model_validate(yaml.safe_load(text))) == []


def test_band_low_above_high() -> None:
    bad = edited(DISCOUNT, band={"low": 20, "high": 15})
    assert locs(terms=[bad]) == [("terms", 0, "band", "low")]


@pytest.mark.parametrize(
    ("term", "walk_away"),
    [(DISCOUNT, 10), (CONTRACT, 20)],  # inside the band, for both directions
)
def test_walk_away_inside_the_band(term: dict[str, Any], walk_away: int) -> None:
    assert locs(terms=[edited(term, walk_away=walk_away)]) == [("terms", 0, "walk_away")]


@pytest.mark.parametrize(
    ("term", "limits", "bad_tier"),
    [
        (DISCOUNT, [25, 20, 35], 1),  # goes back
        (DISCOUNT, [25, 25, 35], 1),  # stands still
        (DISCOUNT, [15, 35], 0),  # the first tier must lie beyond the band edge
        (CONTRACT, [6, 8, 1], 1),  # higher is better: limits must fall
        (CONTRACT, [12, 1], 0),
    ],
)
def test_tiers_run_monotonically(term: dict[str, Any], limits: list[int], bad_tier: int) -> None:
    tiers = [{"limit": limit, "approver": "ops"} for limit in limits]
    assert locs(terms=[edited(term, tiers=tiers)]) == [("terms", 0, "tiers", bad_tier, "limit")]


def test_the_last_tier_ends_at_walk_away() -> None:
    bad = edited(DISCOUNT, walk_away=40)
    assert locs(terms=[bad]) == [("terms", 0, "tiers", 1, "limit")]


def test_walk_away_beyond_the_band_needs_tiers() -> None:
    bad = edited(DISCOUNT, tiers=[])
    assert locs(terms=[bad]) == [("terms", 0, "tiers")]
    assert locs(terms=[edited(DISCOUNT, tiers=[], walk_away=15, target=8)]) == []


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"opening": 10, "target": 8}, ("terms", 0, "opening")),
        ({"target": 40}, ("terms", 0, "target")),
    ],
)
def test_bargaining_range_order(changes: dict[str, Any], loc: tuple[str | int, ...]) -> None:
    assert locs(terms=[edited(DISCOUNT, **changes)]) == [loc]


def test_term_keys_and_priorities_are_unique() -> None:
    assert locs(terms=[DISCOUNT, CONTRACT, edited(SUPPORT, priority=1)], rules=[]) == [
        ("terms", 2, "priority")
    ]
    assert locs(terms=[DISCOUNT, edited(CONTRACT, key="discount_pct")], rules=[]) == [
        ("terms", 1, "key")
    ]


def test_rule_keys_are_unique() -> None:
    assert locs(rules=[RULE, RULE]) == [("rules", 1, "key")]


def test_rules_may_only_name_known_terms() -> None:
    when_unknown = edited(RULE, when=[{"term": "seats", "op": ">=", "value": 36}])
    then_unknown = edited(RULE, key="other", then=[{"term": "seats", "shift": 5}])
    assert locs(rules=[when_unknown, then_unknown]) == [
        ("rules", 0, "when", 0, "term"),
        ("rules", 1, "then", 0, "term"),
    ]


@pytest.mark.parametrize("target", ["support_level", "uncapped_liability"])
def test_only_number_terms_shift(target: str) -> None:
    shifting = edited(
        RULE, then=[{"term": "discount_pct", "shift": 1}, {"term": target, "shift": 1}]
    )
    assert locs(rules=[shifting]) == [("rules", 0, "then", 1, "shift")]


def test_an_action_either_shifts_or_replaces_an_approver() -> None:
    both = edited(RULE, then=[{"term": "discount_pct", "shift": 1, "approver": "cfo"}])
    neither = edited(RULE, then=[{"term": "discount_pct"}])
    assert locs(rules=[both]) == [("rules", 0, "then", 0)]
    assert locs(rules=[neither]) == [("rules", 0, "then", 0)]


def test_an_approver_replacement_names_an_existing_tier() -> None:
    third = edited(RULE, then=[{"term": "discount_pct", "tier": 3, "approver": "cfo"}])
    assert locs(rules=[third]) == [("rules", 0, "then", 0, "tier")]
    second = edited(RULE, then=[{"term": "discount_pct", "tier": 2, "approver": "cfo"}])
    assert locs(rules=[second]) == []


@pytest.mark.parametrize(
    ("condition", "loc"),
    [
        (
            {"term": "contract_months", "op": ">=", "value": "long"},
            ("rules", 0, "when", 0, "value"),
        ),
        ({"term": "support_level", "op": "==", "value": "gold"}, ("rules", 0, "when", 0, "value")),
        ({"term": "support_level", "op": ">=", "value": "premium"}, ("rules", 0, "when", 0, "op")),
        (
            {"term": "uncapped_liability", "op": "==", "value": "no"},
            ("rules", 0, "when", 0, "value"),
        ),
        ({"term": "contract_months", "op": "in", "value": 36}, ("rules", 0, "when", 0, "value")),
        ({"term": "contract_months", "op": ">=", "value": [36]}, ("rules", 0, "when", 0, "value")),
        ({"op": "==", "value": 1}, ("rules", 0, "when", 0)),
        (
            {"term": "contract_months", "attribute": "segment", "op": "==", "value": 1},
            ("rules", 0, "when", 0),
        ),
    ],
)
def test_conditions_fit_their_term(condition: dict[str, Any], loc: tuple[str | int, ...]) -> None:
    assert locs(rules=[edited(RULE, when=[condition])]) == [loc]


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        # A tier option that is not one of the term's options.
        (
            {"tiers": [{"options": ["gold"], "approver": "product"}]},
            ("terms", 0, "tiers", 0, "options", 0),
        ),
        # A tier option already allowed by the band.
        (
            {"tiers": [{"options": ["platinum", "premium"], "approver": "product"}]},
            ("terms", 0, "tiers", 0, "options", 1),
        ),
        # A tier option already covered by an earlier tier.
        (
            {
                "tiers": [
                    {"options": ["platinum"], "approver": "product"},
                    {"options": ["bespoke", "platinum"], "approver": "cto"},
                ]
            },
            ("terms", 0, "tiers", 1, "options", 1),
        ),
        # Tiers out of rank order.
        (
            {
                "tiers": [
                    {"options": ["bespoke"], "approver": "product"},
                    {"options": ["platinum"], "approver": "cto"},
                ]
            },
            ("terms", 0, "tiers", 1, "options"),
        ),
        ({"band": {"allowed": ["standard", "gold"]}}, ("terms", 0, "band", "allowed", 1)),
        (
            {"options": ["standard", "premium", "platinum", "bespoke", "premium"]},
            ("terms", 0, "options", 4),
        ),
        ({"target": "gold"}, ("terms", 0, "target")),
    ],
)
def test_choice_problems(changes: dict[str, Any], loc: tuple[str | int, ...]) -> None:
    assert locs(terms=[edited(SUPPORT, priority=1, **changes)], rules=[]) == [loc]


def test_a_choice_tier_better_than_the_band_is_refused() -> None:
    better = edited(
        SUPPORT,
        band={"allowed": ["premium"]},
        tiers=[{"options": ["standard"], "approver": "product"}],
    )
    assert locs(terms=[better], rules=[]) == [("terms", 0, "tiers", 0, "options", 0)]


def test_every_problem_is_reported_at_once() -> None:
    found = locs(
        terms=[edited(DISCOUNT, walk_away=10), edited(CONTRACT, priority=1), SUPPORT],
        rules=[edited(RULE, then=[{"term": "support_level", "shift": 1}])],
    )
    assert found == [
        ("terms", 0, "walk_away"),
        ("terms", 1, "priority"),
        ("rules", 0, "then", 0, "shift"),
    ]


def test_structural_mistakes_are_refused_by_the_model() -> None:
    with pytest.raises(pydantic.ValidationError):
        PlaybookDocument.model_validate(
            {"key": "test", "name": "Test", "terms": [edited(DISCOUNT, colour="red")]}
        )
    with pytest.raises(pydantic.ValidationError):
        PlaybookDocument.model_validate(
            {"key": "test", "name": "Test", "terms": [edited(DISCOUNT, key="Discount")]}
        )


def test_format_loc() -> None:
    assert format_loc(("terms", 0, "band", "high")) == "terms[0].band.high"
    assert format_loc(("rules", 2, "when", 0, "term")) == "rules[2].when[0].term"
    assert format_loc(()) == ""
