"""The market the sample history's deals come from: segments, amounts, cycle lengths, win
rates, and the terms a rep of each negotiation style tends to agree. Pure apart from the random
draws."""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from governance.demo.people import STYLE_MODELS, Rep
from governance.engine.results import CheckResult, TermValue, Verdict

LOSS_REASONS = (
    "price", "competitor", "no_decision", "budget", "timing", "contract_terms", "product_fit",
)  # fmt: skip
LOSS_WEIGHTS = (0.28, 0.24, 0.16, 0.12, 0.08, 0.07, 0.05)
PRODUCT_LINES = ("platform", "analytics", "security")
COMPANY = (
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent",
    "Tyrell", "Cyberdyne", "Aperture", "Wonka", "Gringotts", "Oceanic", "Massive", "Nakatomi",
    "Monarch", "Virtucon", "Pied Piper",
)  # fmt: skip
SUFFIX = {
    "DE": "GmbH", "AT": "GmbH", "CH": "AG", "FR": "SA", "BE": "NV", "LU": "SARL", "GB": "Ltd",
    "IE": "Ltd", "US": "Inc", "CA": "Inc", "AU": "Pty Ltd", "SG": "Pte Ltd", "JP": "KK",
    "IN": "Pvt Ltd", "BR": "Ltda", "MX": "SA de CV", "CO": "SAS",
}  # fmt: skip

SEGMENTS = ("smb", "mid_market", "enterprise")
SEGMENT_WEIGHTS = (0.50, 0.35, 0.15)
# Median annual amount and log-normal sigma per segment.
AMOUNT = {"smb": (18_000.0, 0.55), "mid_market": (90_000.0, 0.5), "enterprise": (420_000.0, 0.65)}
CYCLE_DAYS = {"smb": 21.0, "mid_market": 45.0, "enterprise": 85.0}
BASE_DISCOUNT = {"smb": 4.0, "mid_market": 7.0, "enterprise": 10.0}
WIN_BASE = {"smb": 0.58, "mid_market": 0.50, "enterprise": 0.42}
STATED: dict[str, tuple[str, ...]] = {
    "smb": (
        "discount_pct", "contract_months", "billing_frequency", "payment_terms_days",
        "support_level", "price_increase_cap_pct",
    ),
    "mid_market": (
        "discount_pct", "contract_months", "billing_frequency", "payment_terms_days",
        "support_level", "price_increase_cap_pct", "free_months", "sla_uptime_pct",
        "data_residency",
    ),
    "enterprise": (
        "discount_pct", "uncapped_liability", "liability_cap_multiple", "payment_terms_days",
        "contract_months", "support_level", "price_increase_cap_pct", "free_months",
        "termination_for_convenience", "sla_uptime_pct", "data_residency", "billing_frequency",
    ),
}  # fmt: skip


def half(value: float) -> Decimal:
    """To the nearest half point."""
    return Decimal(round(value * 2)) / 2


def weighted(rng: random.Random, options: Sequence[Any], weights: Sequence[float]) -> Any:
    return rng.choices(options, weights)[0]


def draw_terms(
    rng: random.Random,
    rep: Rep,
    segment: str,
    position: str | None,
    v2_era: bool,
) -> dict[str, TermValue]:
    """The terms a deal closes its negotiation on: how far the rep concedes follows their style,
    the customer's value position and the team's habits; only the segment's terms are stated."""
    style = STYLE_MODELS[rep.style]
    p = rng.gauss(style.propensity, style.spread)
    p += {"weak": 0.12, "strong": -0.12}.get(position or "", 0.0)
    p = min(max(p, 0.0), 1.0)
    enterprise = segment == "enterprise"
    out: dict[str, TermValue] = {}
    multi_year = rng.random() < style.multi_year + (0.15 if enterprise else 0.0)
    months = 36 if multi_year else weighted(rng, (12, 24, 6), (0.72, 0.25, 0.03))
    out["contract_months"] = Decimal(months)
    prepay = rng.random() < style.prepay + 0.2 - (0.15 if segment == "smb" else 0.0)
    out["billing_frequency"] = (
        "annual_upfront"
        if prepay
        else weighted(rng, ("semi_annual", "quarterly", "monthly"), (0.70, 0.20, 0.10 + 0.1 * p))
    )
    discount = BASE_DISCOUNT[segment] + 14.0 * p + rep.team.discount_bias
    discount += 3.0 if multi_year else 0.0  # the rule allows it, and reps use it
    discount -= 1.5 if v2_era else 0.0  # the tighter band nudged reps down
    discount += rng.gauss(0.0, 3.0 + 3.0 * style.spread)
    if rng.random() < 0.012:  # the odd deal pushed past every bottom line
        discount = rng.uniform(42.0, 55.0)
    out["discount_pct"] = max(half(discount), Decimal(0))
    out["payment_terms_days"] = Decimal(
        weighted(rng, (30, 45, 60, 90), (0.70 - 0.2 * p, 0.22, 0.05 + 0.12 * p, 0.01 + 0.03 * p))
    )
    out["support_level"] = weighted(
        rng,
        ("standard", "premium", "platinum"),
        (0.62, 0.33, 0.03 + (0.08 if enterprise else 0.0)),
    )
    out["price_increase_cap_pct"] = Decimal(
        weighted(rng, (7, 5, 3, 0), (0.66 - 0.1 * p, 0.24, 0.05 + 0.08 * p, 0.01 + 0.02 * p))
    )
    free = 0
    if rng.random() < style.free_months * (0.5 + p):
        free = weighted(rng, (1, 2, 3), (0.70, 0.22, 0.08))
    out["free_months"] = Decimal(free)
    out["sla_uptime_pct"] = Decimal(
        weighted(
            rng,
            ("99.5", "99.9", "99.95", "99.99"),
            (0.55, 0.33, 0.10 if enterprise else 0.03, 0.02 if enterprise else 0.005),
        )
    )
    emea = rep.team.region == "EMEA"
    out["data_residency"] = weighted(
        rng,
        ("none", "eu_or_us", "customer_region", "on_premises"),
        (0.25 if emea else 0.75, 0.60 if emea else 0.20, 0.12 if emea else 0.045, 0.004),
    )
    out["uncapped_liability"] = rng.random() < (0.05 if enterprise else 0.01)
    out["liability_cap_multiple"] = Decimal(
        weighted(rng, ("1", "1.5", "2", "3"), (0.70, 0.15, 0.12, 0.03))
    )
    out["termination_for_convenience"] = rng.random() < 0.04
    return {k: out[k] for k in STATED[segment]}


def win_probability(segment: str, position: str | None, result: CheckResult, status: str) -> float:
    """Falls with the variance score: deals that need big concessions are weak deals."""
    if result.verdict is Verdict.blocked:
        return 0.0  # no one could approve it; it was never signed as it stood
    p = WIN_BASE[segment] - 0.45 * float(min(result.variance_score, Decimal(1)))
    p += {"strong": 0.12, "weak": -0.10}.get(position or "", 0.0)
    if status == "rejected":
        p = 0.12
    elif status == "countered":
        p -= 0.08
    return min(max(p, 0.02), 0.95)
