"""Number terms: where a value lands against band, tiers and walk-away, in both directions."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest

from governance.engine import CheckResult, CompiledPlaybook, Status
from governance.engine.results import EffectiveBand

Build = Callable[..., CompiledPlaybook]
Check = Callable[..., CheckResult]


def discount(**overrides: Any) -> dict[str, Any]:
    """Lower is better: band 0–15, sales director to 25, finance to the bottom line at 35."""
    term: dict[str, Any] = {
        "key": "discount_pct",
        "kind": "number",
        "unit": "%",
        "direction": "lower_is_better",
        "owner": "finance",
        "priority": 1,
        "walk_away": 35,
        "band": {"low": 0, "high": 15},
        "tiers": [
            {"limit": 25, "approver": "sales_director"},
            {"limit": 35, "approver": "finance"},
        ],
    }
    term.update(overrides)
    return term


def contract(**overrides: Any) -> dict[str, Any]:
    """Higher is better: band 12–36 months, sales director down to 6, CFO down to 1."""
    term: dict[str, Any] = {
        "key": "contract_months",
        "kind": "number",
        "unit": "months",
        "direction": "higher_is_better",
        "owner": "sales",
        "priority": 2,
        "walk_away": 1,
        "band": {"low": 12, "high": 36},
        "tiers": [
            {"limit": 6, "approver": "sales_director"},
            {"limit": 1, "approver": "cfo"},
        ],
    }
    term.update(overrides)
    return term


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
    result = run(build([discount()]), {"discount_pct": value}).terms[0]
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
    result = run(build([contract()]), {"contract_months": value}).terms[0]
    assert result.status is status
    assert result.variance == D(variance)
    assert result.variance_ratio == D(variance) / D(11)
    assert result.tier == tier
    assert result.approvers == approvers
    assert result.band == EffectiveBand(low=D(12), high=D(36), walk_away=D(1))


def test_ratio_is_zero_at_the_edge_one_at_the_bottom_line_and_above_one_past_it(
    build: Build, run: Check
) -> None:
    playbook = build([discount()])
    ratios = [
        run(playbook, {"discount_pct": v}).terms[0].variance_ratio for v in ("15", "35", "45")
    ]
    assert ratios == [D(0), D(1), D("1.5")]


def test_chain_lists_each_group_once_in_ladder_order(build: Build, run: Check) -> None:
    term = discount(
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
    playbook = build([discount(walk_away=None)])
    assert run(playbook, {"discount_pct": 35}).terms[0].status is Status.exception
    assert run(playbook, {"discount_pct": "35.5"}).terms[0].status is Status.blocked


def test_without_tiers_anything_past_the_band_is_blocked(build: Build, run: Check) -> None:
    playbook = build([discount(walk_away=None, tiers=[])])
    assert run(playbook, {"discount_pct": 15}).terms[0].status is Status.within
    result = run(playbook, {"discount_pct": 16}).terms[0]
    assert result.status is Status.blocked
    assert result.variance == D(1)
    assert result.variance_ratio >= 1
    assert result.approvers == ()


def test_decimal_values_are_exact(build: Build, run: Check) -> None:
    # 0.1 + 0.2 is exactly 0.3 in Decimal: no float ever gets in between.
    result = run(build([discount()]), {"discount_pct": "15.3"}).terms[0]
    assert result.variance == D("0.3")
    assert result.variance_ratio == D("0.015")
    floats = run(build([discount()]), {"discount_pct": 15.3}).terms[0]
    assert floats.value == D("15.3")
    assert floats.variance == D("0.3")
