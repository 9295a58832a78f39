"""Rules that shift bands or replace approvers, and the trades (gives and gets) they suggest."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from tests.driver import contract_term, discount_term, liability_term
from tests.engine.conftest import Build, Check

from governance.engine import CheckResult, CompiledPlaybook, Status, Verdict
from governance.engine.results import Ask, EffectiveBand, Trade

TERMS: list[dict[str, Any]] = [
    discount_term(),
    contract_term(),
    {
        "key": "billing_frequency",
        "kind": "choice",
        "options": ["annual_upfront", "semi_annual", "quarterly", "monthly"],
        "owner": "finance",
        "priority": 3,
        "band": {"allowed": ["annual_upfront", "semi_annual"]},
        "tiers": [
            {"options": ["quarterly"], "approver": "finance"},
            {"options": ["monthly"], "approver": "cfo"},
        ],
    },
    liability_term(priority=4),
]


def rule(key: str, when: list[dict[str, Any]], then: list[dict[str, Any]]) -> dict[str, Any]:
    return {"key": key, "when": when, "then": then}


MULTI_YEAR = rule(
    "multi_year",
    [{"term": "contract_months", "op": ">=", "value": 36}],
    [{"term": "discount_pct", "shift": 5}],
)
PREPAY = rule(
    "prepay",
    [{"term": "billing_frequency", "op": "==", "value": "annual_upfront"}],
    [{"term": "discount_pct", "shift": 3}],
)
STRONG = rule(
    "strong",
    [{"attribute": "value_position", "op": "==", "value": "strong"}],
    [{"term": "discount_pct", "shift": -5}],
)
LARGE_DEAL = rule(
    "large_deal",
    [{"attribute": "amount", "op": ">=", "value": 500000}],
    [{"term": "discount_pct", "tier": 2, "approver": "cfo"}],
)


@pytest.fixture
def playbook(build: Build) -> CompiledPlaybook:
    return build(TERMS, [MULTI_YEAR, PREPAY, STRONG, LARGE_DEAL])


def term(result: CheckResult, key: str) -> Any:
    return next(t for t in result.terms if t.key == key)


# Rules


def test_no_rule_fires_on_a_plain_deal(playbook: CompiledPlaybook, run: Check) -> None:
    result = run(playbook, {"discount_pct": 16, "contract_months": 12})
    assert result.rules_fired == ()
    assert term(result, "discount_pct").rules == ()


def test_a_shift_moves_band_tiers_and_walk_away(playbook: CompiledPlaybook, run: Check) -> None:
    result = run(playbook, {"discount_pct": 20, "contract_months": 36})
    discount = term(result, "discount_pct")
    assert result.rules_fired == ("multi_year",)
    assert discount.rules == ("multi_year",)
    assert discount.status is Status.within
    assert discount.band == EffectiveBand(low=D(0), high=D(20), walk_away=D(40))
    # Tier 1 now ends at 30, tier 2 at 40.
    assert run(playbook, {"discount_pct": 30, "contract_months": 36}).terms[0].tier == 1
    at_31 = run(playbook, {"discount_pct": 31, "contract_months": 36}).terms[0]
    assert (at_31.status, at_31.tier, at_31.variance) == (Status.exception, 2, D(11))
    assert at_31.variance_ratio == D(11) / D(20)
    assert run(playbook, {"discount_pct": 41, "contract_months": 36}).verdict is Verdict.blocked


def test_shifts_from_several_rules_add_up(playbook: CompiledPlaybook, run: Check) -> None:
    result = run(
        playbook,
        {"discount_pct": 30, "contract_months": 48, "billing_frequency": "annual_upfront"},
    )
    discount = term(result, "discount_pct")
    assert discount.band == EffectiveBand(low=D(0), high=D(23), walk_away=D(43))
    assert (discount.status, discount.variance, discount.tier) == (Status.exception, D(7), 1)
    assert discount.rules == ("multi_year", "prepay")


def test_a_negative_shift_tightens(playbook: CompiledPlaybook, run: Check) -> None:
    strong = {"value_position": "strong"}
    at_12 = run(playbook, {"discount_pct": 12}, strong).terms[0]
    assert at_12.band == EffectiveBand(low=D(0), high=D(10), walk_away=D(30))
    assert (at_12.status, at_12.variance, at_12.tier) == (Status.exception, D(2), 1)
    assert at_12.approvers == ("sales_director",)
    assert run(playbook, {"discount_pct": 21}, strong).terms[0].tier == 2
    assert run(playbook, {"discount_pct": 31}, strong).verdict is Verdict.blocked
    # Widening and tightening by the same amount cancel out.
    both = run(playbook, {"discount_pct": 15, "contract_months": 36}, strong)
    assert both.terms[0].status is Status.within
    assert both.terms[0].rules == ("multi_year", "strong")


def test_a_tightening_never_moves_the_band_past_its_good_edge(build: Build, run: Check) -> None:
    harsh = rule(
        "harsh",
        [{"attribute": "value_position", "op": "==", "value": "strong"}],
        [{"term": "discount_pct", "shift": -20}],
    )
    playbook = build(TERMS, [harsh])
    zero = run(playbook, {"discount_pct": 0}, {"value_position": "strong"}).terms[0]
    assert zero.status is Status.within
    assert zero.band == EffectiveBand(low=D(0), high=D(0), walk_away=D(15))
    assert run(playbook, {"discount_pct": 1}, {"value_position": "strong"}).terms[0].tier == 1


def test_approver_replaced_for_one_tier(playbook: CompiledPlaybook, run: Check) -> None:
    large = {"amount": D(750000)}
    assert run(playbook, {"discount_pct": 20}, large).terms[0].approvers == ("sales_director",)
    result = run(playbook, {"discount_pct": 30}, large)
    assert result.rules_fired == ("large_deal",)
    assert result.terms[0].approvers == ("sales_director", "cfo")
    assert result.terms[0].rules == ("large_deal",)


def test_approver_replaced_on_every_tier(build: Build, run: Check) -> None:
    us_legal = rule(
        "us_legal",
        [{"attribute": "region", "op": "==", "value": "us"}],
        [{"term": "uncapped_liability", "approver": "us_counsel"}],
    )
    playbook = build(TERMS, [us_legal])
    result = run(playbook, {"uncapped_liability": True}, {"region": "us"})
    assert result.terms[3].approvers == ("us_counsel",)
    assert result.terms[3].tier == 2
    eu = run(playbook, {"uncapped_liability": True}, {"region": "eu"})
    assert eu.terms[3].approvers == ("legal", "general_counsel")


def test_approver_replacement_on_a_choice(build: Build, run: Check) -> None:
    monthly_ceo = rule(
        "monthly_ceo",
        [{"attribute": "segment", "op": "==", "value": "smb"}],
        [{"term": "billing_frequency", "tier": 2, "approver": "ceo"}],
    )
    playbook = build(TERMS, [monthly_ceo])
    result = run(playbook, {"billing_frequency": "monthly"}, {"segment": "smb"})
    assert result.terms[2].approvers == ("finance", "ceo")
    assert result.steps[1].group == "ceo"


@pytest.mark.parametrize(
    ("order", "approvers"),
    [
        # Every tier to X, then tier 2 to Y: the later, narrower rule wins on tier 2.
        (("all_x", "second_y"), ("x", "y")),
        # Tier 2 to Y, then every tier to X: the later rule overrides everything.
        (("second_y", "all_x"), ("x",)),
    ],
)
def test_later_approver_replacement_wins(
    build: Build, run: Check, order: tuple[str, str], approvers: tuple[str, ...]
) -> None:
    when = [{"attribute": "region", "op": "==", "value": "us"}]
    rules = {
        "all_x": rule("all_x", when, [{"term": "discount_pct", "approver": "x"}]),
        "second_y": rule("second_y", when, [{"term": "discount_pct", "tier": 2, "approver": "y"}]),
    }
    playbook = build(TERMS, [rules[k] for k in order])
    result = run(playbook, {"discount_pct": 30}, {"region": "us"})
    assert result.terms[0].approvers == approvers
    assert result.rules_fired == order


def test_rules_fired_are_reported_in_document_order(build: Build, run: Check) -> None:
    # Document order is not term order nor alphabetical order.
    z_first = rule(
        "z_first",
        [{"term": "uncapped_liability", "op": "==", "value": False}],
        [{"term": "contract_months", "shift": 1}],
    )
    playbook = build(TERMS, [z_first, PREPAY, MULTI_YEAR])
    result = run(
        playbook,
        {
            "discount_pct": 1,
            "contract_months": 36,
            "billing_frequency": "annual_upfront",
            "uncapped_liability": False,
        },
    )
    assert result.rules_fired == ("z_first", "prepay", "multi_year")
    assert result.terms[0].rules == ("prepay", "multi_year")
    assert result.terms[1].rules == ("z_first",)


@pytest.mark.parametrize("op", ["==", "!=", ">=", "<", "in", "not_in"])
def test_a_condition_on_an_unstated_term_is_false(build: Build, run: Check, op: str) -> None:
    value: object = [24] if op in ("in", "not_in") else 24
    widen = rule(
        "widen",
        [{"term": "contract_months", "op": op, "value": value}],
        [{"term": "discount_pct", "shift": 5}],
    )
    result = run(build(TERMS, [widen]), {"discount_pct": 18})
    assert result.rules_fired == ()
    assert result.terms[0].status is Status.exception
    assert result.terms[1].status is Status.missing


def test_a_missing_term_still_names_the_rules_that_touched_it(
    playbook: CompiledPlaybook, run: Check
) -> None:
    result = run(playbook, {"contract_months": 36})
    assert result.terms[0].status is Status.missing
    assert result.terms[0].rules == ("multi_year",)
    # The band shows what the rep could agree alone under the rules that fired.
    assert result.terms[0].band == EffectiveBand(low=D(0), high=D(20), walk_away=D(40))


def test_every_condition_of_a_rule_must_hold(build: Build, run: Check) -> None:
    both = rule(
        "both",
        [
            {"term": "contract_months", "op": ">=", "value": 24},
            {"attribute": "segment", "op": "in", "value": ["smb", "mid_market"]},
        ],
        [{"term": "discount_pct", "shift": 5}],
    )
    playbook = build(TERMS, [both])
    deal = {"discount_pct": 18, "contract_months": 24}
    assert run(playbook, deal, {"segment": "smb"}).rules_fired == ("both",)
    assert run(playbook, deal, {"segment": "enterprise"}).rules_fired == ()
    assert run(playbook, {**deal, "contract_months": 23}, {"segment": "smb"}).rules_fired == ()
    assert run(playbook, deal, {}).rules_fired == ()


@pytest.mark.parametrize(
    ("amount", "fires"),
    [
        (D(500000), True),
        (D("500000.00"), True),
        ("500000", True),
        ("750000.5", True),
        (1_000_000, True),
        (D("499999.99"), False),
        ("499999", False),
        ("half a million", False),
        (None, False),
        (True, False),
        (D("NaN"), False),
    ],
)
def test_numeric_attribute_conditions(
    playbook: CompiledPlaybook, run: Check, amount: object, fires: bool
) -> None:
    attributes = {} if amount is None else {"amount": amount}
    result = run(playbook, {"discount_pct": 30}, attributes)
    assert (result.rules_fired == ("large_deal",)) is fires
    assert result.terms[0].approvers == (
        ("sales_director", "cfo") if fires else ("sales_director", "finance")
    )


def test_text_attribute_conditions(build: Build, run: Check) -> None:
    rules = [
        rule(
            "weak",
            [{"attribute": "value_position", "op": "==", "value": "weak"}],
            [{"term": "discount_pct", "shift": 5}],
        ),
        rule(
            "late_close",
            [{"attribute": "close_date", "op": ">=", "value": "2025-07-01"}],
            [{"term": "discount_pct", "shift": 1}],
        ),
        rule(
            "not_emea",
            [{"attribute": "region", "op": "not_in", "value": ["emea", "apac"]}],
            [{"term": "discount_pct", "shift": 2}],
        ),
    ]
    playbook = build(TERMS, rules)
    deal = {"discount_pct": 1}
    assert run(playbook, deal, {"value_position": "weak"}).rules_fired == ("weak",)
    assert run(playbook, deal, {"value_position": "Weak"}).rules_fired == ()
    # ISO dates compare correctly as text.
    assert run(playbook, deal, {"close_date": "2025-07-01"}).rules_fired == ("late_close",)
    assert run(playbook, deal, {"close_date": "2025-06-30"}).rules_fired == ()
    assert run(playbook, deal, {"region": "na"}).rules_fired == ("not_emea",)
    assert run(playbook, deal, {"region": "emea"}).rules_fired == ()


def test_conditions_on_choice_and_flag_terms(build: Build, run: Check) -> None:
    rules = [
        rule(
            "cheap_billing",
            [{"term": "billing_frequency", "op": "in", "value": ["annual_upfront", "semi_annual"]}],
            [{"term": "discount_pct", "shift": 1}],
        ),
        rule(
            "capped",
            [{"term": "uncapped_liability", "op": "==", "value": False}],
            [{"term": "discount_pct", "shift": 2}],
        ),
    ]
    playbook = build(TERMS, rules)
    fired = run(
        playbook,
        {"discount_pct": 1, "billing_frequency": "semi_annual", "uncapped_liability": "false"},
    ).rules_fired
    assert fired == ("cheap_billing", "capped")
    none = run(
        playbook,
        {"discount_pct": 1, "billing_frequency": "monthly", "uncapped_liability": True},
    ).rules_fired
    assert none == ()


# Trades


def test_trades_are_ranked_by_variance_removed(demo: CompiledPlaybook, run: Check) -> None:
    result = run(
        demo,
        {
            "discount_pct": 22,
            "contract_months": 12,
            "billing_frequency": "quarterly",
            "payment_terms_days": 60,
        },
        {"amount": D(250000), "value_position": "parity"},
    )
    assert result.trades == (
        Trade(
            term="discount_pct",
            rule="multi_year_widens_discount",
            asks=(Ask("contract_months", ">=", D(36)),),
            band_edge_before=D(15),
            band_edge_after=D(20),
            status_after=Status.exception,
            variance_before=D(7),
            variance_after=D(2),
            variance_removed=D(5),
            resolves=False,
        ),
        Trade(
            term="discount_pct",
            rule="prepay_widens_discount",
            asks=(Ask("billing_frequency", "==", "annual_upfront"),),
            band_edge_before=D(15),
            band_edge_after=D(18),
            status_after=Status.exception,
            variance_before=D(7),
            variance_after=D(4),
            variance_removed=D(3),
            resolves=False,
        ),
        Trade(
            term="payment_terms_days",
            rule="multi_year_relaxes_payment_terms",
            asks=(Ask("contract_months", ">=", D(24)),),
            band_edge_before=D(45),
            band_edge_after=D(60),
            status_after=Status.within,
            variance_before=D(15),
            variance_after=D(0),
            variance_removed=D(15),
            resolves=True,
        ),
    )


def test_ranking_beats_document_order(build: Build, run: Check) -> None:
    # PREPAY (+3) comes first in the document but MULTI_YEAR (+5) removes more.
    playbook = build(TERMS, [PREPAY, MULTI_YEAR])
    trades = run(playbook, {"discount_pct": 25}).trades
    assert [t.rule for t in trades] == ["multi_year", "prepay"]
    # When both remove all the variance, they keep document order.
    tied = run(playbook, {"discount_pct": 17}).trades
    assert [(t.rule, t.variance_removed, t.resolves) for t in tied] == [
        ("prepay", D(2), True),
        ("multi_year", D(2), True),
    ]


def test_a_rule_already_fired_is_not_suggested(demo: CompiledPlaybook, run: Check) -> None:
    result = run(demo, {"discount_pct": 22, "contract_months": 36})
    assert result.rules_fired == (
        "multi_year_widens_discount",
        "multi_year_relaxes_payment_terms",
    )
    assert [(t.rule, t.band_edge_before, t.band_edge_after, t.resolves) for t in result.trades] == [
        ("prepay_widens_discount", D(20), D(23), True)
    ]


def test_no_trades_without_exceptions(demo: CompiledPlaybook, run: Check) -> None:
    assert run(demo, {"discount_pct": 15, "payment_terms_days": 45}).trades == ()


def test_rules_on_attributes_the_deal_does_not_meet_are_not_suggested(
    demo: CompiledPlaybook, run: Check
) -> None:
    # weak_position_loosens would widen the discount, but the value position is not the rep's
    # to give.
    rules = {t.rule for t in run(demo, {"discount_pct": 22}, {"value_position": "parity"}).trades}
    assert "weak_position_loosens" not in rules
    assert rules == {"multi_year_widens_discount", "prepay_widens_discount"}


def test_tightening_and_approver_rules_are_never_trades(demo: CompiledPlaybook, run: Check) -> None:
    result = run(demo, {"discount_pct": 30, "free_months": 2}, {"amount": D(10)})
    rules = {t.rule for t in result.trades}
    assert "strong_position_tightens" not in rules
    assert "large_deal_cfo_signs_discount" not in rules
    assert {t.term for t in result.trades} == {"discount_pct"}


def test_a_rule_asks_only_for_the_conditions_the_deal_misses(build: Build, run: Check) -> None:
    enterprise_multi_year = rule(
        "enterprise_multi_year",
        [
            {"attribute": "segment", "op": "==", "value": "enterprise"},
            {"term": "contract_months", "op": ">=", "value": 24},
            {"term": "billing_frequency", "op": "in", "value": ["semi_annual", "annual_upfront"]},
        ],
        [{"term": "discount_pct", "shift": 4}],
    )
    playbook = build(TERMS, [enterprise_multi_year])
    deal = {"discount_pct": 20, "contract_months": 12, "billing_frequency": "semi_annual"}
    (trade,) = run(playbook, deal, {"segment": "enterprise"}).trades
    assert trade.asks == (Ask("contract_months", ">=", D(24)),)
    assert (trade.variance_before, trade.variance_after, trade.resolves) == (D(5), D(1), False)
    assert run(playbook, deal, {"segment": "smb"}).trades == ()
    # A list condition reads back as a sorted list.
    (monthly,) = run(
        playbook, {**deal, "billing_frequency": "monthly"}, {"segment": "enterprise"}
    ).trades
    assert monthly.asks[1] == Ask("billing_frequency", "in", ["annual_upfront", "semi_annual"])


def test_trades_on_a_higher_is_better_term(build: Build, run: Check) -> None:
    prepay_shortens = rule(
        "prepay_shortens",
        [{"term": "billing_frequency", "op": "==", "value": "annual_upfront"}],
        [{"term": "contract_months", "shift": 6}],
    )
    playbook = build(TERMS, [prepay_shortens])
    (trade,) = run(playbook, {"contract_months": 8, "billing_frequency": "quarterly"}).trades
    assert (trade.band_edge_before, trade.band_edge_after) == (D(12), D(6))
    assert (trade.variance_before, trade.variance_after, trade.variance_removed) == (
        D(4),
        D(0),
        D(4),
    )
    assert trade.status_after is Status.within
    assert trade.resolves is True
