"""Number terms: where a value lands against band, tiers and walk-away, in both directions."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from tests.driver import contract_term, discount_term
from tests.engine.conftest import Build, Check

from governance.engine import Status
from governance.engine.results import EffectiveBand


@pytest.mark.parametrize(
    ("value", "status", "variance", "tier", "approvers"),
    [
        ("-1", Status.better, "0", None, ()),
        ("0", Status.within, "0", None, ()),  # the good edge is inside the band
        ("7.5", Status.within, "0", None, ()),
        ("15", Status.within, "0", None, ()),  # the worse edge is inside too
        ("15.01", Status.exception, "0.01", 1, ("sales_director",)),
        ("25", Status.exception, "10", 1, ("sales_director",)),  # at a limit: not past it
        ("25.5", Status.exception, "10.5", 2, ("sales_director", "finance")),
        ("35", Status.exception, "20", 2, ("sales_director", "finance")),
        ("35.1", Status.blocked, "20.1", None, ()),
        ("100", Status.blocked, "85", None, ()),
    ],
)
def test_lower_is_better(
    build: Build,
    run: Check,
    value: str,
    status: Status,
    variance: str,
    tier: int | None,
    approvers: tuple[str, ...],
) -> None:
    result = run(build([discount_term()]), {"discount_pct": value}).terms[0]
    assert result.value == D(value)
    assert result.status is status
    assert result.variance == D(variance)
    assert result.variance_ratio == D(variance) / D(20)
    assert result.tier == tier
    assert result.approvers == approvers
    assert result.band == EffectiveBand(low=D(0), high=D(15), walk_away=D(35))


@pytest.mark.parametrize(
    ("value", "status", "variance", "tier", "approvers"),
    [
        (48, Status.better, "0", None, ()),
        (36, Status.within, "0", None, ()),
        (12, Status.within, "0", None, ()),
        (11, Status.exception, "1", 1, ("sales_director",)),
        (6, Status.exception, "6", 1, ("sales_director",)),
        (5, Status.exception, "7", 2, ("sales_director", "cfo")),
        (1, Status.exception, "11", 2, ("sales_director", "cfo")),
        (0, Status.blocked, "12", None, ()),
        (-3, Status.blocked, "15", None, ()),
    ],
)
def test_higher_is_better(
    build: Build,
    run: Check,
    value: int,
    status: Status,
    variance: str,
    tier: int | None,
    approvers: tuple[str, ...],
) -> None:
    result = run(build([contract_term()]), {"contract_months": value}).terms[0]
    assert result.status is status
    assert result.variance == D(variance)
    assert result.variance_ratio == D(variance) / D(11)
    assert result.tier == tier
    assert result.approvers == approvers
    assert result.band == EffectiveBand(low=D(12), high=D(36), walk_away=D(1))


def test_ratio_is_zero_at_the_edge_one_at_the_bottom_line_and_above_one_past_it(
    build: Build, run: Check
) -> None:
    playbook = build([discount_term()])
    ratios = [
        run(playbook, {"discount_pct": v}).terms[0].variance_ratio for v in ("15", "35", "45")
    ]
    assert ratios == [D(0), D(1), D("1.5")]


def test_chain_lists_each_group_once_in_ladder_order(build: Build, run: Check) -> None:
    term = discount_term(
        walk_away=45,
        tiers=[
            {"limit": 25, "approver": "legal"},
            {"limit": 35, "approver": "general_counsel"},
            {"limit": 45, "approver": "legal"},
        ],
    )
    result = run(build([term]), {"discount_pct": 40}).terms[0]
    assert result.tier == 3
    assert result.approvers == ("legal", "general_counsel")


def test_walk_away_defaults_to_the_last_tier(build: Build, run: Check) -> None:
    playbook = build([discount_term(walk_away=None)])
    assert run(playbook, {"discount_pct": 35}).terms[0].status is Status.exception
    assert run(playbook, {"discount_pct": "35.5"}).terms[0].status is Status.blocked


def test_without_tiers_anything_past_the_band_is_blocked(build: Build, run: Check) -> None:
    playbook = build([discount_term(walk_away=None, tiers=[])])
    assert run(playbook, {"discount_pct": 15}).terms[0].status is Status.within
    result = run(playbook, {"discount_pct": 16}).terms[0]
    assert result.status is Status.blocked
    assert result.variance == D(1)
    assert result.variance_ratio >= 1
    assert result.approvers == ()


def test_decimal_values_are_exact(build: Build, run: Check) -> None:
    # 0.1 + 0.2 is exactly 0.3 in Decimal: no float ever gets in between.
    result = run(build([discount_term()]), {"discount_pct": "15.3"}).terms[0]
    assert result.variance == D("0.3")
    assert result.variance_ratio == D("0.015")
    floats = run(build([discount_term()]), {"discount_pct": 15.3}).terms[0]
    assert floats.value == D("15.3")
    assert floats.variance == D("0.3")
