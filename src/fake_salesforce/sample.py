"""Plausible sample opportunities for a demo or a bench."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from fake_salesforce.schema import STAGES

_SAMPLE_ACCOUNTS = (
    ("Acme Corp", "United States", "North America"),
    ("Globex", "Germany", "EMEA"),
    ("Initech", "United States", "North America"),
    ("Umbrella", "United Kingdom", "EMEA"),
    ("Société Générale de Tests", "France", "EMEA"),
    ("Tyrell Corporation", "Japan", "APAC"),
    ("Cyberdyne Systems", "Canada", "North America"),
    ("Hooli", "United States", "North America"),
    ("Soylent", "Brazil", "LATAM"),
    ("Wonka Industries", "Switzerland", "EMEA"),
    ("Stark Industries", "United States", "North America"),
    ("Wayne Enterprises", "Australia", "APAC"),
)


def sample_opportunities(
    count: int, *, seed: int = 0, today: date | None = None
) -> list[dict[str, Any]]:
    """``count`` plausible opportunities for ``add_opportunities`` (deterministic per seed),
    using the default custom fields."""
    rng = random.Random(seed)
    today = today or date.today()
    kinds = ("New Business", "Renewal", "Expansion", "Upsell")
    out: list[dict[str, Any]] = []
    for number in range(1, count + 1):
        account, country, region = rng.choice(_SAMPLE_ACCOUNTS)
        stage = rng.choices(STAGES, weights=(8, 8, 6, 6, 5, 5, 8, 8, 4, 3))[0]
        out.append(
            {
                "Name": f"{account} — {rng.choice(kinds)} {number:05d}",
                "StageName": stage,
                "Amount": float(rng.randrange(5_000, 500_000, 500)),
                "CloseDate": today + timedelta(days=rng.randrange(-30, 180)),
                "CurrencyIsoCode": "USD",
                "Account": {"Name": account, "BillingCountry": country},
                "Region__c": region,
                "Discount__c": float(rng.choice((0, 5, 8, 10, 12, 15, 20, 25, 30, 40))),
                "Payment_Terms_Days__c": float(rng.choice((30, 30, 45, 60, 90))),
                "Contract_Months__c": float(rng.choice((12, 12, 24, 36, 36))),
                "Support_Level__c": rng.choice(("Standard", "Standard", "Premium", "Platinum")),
                "Uncapped_Liability__c": rng.random() < 0.1,
                "Liability_Cap_Multiple__c": rng.choice((1.0, 1.0, 1.0, 1.5, 2.0, 3.0)),
            }
        )
    return out
