"""Outcome figures on the demo playbook, checked by hand, and their invariants."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.engine.conftest import Build

from governance.engine import CompiledPlaybook, Status, Verdict
from governance.engine.document import NumberTerm
from governance.engine.outcomes import measure

D = Decimal
AMOUNT = {"amount": D(100000)}
FINAL = {
    "discount_pct": "20",
    "contract_months": "36",
    "billing_frequency": "annual_upfront",
    "payment_terms_days": "60",
    "free_months": "1",
    "uncapped_liability": True,
    "support_level": "platinum",
}


def test_figures_of_a_closed_deal(demo: CompiledPlaybook) -> None:
    figures = measure(demo, demo.parse_terms(FINAL), AMOUNT)
    assert figures.verdict is Verdict.needs_approval
    assert [t.key for t in figures.terms] == [
        "discount_pct",
        "uncapped_liability",
        "payment_terms_days",
        "contract_months",
        "support_level",
        "free_months",
        "billing_frequency",
    ]  # by priority, stated terms only

    discount = figures.term("discount_pct")
    assert discount is not None
    # 0 → 20 of a 0..43 range: within its band only thanks to 36 months and prepayment, which
    # move every step, the walk-away too, 8 points (35 → 43), as the check says.
    assert (discount.opening, discount.target, discount.walk_away) == (D(0), D(8), D(43))
    assert discount.status is Status.within
    assert discount.conceded == D(20)
    assert discount.conceded_share == D(20) / D(43)
    assert discount.held is False
    assert discount.cost == D("20000.00000000")  # 20 / 100 × 100,000
    assert discount.gets == ("contract_months", "billing_frequency")

    payment = figures.term("payment_terms_days")
    assert payment is not None
    # 30 → 60 of a 30..105 range (the walk-away of 90 moved 15 days by the 36-month rule).
    assert (payment.conceded, payment.conceded_share, payment.held) == (D(30), D("0.4"), False)
    # 30 more days of a 5 % yearly cost of capital on 100,000: 30 / 365 × 5,000.
    assert payment.cost == D("410.95890411")
    assert payment.gets == ("contract_months",)

    free = figures.term("free_months")
    assert free is not None
    assert free.status is Status.exception
    assert (free.conceded, free.held, free.gets) == (D(1), False, ())
    assert free.conceded_share == D(1) / D(3)
    assert free.cost == D("8333.33333333")  # a month of 100,000 a year

    months = figures.term("contract_months")
    assert months is not None
    # Held at the opening: nothing conceded, no cost expression, nothing to trade.
    assert (months.conceded, months.conceded_share, months.held) == (D(0), D(0), True)
    assert (months.cost, months.gets) == (None, ())

    liability = figures.term("uncapped_liability")
    assert liability is not None
    assert (liability.opening, liability.target, liability.walk_away) == (False, False, True)
    assert (liability.conceded, liability.conceded_share, liability.held) == (D(1), D(1), False)

    support = figures.term("support_level")
    assert support is not None
    # standard → platinum: two option steps; the walk-away is the last option a tier lists.
    assert (support.opening, support.walk_away) == ("standard", "platinum")
    assert (support.conceded, support.conceded_share, support.held) == (D(2), D(1), False)

    billing = figures.term("billing_frequency")
    assert billing is not None
    assert billing.walk_away == "monthly"
    assert (billing.conceded, billing.conceded_share, billing.held) == (D(0), D(0), True)

    assert figures.cost == D("28744.29223744")


def test_better_than_the_opening_concedes_nothing(demo: CompiledPlaybook) -> None:
    figures = measure(demo, demo.parse_terms({"contract_months": 48, "discount_pct": 0}), {})
    months = figures.term("contract_months")
    assert months is not None
    assert (months.conceded, months.conceded_share, months.held) == (D(0), D(0), True)
    discount = figures.term("discount_pct")
    assert discount is not None
    # No amount: the discount's cost cannot be worked out, which is not an error.
    assert (discount.cost, figures.cost) == (None, None)


def test_beyond_walk_away_shares_above_one(demo: CompiledPlaybook) -> None:
    figures = measure(demo, demo.parse_terms({"discount_pct": 42}), AMOUNT)
    discount = figures.term("discount_pct")
    assert discount is not None
    assert discount.status is Status.blocked
    assert discount.conceded_share == D(42) / D(35)
    assert discount.cost == D("42000.00000000")


def test_a_term_without_opening_has_no_share(build: Build) -> None:
    compiled = build(
        [
            {
                "key": "seats",
                "kind": "choice",
                "owner": "sales",
                "priority": 1,
                "options": ["a", "b", "c"],
                "band": {"allowed": ["a", "b"]},
                "cost": "value * 10",
            },
            {
                "key": "fee",
                "kind": "number",
                "unit": "USD",
                "direction": "higher_is_better",
                "owner": "finance",
                "priority": 2,
                "target": 100,
                "band": {"low": 50, "high": 200},
            },
        ]
    )
    figures = measure(compiled, compiled.parse_terms({"seats": "c", "fee": 120}), {})
    seats = figures.term("seats")
    assert seats is not None
    # No opening: nothing to measure from, so no concession and no cost of one (analytics
    # would otherwise count a cost no concession explains); with no tiers the walk-away is the
    # last allowed option.
    assert (seats.conceded, seats.conceded_share, seats.walk_away) == (None, None, "b")
    assert seats.cost is None
    fee = figures.term("fee")
    assert fee is not None
    assert (fee.held, fee.walk_away) == (True, D(50))


NUMBER_KEYS = ["discount_pct", "payment_terms_days", "contract_months", "free_months"]


@given(st.sampled_from(NUMBER_KEYS), st.integers(min_value=0, max_value=1000))
def test_share_runs_from_zero_at_opening_to_one_at_walk_away(
    demo: CompiledPlaybook, key: str, permille: int
) -> None:
    term = demo.document.term(key)
    assert isinstance(term, NumberTerm)
    assert term.opening is not None
    walk = term.effective_walk_away()

    def share(value: Decimal) -> Decimal:
        outcome = measure(demo, {key: value}, AMOUNT).term(key)
        assert outcome is not None
        assert outcome.conceded_share is not None
        return outcome.conceded_share

    assert share(term.opening) == 0
    assert share(walk) == 1
    point = term.opening + (walk - term.opening) * D(permille) / 1000
    assert 0 <= share(point) <= 1
    # Further toward the walk-away never concedes less.
    further = point + (walk - point) / 2
    assert share(further) >= share(point)


@pytest.mark.parametrize("key", NUMBER_KEYS)
def test_cost_is_zero_at_the_opening(demo: CompiledPlaybook, key: str) -> None:
    term = demo.document.term(key)
    assert isinstance(term, NumberTerm)
    assert term.opening is not None
    outcome = measure(demo, {key: term.opening}, AMOUNT).term(key)
    assert outcome is not None
    assert outcome.cost in (None, D(0))


def test_closing_better_than_the_opening_costs_nothing(demo: CompiledPlaybook) -> None:
    # Payment terms open at 30 days and are priced as capital cost: 15 days is no concession,
    # and not a gain that would hide what other terms cost.
    figures = measure(demo, demo.parse_terms({"payment_terms_days": 15}), {"amount": D(100000)})
    term = figures.term("payment_terms_days")
    assert term is not None
    assert (term.conceded, term.cost) == (D(0), D(0))
