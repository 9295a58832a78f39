"""The org-wide term catalog: a term's owner signs off its definition in every playbook."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.conftest import Keys

from governance.auth.schemas import Role

pytestmark = pytest.mark.usefixtures("demo_published")

EMEA_DEAL = {
    "attributes": {"region": "EMEA", "segment": "enterprise", "amount": "120000"},
    "terms": {"discount_pct": "34"},
}


def emea_doc(owner: str = "legal", high: int = 100, **extra: Any) -> dict[str, Any]:
    """A narrower playbook redefining the discount: 0–100 within band."""
    return {
        "key": "emea",
        "name": "EMEA deals",
        "scope": {"region": "EMEA"},
        "terms": [
            {
                "key": "discount_pct",
                "label": "Discount off list price",
                "kind": "number",
                "unit": "%",
                "direction": "lower_is_better",
                "owner": owner,
                "priority": 1,
                "band": {"low": 0, "high": high},
                **extra,
            }
        ],
    }


async def create(client: httpx.AsyncClient, keys: Keys, doc: dict[str, Any]) -> httpx.Response:
    response = await client.post("/v1/playbooks", json=doc, headers=keys.headers("leadership"))
    assert response.status_code == 201, response.text
    return response


async def sign(
    client: httpx.AsyncClient, keys: Keys, key: str, number: int, group: str
) -> httpx.Response:
    return await client.post(
        f"/v1/playbooks/{key}/versions/{number}/signoffs",
        json={"group": group},
        headers=keys.headers(f"approver_{group}"),
    )


async def publish(client: httpx.AsyncClient, keys: Keys, key: str, number: int) -> httpx.Response:
    return await client.post(
        f"/v1/playbooks/{key}/versions/{number}/publish", headers=keys.headers("leadership")
    )


async def verdict(client: httpx.AsyncClient, keys: Keys) -> str:
    checked = await client.post("/v1/checks", json=EMEA_DEAL, headers=keys.headers("rep"))
    assert checked.status_code == 200, checked.text
    result: str = checked.json()["verdict"]
    return result


async def catalog_owner(client: httpx.AsyncClient, keys: Keys, term: str) -> str:
    response = await client.get(f"/v1/terms/{term}", headers=keys.headers("leadership"))
    assert response.status_code == 200, response.text
    owner: str = response.json()["owner"]
    return owner


async def test_a_narrower_playbook_cannot_take_a_term_from_its_owner(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    assert await verdict(client, keys) == "needs_approval"
    draft = (await create(client, keys, emea_doc(owner="legal"))).json()
    assert draft["required_signoffs"] == ["finance", "legal"]
    assert draft["term_signoffs"] == [
        {
            "term": "discount_pct",
            "reason": "owner_change",
            "groups": ["finance", "legal"],
            "missing": ["finance", "legal"],
        }
    ]
    assert (await sign(client, keys, "emea", 1, "legal")).status_code == 201

    refused = await publish(client, keys, "emea", 1)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert "sign-off missing from finance" in body["detail"]
    (problem,) = body["errors"]
    assert problem["field"] == "terms.discount_pct"
    assert "finance" in problem["message"]
    # Nothing changed: the discount is still finance's, and EMEA deals are still checked by it.
    assert await catalog_owner(client, keys, "discount_pct") == "finance"
    assert await verdict(client, keys) == "needs_approval"


async def test_a_narrower_playbook_needs_the_catalog_owner_even_naming_it_as_owner(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    draft = (await create(client, keys, emea_doc(owner="finance"))).json()
    assert [(t["term"], t["reason"], t["groups"]) for t in draft["term_signoffs"]] == [
        ("discount_pct", "defined", ["finance"])
    ]
    # Only the owner may sign: legal owns nothing this draft defines.
    assert (await sign(client, keys, "emea", 1, "legal")).status_code == 409
    assert (await publish(client, keys, "emea", 1)).status_code == 409
    assert (await sign(client, keys, "emea", 1, "finance")).status_code == 201
    published = await publish(client, keys, "emea", 1)
    assert published.status_code == 200, published.text
    assert await verdict(client, keys) == "auto_approved"  # finance agreed to it


async def test_an_owner_change_needs_the_current_owner_and_moves_the_term_everywhere(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    await create(client, keys, emea_doc(owner="legal", high=15))
    for group in ("legal", "finance"):
        assert (await sign(client, keys, "emea", 1, group)).status_code == 201
    published = await publish(client, keys, "emea", 1)
    assert published.status_code == 200, published.text
    assert await catalog_owner(client, keys, "discount_pct") == "legal"
    audit = await client.get(
        "/v1/audit",
        params={"action": "term.owner_changed", "entity_id": "discount_pct"},
        headers=keys.headers("admin"),
    )
    (entry,) = audit.json()["items"]
    assert (entry["before"]["owner"], entry["after"]["owner"]) == ("finance", "legal")
    assert entry["after"]["source"] == "emea/1"

    # The standard playbook still says finance: its next publication must settle that with
    # legal, the owner now, even though its own discount did not change.
    copy = await client.post(
        "/v1/playbooks/standard/versions", json={}, headers=keys.headers("leadership")
    )
    assert copy.status_code == 201, copy.text
    assert [(t["term"], t["reason"], t["groups"]) for t in copy.json()["term_signoffs"]] == [
        ("discount_pct", "owner_change", ["finance", "legal"])
    ]


async def test_a_new_term_enters_the_catalog_with_its_owner_at_publication(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    doc = emea_doc(owner="finance", high=15)
    doc["terms"].append(
        {
            "key": "data_residency_eu",
            "label": "EU data residency",
            "kind": "flag",
            "preferred": False,
            "owner": "security",
            "priority": 2,
            "tiers": [{"approver": "security"}],
        }
    )
    draft = (await create(client, keys, doc)).json()
    assert [(t["term"], t["reason"], t["groups"]) for t in draft["term_signoffs"]] == [
        ("discount_pct", "defined", ["finance"]),
        ("data_residency_eu", "new_term", ["security"]),
    ]
    missing = await client.get("/v1/terms/data_residency_eu", headers=keys.headers("rep"))
    assert missing.status_code == 404
    await sign(client, keys, "emea", 1, "finance")
    refused = await publish(client, keys, "emea", 1)
    assert [e["field"] for e in refused.json()["errors"]] == ["terms.data_residency_eu"]
    await sign(client, keys, "emea", 1, "security")
    assert (await publish(client, keys, "emea", 1)).status_code == 200

    term = await client.get("/v1/terms/data_residency_eu", headers=keys.headers("rep"))
    assert term.status_code == 200, term.text
    assert {k: term.json()[k] for k in ("label", "kind", "owner", "source")} == {
        "label": "EU data residency",
        "kind": "flag",
        "owner": "security",
        "source": "emea/1",
    }


async def test_the_catalog_lists_who_owns_what(client: httpx.AsyncClient, keys: Keys) -> None:
    listed = await client.get("/v1/terms", headers=keys.headers("leadership"))
    assert listed.status_code == 200, listed.text
    owners = {t["key"]: t["owner"] for t in listed.json()["items"]}
    assert len(owners) == 12
    assert owners["discount_pct"] == "finance"
    assert owners["uncapped_liability"] == "legal"
    assert {t["source"] for t in listed.json()["items"]} == {"standard/1"}
    legal = await client.get("/v1/terms", params={"owner": "legal"}, headers=keys.headers("admin"))
    assert {t["key"] for t in legal.json()["items"]} == {
        k for k, owner in owners.items() if owner == "legal"
    }
    assert (await client.get("/v1/terms", headers=keys.headers("rep"))).status_code == 200
    for method in ("POST", "PUT", "DELETE"):
        response = await client.request(
            method, "/v1/terms/discount_pct", json={}, headers=keys.headers("admin")
        )
        assert response.status_code == 405


async def test_a_term_keeps_its_catalog_kind(client: httpx.AsyncClient, keys: Keys) -> None:
    doc = emea_doc(owner="finance")
    doc["terms"][0] = {
        "key": "discount_pct",
        "kind": "choice",
        "options": ["none", "some"],
        "band": {"allowed": ["none", "some"]},
        "owner": "finance",
        "priority": 1,
    }
    refused = await client.post("/v1/playbooks", json=doc, headers=keys.headers("leadership"))
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["terms[0].kind"]


async def test_signing_for_a_term_needs_membership_of_its_catalog_owner(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    """An approver of the group the draft names as owner cannot sign for the catalog owner."""
    keys.create("lena", Role.approver, ["legal"])
    await create(client, keys, emea_doc(owner="legal"))
    by_legal = await client.post(
        "/v1/playbooks/emea/versions/1/signoffs",
        json={"group": "finance"},
        headers=keys.headers("lena"),
    )
    assert by_legal.status_code == 403, by_legal.text
