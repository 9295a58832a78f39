"""Reps check proposed terms and see verdict, variance, approvers and trades."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.conftest import Keys

from governance.deals.schemas import CheckResponse

pytestmark = pytest.mark.usefixtures("demo_published")

EXAMPLE = {
    "attributes": {
        "region": "EMEA",
        "segment": "enterprise",
        "amount": "120000",
        "currency": "EUR",
        "value_position": "parity",
    },
    "terms": {"discount_pct": "18", "contract_months": 24, "support_level": "premium"},
}


async def check(
    client: httpx.AsyncClient, keys: Keys, body: dict[str, Any], who: str = "rep"
) -> httpx.Response:
    return await client.post("/v1/checks", json=body, headers=keys.headers(who))


def term(body: dict[str, Any], key: str) -> dict[str, Any]:
    return next(t for t in body["terms"] if t["key"] == key)


async def test_example_check_names_exception_approver_and_trades(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    response = await check(client, keys, EXAMPLE)
    assert response.status_code == 200, response.text
    body = response.json()
    CheckResponse.model_validate(body)  # the fast serializer matches the published schema
    assert body["playbook"] == {"key": "standard", "version": 1, "name": "Standard B2B SaaS terms"}
    assert body["verdict"] == "needs_approval"
    discount = term(body, "discount_pct")
    assert discount == {
        "key": "discount_pct",
        "label": "Discount off list price",
        "kind": "number",
        "unit": "%",
        "owner": "finance",
        "priority": 1,
        "value": "18",
        "status": "exception",
        "variance": "3",
        "variance_ratio": "0.15",
        "tier": 1,
        "approvers": ["sales_director"],
        "band": {"low": "0", "high": "15", "walk_away": "35"},
        "rules": [],
        "tiers": [
            {"limit": "25", "approver": "sales_director"},
            {"limit": "35", "approver": "finance"},
        ],
    }
    assert term(body, "contract_months")["status"] == "within"
    assert term(body, "support_level")["status"] == "within"
    assert term(body, "payment_terms_days")["status"] == "missing"
    assert term(body, "payment_terms_days")["band"]["high"] == "60"  # 45 + 15 for 24 months
    assert body["steps"] == [{"group": "sales_director", "step": 1, "terms": ["discount_pct"]}]
    assert body["rules_fired"] == ["multi_year_relaxes_payment_terms"]
    # weight 1/priority over stated terms: 0.15·1 / (1 + 1/5 + 1/6)
    assert body["variance_score"] == "0.109756"
    trades = [(t["rule"], t["band_edge_after"], t["resolves"]) for t in body["trades"]]
    assert trades == [
        ("multi_year_widens_discount", "20", True),
        ("prepay_widens_discount", "18", True),
    ]
    assert body["trades"][0]["asks"] == [{"term": "contract_months", "op": ">=", "value": "36"}]


async def test_terms_are_listed_by_priority(client: httpx.AsyncClient, keys: Keys) -> None:
    body = (await check(client, keys, EXAMPLE)).json()
    priorities = [t["priority"] for t in body["terms"]]
    assert priorities == sorted(priorities)
    assert len(priorities) == 12


async def test_within_band_deal_is_auto_approved(client: httpx.AsyncClient, keys: Keys) -> None:
    body = (
        await check(
            client,
            keys,
            {
                "terms": {
                    "discount_pct": 10,
                    "uncapped_liability": False,
                    "billing_frequency": "semi_annual",
                }
            },
        )
    ).json()
    assert body["verdict"] == "auto_approved"
    assert body["variance_score"] == "0"
    assert body["steps"] == []


async def test_beyond_walk_away_is_blocked(client: httpx.AsyncClient, keys: Keys) -> None:
    body = (await check(client, keys, {"terms": {"discount_pct": "40", "free_months": 1}})).json()
    assert body["verdict"] == "blocked"
    discount = term(body, "discount_pct")
    assert discount["status"] == "blocked"
    assert discount["approvers"] == []
    assert discount["variance_ratio"] == "1.25"


async def test_value_position_changes_the_band(client: httpx.AsyncClient, keys: Keys) -> None:
    strong = {"attributes": {"value_position": "strong"}, "terms": {"discount_pct": 12}}
    body = (await check(client, keys, strong)).json()
    discount = term(body, "discount_pct")
    assert discount["status"] == "exception"
    assert discount["band"]["high"] == "10"
    assert discount["rules"] == ["strong_position_tightens"]
    # The tiers move with the band edge, so the bar's zones match what the check measured.
    assert discount["tiers"] == [
        {"limit": "20", "approver": "sales_director"},
        {"limit": "30", "approver": "finance"},
    ]
    assert discount["band"]["walk_away"] == "30"
    weak = {"attributes": {"value_position": "weak"}, "terms": {"discount_pct": 18}}
    assert term((await check(client, keys, weak)).json(), "discount_pct")["status"] == "within"


async def test_large_deal_routes_top_discount_tier_to_cfo(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    body = (
        await check(
            client, keys, {"attributes": {"amount": "2500000"}, "terms": {"discount_pct": 30}}
        )
    ).json()
    assert term(body, "discount_pct")["approvers"] == ["sales_director", "cfo"]
    # The ladder the rep sees names the group the rule put on the top tier.
    assert term(body, "discount_pct")["tiers"] == [
        {"limit": "25", "approver": "sales_director"},
        {"limit": "35", "approver": "cfo"},
    ]
    assert body["steps"] == [
        {"group": "sales_director", "step": 1, "terms": ["discount_pct"]},
        {"group": "cfo", "step": 2, "terms": ["discount_pct"]},
    ]


@pytest.mark.parametrize(
    ("terms", "field", "fragment"),
    [
        ({"discount_pctt": 5}, "terms.discount_pctt", "unknown term"),
        ({"discount_pct": "eighteen"}, "terms.discount_pct", "not a finite number"),
        ({"support_level": "diamond"}, "terms.support_level", "not an option"),
        ({"uncapped_liability": "maybe"}, "terms.uncapped_liability", "true or false"),
        ({"discount_pct": "1e30"}, "terms.discount_pct", "out of range"),
    ],
)
async def test_bad_terms_are_422_naming_the_term(
    client: httpx.AsyncClient, keys: Keys, terms: dict[str, Any], field: str, fragment: str
) -> None:
    response = await check(client, keys, {"terms": terms})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert any(e["field"] == field and fragment in e["message"] for e in errors), errors


async def test_malformed_request_is_422_naming_the_field(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    response = await check(client, keys, {"attributes": {"amount": "-5"}, "terms": {}})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "attributes.amount"
    response = await check(client, keys, {"attributes": {"currency": "euro"}})
    assert response.json()["errors"][0]["field"] == "attributes.currency"


async def test_unknown_playbook_is_422(client: httpx.AsyncClient, keys: Keys) -> None:
    response = await check(client, keys, {"playbook": "nope", "terms": {}})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "playbook"


async def test_most_specific_scope_wins_and_publish_takes_effect_at_once(
    client: httpx.AsyncClient, keys: Keys, demo_yaml: str
) -> None:
    narrow = (
        demo_yaml.replace("key: standard", "key: enterprise-emea", 1)
        .replace("scope: {}", "scope: {region: EMEA, segment: enterprise}", 1)
        .replace("band: {low: 0, high: 15}", "band: {low: 0, high: 20}", 1)
    )
    response = await client.post(
        "/v1/playbooks/import?publish=true",
        content=narrow,
        headers={**keys.headers("admin"), "Content-Type": "application/yaml"},
    )
    assert response.status_code == 201, response.text
    body = (await check(client, keys, EXAMPLE)).json()
    assert body["playbook"]["key"] == "enterprise-emea"
    assert body["verdict"] == "auto_approved"  # 18 is inside the wider EMEA band
    elsewhere = {**EXAMPLE, "attributes": {**EXAMPLE["attributes"], "region": "AMER"}}
    assert (await check(client, keys, elsewhere)).json()["playbook"]["key"] == "standard"
    pinned = {**EXAMPLE, "playbook": "standard"}
    assert (await check(client, keys, pinned)).json()["playbook"]["key"] == "standard"


async def test_every_term_carries_its_escalation_ladder(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    """Each term names its tiers' reach and approvers, so a client can draw each as a zone."""
    body = (await check(client, keys, EXAMPLE)).json()
    CheckResponse.model_validate(body)
    # Relaxed by the multi-year rule that fired: band edge 45 + 15, tiers 60 + 15 and 90 + 15.
    payment = term(body, "payment_terms_days")
    assert payment["band"] == {"low": "0", "high": "60", "walk_away": "105"}
    assert payment["tiers"] == [
        {"limit": "75", "approver": "finance"},
        {"limit": "105", "approver": "cfo"},
    ]
    # Higher is better: the limits run downwards, in the term's own unit.
    assert term(body, "contract_months")["tiers"] == [
        {"limit": "6", "approver": "sales_director"},
        {"limit": "1", "approver": "cfo"},
    ]
    assert [t["limit"] for t in term(body, "price_increase_cap_pct")["tiers"]] == ["3", "0"]
    assert term(body, "support_level")["tiers"] == [
        {"options": ["platinum"], "approver": "product"}
    ]
    assert term(body, "uncapped_liability")["tiers"] == [
        {"approver": "legal"},
        {"approver": "general_counsel"},
    ]
