"""Choice and flag terms: steps past the band count as variance, blocked is a ratio of 1."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from tests.driver import liability_term
from tests.engine.conftest import Build, Check

from governance.engine import DealInputError, Status
from governance.engine.results import EffectiveBand


def support(**overrides: Any) -> dict[str, Any]:
    term: dict[str, Any] = {
        "key": "support_level",
        "kind": "choice",
        "options": ["basic", "standard", "premium", "platinum", "bespoke", "sovereign"],
        "owner": "product",
        "priority": 1,
        "band": {"allowed": ["standard", "premium"]},
        "tiers": [
            {"options": ["platinum"], "approver": "product"},
            {"options": ["bespoke"], "approver": "cto"},
        ],
    }
    term.update(overrides)
    return term


@pytest.mark.parametrize(
    ("option", "status", "variance", "ratio", "tier", "approvers"),
    [
        ("basic", Status.better, 0, D(0), None, ()),  # ranked before every allowed option
        ("standard", Status.within, 0, D(0), None, ()),
        ("premium", Status.within, 0, D(0), None, ()),
        ("platinum", Status.exception, 1, D(1) / D(3), 1, ("product",)),
        ("bespoke", Status.exception, 2, D(2) / D(3), 2, ("product", "cto")),
        ("sovereign", Status.blocked, 3, D(1), None, ()),  # in no tier: nobody may approve
    ],
)
def test_choice(
    build: Build,
    run: Check,
    option: str,
    status: Status,
    variance: int,
    ratio: D,
    tier: int | None,
    approvers: tuple[str, ...],
) -> None:
    result = run(build([support()]), {"support_level": option}).terms[0]
    assert result.kind == "choice"
    assert result.value == option
    assert result.status is status
    assert result.variance == variance
    assert result.variance_ratio == ratio
    assert result.tier == tier
    assert result.approvers == approvers
    assert result.band == EffectiveBand(allowed=("standard", "premium"))


def test_choice_tier_reached_is_the_first_tier_listing_the_option(build: Build, run: Check) -> None:
    term = support(
        tiers=[
            {"options": ["platinum", "bespoke"], "approver": "product"},
            {"options": ["sovereign"], "approver": "product"},
        ]
    )
    playbook = build([term])
    bespoke = run(playbook, {"support_level": "bespoke"}).terms[0]
    assert (bespoke.tier, bespoke.variance, bespoke.approvers) == (1, D(1), ("product",))
    sovereign = run(playbook, {"support_level": "sovereign"}).terms[0]
    # The same group at two tiers is asked once.
    assert (sovereign.tier, sovereign.variance, sovereign.approvers) == (2, D(2), ("product",))


def test_choice_without_tiers_blocks_anything_outside_the_band(build: Build, run: Check) -> None:
    result = run(build([support(tiers=[])]), {"support_level": "platinum"}).terms[0]
    assert (result.status, result.variance, result.variance_ratio) == (Status.blocked, D(1), D(1))


def test_unknown_option_is_refused(build: Build) -> None:
    with pytest.raises(DealInputError) as caught:
        build([support()]).parse_terms({"support_level": "gold"})
    assert [p.loc for p in caught.value.problems] == [("terms", "support_level")]
    assert "gold" in str(caught.value)


def test_flag_at_preferred_value_is_within(build: Build, run: Check) -> None:
    result = run(build([liability_term()]), {"uncapped_liability": False}).terms[0]
    assert result.kind == "flag"
    assert (result.status, result.variance, result.variance_ratio) == (Status.within, D(0), D(0))
    assert result.band == EffectiveBand(preferred=False)


def test_flag_off_preferred_needs_every_tier_in_order(build: Build, run: Check) -> None:
    result = run(build([liability_term()]), {"uncapped_liability": True}).terms[0]
    assert result.status is Status.exception
    assert result.tier == 2
    assert result.variance == 2
    assert result.variance_ratio == D(2) / D(3)
    assert result.approvers == ("legal", "general_counsel")


def test_flag_preferring_true(build: Build, run: Check) -> None:
    playbook = build(
        [liability_term(key="auto_renewal", preferred=True, tiers=[{"approver": "cfo"}])]
    )
    assert run(playbook, {"auto_renewal": True}).terms[0].status is Status.within
    off = run(playbook, {"auto_renewal": False}).terms[0]
    assert (off.status, off.variance, off.variance_ratio) == (Status.exception, D(1), D("0.5"))
    assert off.approvers == ("cfo",)


def test_flag_without_tiers_off_preferred_is_blocked(build: Build, run: Check) -> None:
    result = run(build([liability_term(tiers=[])]), {"uncapped_liability": True}).terms[0]
    assert (result.status, result.variance, result.variance_ratio) == (Status.blocked, D(1), D(1))
    assert result.approvers == ()
    assert result.tier is None


@pytest.mark.parametrize(("raw", "parsed"), [("true", True), ("FALSE", False), (True, True)])
def test_flag_accepts_booleans_and_their_text(build: Build, raw: object, parsed: bool) -> None:
    assert build([liability_term()]).parse_terms({"uncapped_liability": raw}) == {
        "uncapped_liability": parsed
    }


@pytest.mark.parametrize("raw", ["yes", 1, 0, "1", 2.5])
def test_flag_refuses_anything_else(build: Build, raw: object) -> None:
    with pytest.raises(DealInputError) as caught:
        build([liability_term()]).parse_terms({"uncapped_liability": raw})
    assert caught.value.problems[0].loc == ("terms", "uncapped_liability")
