"""A whole deal: missing and unknown terms, the verdict, the variance score and approval steps."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from tests.engine.conftest import Build, Check

from governance.engine import (
    CheckResult,
    CompiledPlaybook,
    DealInputError,
    Status,
    TermResult,
    Verdict,
    evaluate,
)
from governance.engine.results import ApprovalStep, Ask, EffectiveBand, Trade


def number(key: str, priority: int, **overrides: Any) -> dict[str, Any]:
    """Lower is better, band 0–10, `ops` approves to 20, `vp` to the bottom line at 30."""
    term: dict[str, Any] = {
        "key": key,
        "kind": "number",
        "unit": "%",
        "direction": "lower_is_better",
        "owner": "finance",
        "priority": priority,
        "band": {"low": 0, "high": 10},
        "tiers": [{"limit": 20, "approver": "ops"}, {"limit": 30, "approver": "vp"}],
    }
    term.update(overrides)
    return term


@pytest.fixture
def three(build: Build) -> CompiledPlaybook:
    # Priorities 1, 2 and 4 give weights 1, 1/2 and 1/4: exact in Decimal.
    return build([number("a", 1), number("b", 2), number("c", 4)])


def test_result_shapes_are_the_wire_contract() -> None:
    assert CheckResult._fields == (
        "playbook",
        "version",
        "verdict",
        "variance_score",
        "terms",
        "steps",
        "rules_fired",
        "trades",
    )
    assert TermResult._fields == (
        "key",
        "kind",
        "owner",
        "priority",
        "value",
        "status",
        "variance",
        "variance_ratio",
        "tier",
        "approvers",
        "band",
        "rules",
    )
    assert ApprovalStep._fields == ("group", "step", "terms")
    assert Ask._fields == ("term", "op", "value")
    assert EffectiveBand._fields == ("low", "high", "walk_away", "allowed", "preferred")
    assert Trade._fields == (
        "term",
        "rule",
        "asks",
        "band_edge_before",
        "band_edge_after",
        "status_after",
        "variance_before",
        "variance_after",
        "variance_removed",
        "resolves",
    )


def test_check_names_the_playbook_version_and_lists_terms_by_priority(
    build: Build, run: Check
) -> None:
    playbook = build([number("late", 9), number("early", 2)])
    result = run(playbook, {"late": 1, "early": 1})
    assert (result.playbook, result.version) == ("test", 3)
    assert [t.key for t in result.terms] == ["early", "late"]


def test_unstated_terms_are_missing_not_errors(three: CompiledPlaybook, run: Check) -> None:
    result = run(three, {"a": 5})
    assert [(t.key, t.status) for t in result.terms] == [
        ("a", Status.within),
        ("b", Status.missing),
        ("c", Status.missing),
    ]
    missing = result.terms[1]
    assert (missing.value, missing.variance, missing.variance_ratio) == (None, D(0), D(0))
    assert missing.approvers == ()
    assert missing.band == EffectiveBand(low=D(0), high=D(10), walk_away=D(30))
    assert result.verdict is Verdict.auto_approved


def test_null_is_missing(three: CompiledPlaybook, run: Check) -> None:
    assert three.parse_terms({"a": None, "b": 3}) == {"b": D(3)}
    assert run(three, {"a": None}).terms[0].status is Status.missing


def test_unknown_terms_and_bad_values_are_refused_with_their_location(
    three: CompiledPlaybook,
) -> None:
    with pytest.raises(DealInputError) as caught:
        three.parse_terms({"a": "lots", "zzz": 1, "b": 2, "c": "NaN"})
    problems = caught.value.problems
    assert [p.loc for p in problems] == [("terms", "a"), ("terms", "zzz"), ("terms", "c")]
    assert "unknown term 'zzz'" in problems[1].message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("raw", ["abc", "", "Infinity", "-inf", "NaN", True, [1], {"v": 1}])
def test_a_number_term_needs_a_finite_number(three: CompiledPlaybook, raw: object) -> None:
    with pytest.raises(DealInputError) as caught:
        three.parse_terms({"a": raw})
    assert caught.value.problems[0].loc == ("terms", "a")


@pytest.mark.parametrize("raw", ["1e18", "-1e18", 10**30, "9e999999", "1e1000000", D("1E+25")])
def test_numbers_too_large_for_any_term_are_refused(three: CompiledPlaybook, raw: object) -> None:
    # Such sizes once made evaluate overflow instead of reporting the input.
    with pytest.raises(DealInputError) as caught:
        three.parse_terms({"a": raw})
    assert caught.value.problems[0].loc == ("terms", "a")
    assert "out of range" in caught.value.problems[0].message


def test_large_and_tiny_numbers_still_evaluate(three: CompiledPlaybook, run: Check) -> None:
    result = run(three, {"a": "999999999999999999", "b": "-999999999999999999", "c": "1e-12"})
    assert [t.status for t in result.terms] == [Status.blocked, Status.better, Status.within]
    assert result.verdict is Verdict.blocked


def test_numbers_with_absurd_precision_are_refused(three: CompiledPlaybook) -> None:
    # "1e-999999999" is a billion digits once written out: refused, naming the term.
    with pytest.raises(DealInputError, match="c: '1e-999999999' is out of range"):
        three.parse_terms({"c": "1e-999999999"})
    # Trailing zeros past the limit are only notation: the value is kept.
    assert three.parse_terms({"c": "2." + "0" * 30}) == {"c": D(2)}


@pytest.mark.parametrize(("raw", "parsed"), [(7, D(7)), ("7.25", D("7.25")), ("-0", D(0))])
def test_numbers_arrive_as_int_text_or_decimal(
    three: CompiledPlaybook, raw: object, parsed: D
) -> None:
    assert three.parse_terms({"a": raw}) == {"a": parsed}


def test_verdict_follows_the_worst_term(three: CompiledPlaybook, run: Check) -> None:
    assert run(three, {"a": -1, "b": 10, "c": 0}).verdict is Verdict.auto_approved
    assert run(three, {"a": 11, "b": 10}).verdict is Verdict.needs_approval
    assert run(three, {"a": 11, "b": 31}).verdict is Verdict.blocked
    assert run(three, {}).verdict is Verdict.auto_approved


def test_variance_score_is_weighted_by_one_over_priority(
    three: CompiledPlaybook, run: Check
) -> None:
    result = run(three, {"a": 12, "b": 20, "c": 40})
    assert [t.variance_ratio for t in result.terms] == [D("0.1"), D("0.5"), D("1.5")]
    expected = (D("0.1") * 1 + D("0.5") / 2 + D("1.5") / 4) / (1 + D(1) / 2 + D(1) / 4)
    assert result.variance_score == expected


def test_missing_terms_are_left_out_of_the_score(three: CompiledPlaybook, run: Check) -> None:
    result = run(three, {"a": 12, "c": 40})
    assert result.variance_score == (D("0.1") + D("1.5") / 4) / (1 + D(1) / 4)
    assert run(three, {"b": 20}).variance_score == D("0.5")


def test_score_is_zero_when_every_stated_term_is_inside(
    three: CompiledPlaybook, run: Check
) -> None:
    assert run(three, {"a": 0, "b": 10, "c": -4}).variance_score == 0
    assert run(three, {}).variance_score == 0


def test_approval_steps_group_terms_by_group_and_step(demo: CompiledPlaybook, run: Check) -> None:
    result = run(
        demo,
        {
            "discount_pct": 30,  # sales_director, finance
            "uncapped_liability": True,  # legal, general_counsel
            "payment_terms_days": 70,  # finance, cfo
            "support_level": "platinum",  # product
            "free_months": 2,  # sales_director, finance
            "billing_frequency": "monthly",  # finance, cfo
            "sla_uptime_pct": "99.9",  # within
        },
    )
    assert result.verdict is Verdict.needs_approval
    assert result.steps == (
        ApprovalStep("finance", 1, ("payment_terms_days", "billing_frequency")),
        ApprovalStep("legal", 1, ("uncapped_liability",)),
        ApprovalStep("product", 1, ("support_level",)),
        ApprovalStep("sales_director", 1, ("discount_pct", "free_months")),
        ApprovalStep("cfo", 2, ("payment_terms_days", "billing_frequency")),
        ApprovalStep("finance", 2, ("discount_pct", "free_months")),
        ApprovalStep("general_counsel", 2, ("uncapped_liability",)),
    )


def test_blocked_terms_ask_no_one(demo: CompiledPlaybook, run: Check) -> None:
    result = run(demo, {"discount_pct": 50, "support_level": "platinum"})
    assert result.verdict is Verdict.blocked
    assert result.steps == (ApprovalStep("product", 1, ("support_level",)),)


def test_demo_deal_inside_every_band_is_auto_approved(demo: CompiledPlaybook, run: Check) -> None:
    result = run(
        demo,
        {
            "discount_pct": 12,
            "uncapped_liability": False,
            "liability_cap_multiple": 1,
            "payment_terms_days": 30,
            "contract_months": 12,
            "support_level": "premium",
            "price_increase_cap_pct": 5,
            "free_months": 0,
            "termination_for_convenience": "false",
            "sla_uptime_pct": "99.5",
            "data_residency": "eu_or_us",
            "billing_frequency": "semi_annual",
        },
    )
    assert result.verdict is Verdict.auto_approved
    assert result.variance_score == 0
    assert result.steps == ()
    assert result.trades == ()
    assert {t.status for t in result.terms} == {Status.within}


def test_evaluate_takes_typed_values_directly(three: CompiledPlaybook) -> None:
    result = evaluate(three, {"a": D("10.5")}, {})
    assert result.terms[0].status is Status.exception
    assert result.terms[0].variance == D("0.5")
