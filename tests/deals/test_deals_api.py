"""Deals are upserted by Opportunity Id, checked, and keep their check history."""

from __future__ import annotations

import httpx
import pytest
from tests.conftest import Keys

pytestmark = pytest.mark.usefixtures("demo_published")

OPP = "0065g00000AbCdEAAZ"
DEAL = {
    "name": "Acme renewal",
    "attributes": {
        "region": "EMEA",
        "segment": "enterprise",
        "amount": "250000",
        "currency": "EUR",
    },
    "terms": {"discount_pct": 22, "contract_months": 12},
}


async def test_upsert_creates_then_replaces(client: httpx.AsyncClient, keys: Keys) -> None:
    created = await client.put(f"/v1/deals/{OPP}", json=DEAL, headers=keys.headers("integration"))
    assert created.status_code == 201, created.text
    assert created.json()["attributes"]["amount"] == "250000"
    assert created.json()["status"] == "draft"
    replaced = await client.put(
        f"/v1/deals/{OPP}",
        json={**DEAL, "name": "Acme renewal v2"},
        headers=keys.headers("integration"),
    )
    assert replaced.status_code == 200
    fetched = (await client.get(f"/v1/deals/{OPP}", headers=keys.headers("approver"))).json()
    assert fetched["name"] == "Acme renewal v2"
    assert fetched["terms"] == {"discount_pct": 22, "contract_months": 12}


async def test_stored_checks_build_a_history(client: httpx.AsyncClient, keys: Keys) -> None:
    await client.put(f"/v1/deals/{OPP}", json=DEAL, headers=keys.headers("rep"))
    first = await client.post(f"/v1/deals/{OPP}/checks", headers=keys.headers("rep"))
    assert first.status_code == 201, first.text
    assert first.json()["result"]["verdict"] == "needs_approval"
    assert first.json()["result"]["playbook"]["version"] == 1

    patched = await client.patch(
        f"/v1/deals/{OPP}", json={"terms": {"discount_pct": "12"}}, headers=keys.headers("rep")
    )
    assert patched.json()["terms"] == {"discount_pct": "12", "contract_months": 12}
    second = await client.post(f"/v1/deals/{OPP}/checks", headers=keys.headers("rep"))
    assert second.json()["result"]["verdict"] == "auto_approved"

    history = (await client.get(f"/v1/deals/{OPP}/checks", headers=keys.headers("rep"))).json()
    assert [c["result"]["verdict"] for c in history["items"]] == ["auto_approved", "needs_approval"]
    deal = (await client.get(f"/v1/deals/{OPP}", headers=keys.headers("rep"))).json()
    assert deal["last_check"]["verdict"] == "auto_approved"


async def test_history_pages_with_a_cursor(client: httpx.AsyncClient, keys: Keys) -> None:
    await client.put(f"/v1/deals/{OPP}", json=DEAL, headers=keys.headers("rep"))
    for _ in range(3):
        await client.post(f"/v1/deals/{OPP}/checks", headers=keys.headers("rep"))
    page = (await client.get(f"/v1/deals/{OPP}/checks?limit=2", headers=keys.headers("rep"))).json()
    assert len(page["items"]) == 2
    rest = (
        await client.get(
            f"/v1/deals/{OPP}/checks?limit=2&cursor={page['next_cursor']}",
            headers=keys.headers("rep"),
        )
    ).json()
    assert len(rest["items"]) == 1
    ids = [c["id"] for c in page["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True)
    forged = await client.get(f"/v1/deals/{OPP}/checks?cursor=%%%", headers=keys.headers("rep"))
    assert forged.status_code == 422


async def test_a_stored_check_with_an_unknown_term_is_refused_and_not_stored(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    await client.put(
        f"/v1/deals/{OPP}", json={**DEAL, "terms": {"mystery_term": 3}}, headers=keys.headers("rep")
    )
    response = await client.post(f"/v1/deals/{OPP}/checks", headers=keys.headers("rep"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "terms.mystery_term"
    history = (await client.get(f"/v1/deals/{OPP}/checks", headers=keys.headers("rep"))).json()
    assert history["items"] == []


async def test_unknown_deal_and_bad_id(client: httpx.AsyncClient, keys: Keys) -> None:
    assert (
        await client.get("/v1/deals/0065g00000XXXXXAAA", headers=keys.headers("rep"))
    ).status_code == 404
    bad = await client.put("/v1/deals/not-an-sf-id", json=DEAL, headers=keys.headers("rep"))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "path.external_id"


async def test_deal_changes_are_audited(client: httpx.AsyncClient, keys: Keys) -> None:
    await client.put(f"/v1/deals/{OPP}", json=DEAL, headers=keys.headers("integration"))
    await client.patch(
        f"/v1/deals/{OPP}", json={"terms": {"discount_pct": 10}}, headers=keys.headers("rep")
    )
    await client.post(f"/v1/deals/{OPP}/checks", headers=keys.headers("rep"))
    entries = (
        await client.get(
            f"/v1/audit?entity_type=deal&entity_id={OPP}", headers=keys.headers("admin")
        )
    ).json()["items"]
    assert [e["action"] for e in reversed(entries)] == [
        "deal.created",
        "deal.updated",
        "deal.checked",
    ]
    update = entries[1]
    assert update["before"]["terms"]["discount_pct"] == 22
    assert update["after"]["terms"]["discount_pct"] == 10


async def test_a_check_shows_the_same_variance_score_everywhere(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    # 22 % of a band ending at 15, walk-away 35: a score with a long decimal expansion.
    body = {**DEAL, "terms": {"discount_pct": "22.3", "contract_months": 12}}
    await client.put(f"/v1/deals/{OPP}", json=body, headers=keys.headers("integration"))
    check = await client.post(f"/v1/deals/{OPP}/checks", headers=keys.headers("rep"))
    assert check.status_code == 201, check.text
    score = check.json()["result"]["variance_score"]
    assert len(score.split(".")[1]) == 6  # the ratio rule: 6 places, half to even
    deal = (await client.get(f"/v1/deals/{OPP}", headers=keys.headers("rep"))).json()
    assert deal["last_check"]["variance_score"] == score
    history = (await client.get(f"/v1/deals/{OPP}/checks", headers=keys.headers("rep"))).json()
    assert history["items"][0]["result"]["variance_score"] == score
