"""Closing a deal records its outcome with per-term figures, through the API and the sync."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from tests.conftest import Keys
from tests.driver import invalid_fields, put_deal

pytestmark = pytest.mark.usefixtures("demo_published")

OPP = "0065g00000AbCdEAAZ"
DEAL = {
    "name": "Acme",
    "attributes": {"region": "EMEA", "segment": "enterprise", "amount": "100000"},
    "terms": {
        "discount_pct": 20,
        "contract_months": 36,
        "billing_frequency": "annual_upfront",
        "payment_terms_days": 60,
        "free_months": 1,
        "uncapped_liability": True,
        "support_level": "platinum",
    },
}


async def _deal(
    client: httpx.AsyncClient, keys: Keys, body: dict[str, Any] = DEAL
) -> dict[str, Any]:
    """The deal, stored and checked: the check's result."""
    await put_deal(client, keys, OPP, body)
    check = await client.post(f"/v1/deals/{OPP}/checks", headers=keys.headers("rep"))
    assert check.status_code == 201, check.text
    result: dict[str, Any] = check.json()["result"]
    return result


async def _close(client: httpx.AsyncClient, keys: Keys, body: dict[str, Any]) -> httpx.Response:
    return await client.post(f"/v1/deals/{OPP}/outcome", json=body, headers=keys.headers("rep"))


async def test_a_won_deal_records_what_each_term_conceded_and_cost(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    await _deal(client, keys)
    assert (
        await client.get(f"/v1/deals/{OPP}/outcome", headers=keys.headers("rep"))
    ).status_code == 404
    created = await _close(
        client,
        keys,
        {
            "won": True,
            "close_date": "2026-11-30",
            "trades": [
                {"gave": "free_months", "got": ["public case study"], "note": "logo on the site"}
            ],
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["won"], body["close_date"], body["source"], body["loss_reason"]) == (
        True,
        "2026-11-30",
        "api",
        None,
    )
    assert body["playbook"] == {"key": "standard", "version": 1}
    # Money by the money rule: 2 places.
    assert (body["verdict"], body["amount"]) == ("needs_approval", "100000.00")
    assert body["final_terms"] == DEAL["terms"]
    terms = {t["key"]: t for t in body["terms"]}
    assert list(terms) == [
        "discount_pct",
        "uncapped_liability",
        "payment_terms_days",
        "contract_months",
        "support_level",
        "free_months",
        "billing_frequency",
    ]
    discount = terms["discount_pct"]
    # 0 → 20 of the 0..43 range (the walk-away of 35 as the check shifted it for 36 months and
    # annual prepayment); 20 % of 100,000 off list.
    assert (discount["opening"], discount["target"], discount["walk_away"], discount["final"]) == (
        "0",
        "8",
        "43",
        "20",
    )
    assert (discount["conceded"], discount["conceded_share"], discount["held"]) == (
        "20",
        "0.465116",
        False,
    )
    assert Decimal(discount["cost"]) == Decimal(20000)
    # Within its band thanks to 36 months and annual prepayment: traded for them.
    assert (discount["status"], discount["traded"]) == ("within", True)
    assert discount["gets"] == ["contract_months", "billing_frequency"]

    payment = terms["payment_terms_days"]
    assert (payment["conceded"], payment["conceded_share"], payment["held"]) == ("30", "0.4", False)
    assert payment["cost"] == "410.96"  # 30 / 365 × 5 % × 100,000, to the cent
    assert payment["gets"] == ["contract_months"]

    free = terms["free_months"]
    assert (free["status"], free["conceded"], free["conceded_share"]) == (
        "exception",
        "1",
        "0.333333",
    )
    assert free["cost"] == "8333.33"
    assert (free["traded"], free["gets"]) == (True, ["public case study"])

    liability = terms["uncapped_liability"]
    assert (liability["opening"], liability["final"], liability["walk_away"]) == (False, True, True)
    assert (liability["conceded"], liability["conceded_share"], liability["held"]) == (
        "1",
        "1",
        False,
    )
    # Given with nothing in return.
    assert (liability["traded"], liability["gets"], liability["cost"]) == (False, [], None)

    support = terms["support_level"]
    assert (support["conceded"], support["conceded_share"], support["walk_away"]) == (
        "2",
        "1",
        "platinum",
    )
    months = terms["contract_months"]
    assert (months["conceded"], months["conceded_share"], months["held"]) == ("0", "0", True)

    assert body["cost"] == "28744.29"  # the exact sum, to the cent
    assert body["trades"] == [
        {
            "gave": "free_months",
            "got": ["public case study"],
            "note": "logo on the site",
            "inferred": False,
        },
        {
            "gave": "discount_pct",
            "got": ["contract_months", "billing_frequency"],
            "note": None,
            "inferred": True,
        },
        {"gave": "payment_terms_days", "got": ["contract_months"], "note": None, "inferred": True},
    ]

    fetched = await client.get(f"/v1/deals/{OPP}/outcome", headers=keys.headers("approver"))
    assert fetched.status_code == 200
    assert fetched.json() == body
    audit = await client.get("/v1/audit", params={"entity_id": OPP}, headers=keys.headers("admin"))
    assert "deal.closed" in [e["action"] for e in audit.json()["items"]]
    # Closing leaves the deal's approval status alone.
    deal = await client.get(f"/v1/deals/{OPP}", headers=keys.headers("rep"))
    assert deal.json()["status"] == "draft"


async def test_recording_again_replaces_the_outcome(client: httpx.AsyncClient, keys: Keys) -> None:
    await _deal(client, keys)
    assert (await _close(client, keys, {"won": True})).status_code == 201
    replaced = await _close(
        client,
        keys,
        {
            "won": False,
            "loss_reason": "went with a competitor",
            "final_terms": {"discount_pct": "10", "contract_months": 24},
        },
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert (body["won"], body["loss_reason"]) == (False, "went with a competitor")
    assert body["final_terms"] == {"discount_pct": "10", "contract_months": 24}
    # Only the final terms stated now: the earlier rows are gone.
    terms = {t["key"]: t for t in body["terms"]}
    assert list(terms) == ["discount_pct", "contract_months"]
    assert Decimal(terms["discount_pct"]["cost"]) == Decimal(10000)
    assert terms["discount_pct"]["held"] is False
    # 36 → 24 months of a 36..1 range; no inferred trade: 24 months fires no discount rule.
    assert (terms["contract_months"]["conceded"], terms["contract_months"]["held"]) == ("12", False)
    assert terms["discount_pct"]["gets"] == []
    assert body["trades"] == []
    assert Decimal(body["cost"]) == Decimal(10000)
    assert body["close_date"] is not None  # today, by default


async def test_refusals_name_the_field(client: httpx.AsyncClient, keys: Keys) -> None:
    await _deal(client, keys)
    assert invalid_fields(await _close(client, keys, {"won": False})) == ["loss_reason"]
    assert invalid_fields(await _close(client, keys, {"won": True, "loss_reason": "x"})) == [
        "loss_reason"
    ]
    assert invalid_fields(await _close(client, keys, {"won": "yes"})) == ["won"]
    assert invalid_fields(await _close(client, keys, {})) == ["won"]
    unknown = await _close(client, keys, {"won": True, "final_terms": {"bogus": 1}})
    assert invalid_fields(unknown) == ["final_terms.bogus"]
    wrong = await _close(client, keys, {"won": True, "final_terms": {"support_level": "gold"}})
    assert invalid_fields(wrong) == ["final_terms.support_level"]
    trades = await _close(
        client,
        keys,
        {
            "won": True,
            "trades": [
                {"gave": "contract_months", "got": ["discount_pct"]},  # held: nothing given
                {"gave": "free_months", "got": ["a pony", "contract_months"]},
                {"gave": "sla_uptime_pct", "got": ["contract_months"]},  # not stated
            ],
        },
    )
    assert invalid_fields(trades) == ["trades[0].gave", "trades[1].got[0]", "trades[2].gave"]
    missing = await client.post(
        "/v1/deals/0065g00000ZzZzZAAZ/outcome", json={"won": True}, headers=keys.headers("rep")
    )
    assert missing.status_code == 404
    # Nothing was recorded by the refusals.
    assert (
        await client.get(f"/v1/deals/{OPP}/outcome", headers=keys.headers("rep"))
    ).status_code == 404


async def test_final_terms_are_measured_against_the_checked_version(
    client: httpx.AsyncClient, keys: Keys, demo_yaml: str
) -> None:
    checked = await _deal(client, keys)
    # A second version with a different discount range goes live after the deal was checked.
    newer = demo_yaml.replace("walk_away: 35", "walk_away: 40").replace(
        "{limit: 35, approver: finance}", "{limit: 40, approver: finance}"
    )
    imported = await client.post(
        "/v1/playbooks/import?publish=true",
        content=newer,
        headers={**keys.headers("admin"), "Content-Type": "application/yaml"},
    )
    assert imported.status_code == 201, imported.text
    assert (imported.json()["version"], imported.json()["status"]) == (2, "published")
    body = (await _close(client, keys, {"won": True})).json()
    assert body["playbook"] == {"key": "standard", "version": 1}
    discount = next(t for t in body["terms"] if t["key"] == "discount_pct")
    # Version 1's 35, shifted as the check shifted it (version 2 would say 48): the outcome
    # judges the term against the check's own effective bottom line.
    in_check = next(t for t in checked["terms"] if t["key"] == "discount_pct")
    assert (in_check["band"]["walk_away"], in_check["rules"]) != ("35", [])
    assert discount["walk_away"] == in_check["band"]["walk_away"] == "43"
    assert body["variance_score"] == checked["variance_score"]
