"""Leadership edits drafts, owners sign off, and only signed drafts go live."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
import yaml
from tests.conftest import Keys
from tests.driver import discount_term, liability_term

JSON = {"Content-Type": "application/json"}


def small_doc(key: str = "smb", scope: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "key": key,
        "name": "SMB deals",
        "scope": scope if scope is not None else {"segment": "smb"},
        "terms": [
            discount_term(
                walk_away=30,
                band={"low": 0, "high": 10},
                tiers=[
                    {"limit": 20, "approver": "sales_director"},
                    {"limit": 30, "approver": "finance"},
                ],
            ),
            liability_term(tiers=[{"approver": "legal"}]),
        ],
        "rules": [],
    }


async def create(client: httpx.AsyncClient, keys: Keys, doc: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1/playbooks", json=doc, headers=keys.headers("leadership"))


async def sign(
    client: httpx.AsyncClient, keys: Keys, key: str, n: int, group: str
) -> httpx.Response:
    return await client.post(
        f"/v1/playbooks/{key}/versions/{n}/signoffs",
        json={"group": group, "note": "reviewed"},
        headers=keys.headers(f"approver_{group}"),
    )


async def publish(client: httpx.AsyncClient, keys: Keys, key: str, n: int) -> httpx.Response:
    return await client.post(
        f"/v1/playbooks/{key}/versions/{n}/publish", headers=keys.headers("leadership")
    )


async def test_new_playbook_is_a_draft_that_needs_every_owner(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    response = await create(client, keys, small_doc())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "draft"
    assert body["number"] == 1
    assert body["changed_terms"] == ["discount_pct", "uncapped_liability"]
    assert body["required_signoffs"] == ["finance", "legal"]
    assert body["missing_signoffs"] == ["finance", "legal"]
    assert response.headers["ETag"] == body["etag"]


async def test_publish_refused_until_all_owners_sign(client: httpx.AsyncClient, keys: Keys) -> None:
    await create(client, keys, small_doc())
    assert (await sign(client, keys, "smb", 1, "finance")).status_code == 201
    refused = await publish(client, keys, "smb", 1)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert "legal" in refused.json()["detail"]

    assert (await sign(client, keys, "smb", 1, "legal")).status_code == 201
    published = await publish(client, keys, "smb", 1)
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "published"


async def test_only_the_owner_group_or_admin_signs(client: httpx.AsyncClient, keys: Keys) -> None:
    await create(client, keys, small_doc())
    wrong_group = await client.post(
        "/v1/playbooks/smb/versions/1/signoffs",
        json={"group": "legal"},
        headers=keys.headers("approver_finance"),
    )
    assert wrong_group.status_code == 403
    by_admin = await client.post(
        "/v1/playbooks/smb/versions/1/signoffs",
        json={"group": "legal"},
        headers=keys.headers("admin"),
    )
    assert by_admin.status_code == 201
    assert by_admin.json()["signoffs"][0]["admin_override"] is True
    not_an_owner = await sign(client, keys, "smb", 1, "product")
    assert not_an_owner.status_code == 409
    assert "owns no changed term" in not_an_owner.json()["detail"]


async def test_editing_a_draft_invalidates_earlier_signoffs(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    await create(client, keys, small_doc())
    await sign(client, keys, "smb", 1, "finance")
    await sign(client, keys, "smb", 1, "legal")
    doc = small_doc()
    doc["terms"][0]["band"]["high"] = 12
    doc["terms"][0]["description"] = "edited after sign-off"
    edited = await client.put(
        "/v1/playbooks/smb/versions/1", json=doc, headers=keys.headers("leadership")
    )
    assert edited.status_code == 200, edited.text
    assert [s["current"] for s in edited.json()["signoffs"]] == [False, False]
    assert edited.json()["missing_signoffs"] == ["finance", "legal"]
    assert (await publish(client, keys, "smb", 1)).status_code == 409


async def test_second_version_needs_only_changed_owners_and_supersedes(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    await create(client, keys, small_doc())
    await sign(client, keys, "smb", 1, "finance")
    await sign(client, keys, "smb", 1, "legal")
    await publish(client, keys, "smb", 1)

    draft = await client.post(
        "/v1/playbooks/smb/versions", json={}, headers=keys.headers("leadership")
    )
    assert draft.status_code == 201
    assert draft.json()["number"] == 2
    assert draft.json()["required_signoffs"] == []

    term = copy.deepcopy(small_doc()["terms"][0])
    term["band"]["high"] = 12
    changed = await client.put(
        "/v1/playbooks/smb/versions/2/terms/discount_pct",
        json=term,
        headers=keys.headers("leadership"),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["changed_terms"] == ["discount_pct"]
    assert changed.json()["required_signoffs"] == ["finance"]

    await sign(client, keys, "smb", 2, "finance")
    assert (await publish(client, keys, "smb", 2)).status_code == 200
    playbook = (await client.get("/v1/playbooks/smb", headers=keys.headers("rep"))).json()
    assert playbook["published_version"] == 2
    assert [v["status"] for v in playbook["versions"]] == ["superseded", "published"]


async def test_published_versions_are_immutable(client: httpx.AsyncClient, keys: Keys) -> None:
    await create(client, keys, small_doc())
    await sign(client, keys, "smb", 1, "finance")
    await sign(client, keys, "smb", 1, "legal")
    await publish(client, keys, "smb", 1)
    doc = small_doc()
    doc["name"] = "changed"
    response = await client.put(
        "/v1/playbooks/smb/versions/1", json=doc, headers=keys.headers("admin")
    )
    assert response.status_code == 409
    assert "only drafts are edited" in response.json()["detail"]
    deleted = await client.delete(
        "/v1/playbooks/smb/versions/1/terms/discount_pct", headers=keys.headers("admin")
    )
    assert deleted.status_code == 409


async def test_stale_if_match_is_refused(client: httpx.AsyncClient, keys: Keys) -> None:
    created = await create(client, keys, small_doc())
    etag = created.json()["etag"]
    doc = small_doc()
    doc["name"] = "first edit"
    first = await client.put(
        "/v1/playbooks/smb/versions/1",
        json=doc,
        headers={**keys.headers("leadership"), "If-Match": etag},
    )
    assert first.status_code == 200
    doc["name"] = "second edit from a stale read"
    stale = await client.put(
        "/v1/playbooks/smb/versions/1",
        json=doc,
        headers={**keys.headers("leadership"), "If-Match": etag},
    )
    assert stale.status_code == 412
    current = await client.get("/v1/playbooks/smb/versions/1", headers=keys.headers("rep"))
    assert current.json()["document"]["name"] == "first edit"


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (lambda d: d["terms"][0]["band"].update(high=40), "terms[0].walk_away", "inside the band"),
        (
            lambda d: d["terms"][0]["tiers"][0].update(limit=5),
            "terms[0].tiers[0].limit",
            "monotonically",
        ),
        (
            lambda d: d["terms"][0]["tiers"][1].update(limit=28),
            "terms[0].tiers[1].limit",
            "walk_away",
        ),
        (lambda d: d["terms"][1].update(priority=1), "terms[1].priority", "already used"),
        (lambda d: d["terms"][1].update(key="Bad-Key"), "terms[1].key", "pattern"),
        (lambda d: d["terms"][0].update(owner=""), "terms[0].owner", "pattern"),
        (
            lambda d: d["rules"].append(
                {
                    "key": "r",
                    "when": [{"term": "contract_months", "op": ">=", "value": 36}],
                    "then": [{"term": "discount_pct", "shift": 5}],
                }
            ),
            "rules[0].when[0].term",
            "unknown term",
        ),
        (
            lambda d: d["rules"].append(
                {
                    "key": "r",
                    "when": [{"attribute": "segment", "op": "==", "value": "smb"}],
                    "then": [{"term": "uncapped_liability", "shift": 5}],
                }
            ),
            "rules[0].then[0].shift",
            "only number terms",
        ),
    ],
)
async def test_bad_documents_name_the_exact_field(
    client: httpx.AsyncClient, keys: Keys, mutate: Any, field: str, fragment: str
) -> None:
    doc = small_doc()
    mutate(doc)
    response = await create(client, keys, doc)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert any(e["field"] == field and fragment in e["message"] for e in errors), errors
    listing = await client.get("/v1/playbooks", headers=keys.headers("rep"))
    assert listing.json()["items"] == []  # nothing half-written


async def test_equally_specific_scopes_cannot_both_be_published(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    await create(client, keys, small_doc("by-segment", {"segment": "smb"}))
    await create(client, keys, small_doc("by-region", {"region": "EMEA"}))
    await create(client, keys, small_doc("narrow", {"region": "EMEA", "segment": "smb"}))
    for key in ("by-segment", "by-region", "narrow"):
        await sign(client, keys, key, 1, "finance")
        await sign(client, keys, key, 1, "legal")
    assert (await publish(client, keys, "by-segment", 1)).status_code == 200
    clash = await publish(client, keys, "by-region", 1)
    assert clash.status_code == 409
    assert "by-segment" in clash.json()["detail"]
    assert (await publish(client, keys, "narrow", 1)).status_code == 200


async def test_yaml_round_trip_import_export(
    client: httpx.AsyncClient, keys: Keys, demo_yaml: str
) -> None:
    imported = await client.post(
        "/v1/playbooks/import",
        content=demo_yaml,
        headers={**keys.headers("leadership"), "Content-Type": "application/yaml"},
    )
    assert imported.status_code == 201, imported.text
    assert imported.json() == {
        "key": "standard",
        "version": 1,
        "status": "draft",
        "outcome": "created",
    }
    exported = await client.get(
        "/v1/playbooks/standard/export",
        headers={**keys.headers("rep"), "Accept": "application/yaml"},
    )
    assert exported.headers["content-type"].startswith("application/yaml")
    original = yaml.safe_load(demo_yaml)
    again = yaml.safe_load(exported.text)
    assert again["terms"][0]["band"] == original["terms"][0]["band"]
    assert again["rules"][0]["when"] == original["rules"][0]["when"]
    # Importing the export changes nothing.
    reimport = await client.post(
        "/v1/playbooks/import",
        content=exported.text,
        headers={**keys.headers("leadership"), "Content-Type": "application/yaml"},
    )
    assert (reimport.status_code, reimport.json()["outcome"]) == (200, "unchanged")
    as_json = await client.get(
        "/v1/playbooks/standard/export?format=json", headers=keys.headers("rep")
    )
    assert as_json.json()["key"] == "standard"


async def test_import_publish_is_admin_only_and_audited(
    client: httpx.AsyncClient, keys: Keys, demo_yaml: str
) -> None:
    headers = {"Content-Type": "application/yaml"}
    refused = await client.post(
        "/v1/playbooks/import?publish=true",
        content=demo_yaml,
        headers={**keys.headers("leadership"), **headers},
    )
    assert refused.status_code == 403
    done = await client.post(
        "/v1/playbooks/import?publish=true",
        content=demo_yaml,
        headers={**keys.headers("admin"), **headers},
    )
    assert done.json()["status"] == "published"
    audit = (
        await client.get("/v1/audit?action=playbook.signed_off", headers=keys.headers("admin"))
    ).json()
    groups = sorted(e["after"]["group"] for e in audit["items"])
    assert groups == ["finance", "legal", "product", "sales", "security"]
    assert all(e["after"]["admin_override"] for e in audit["items"])


async def test_malformed_yaml_is_a_clear_422(client: httpx.AsyncClient, keys: Keys) -> None:
    response = await client.post(
        "/v1/playbooks/import",
        content="key: [unclosed",
        headers={**keys.headers("leadership"), "Content-Type": "application/yaml"},
    )
    assert response.status_code == 422
    assert "YAML" in response.json()["detail"]


async def test_every_change_is_in_the_audit_log(client: httpx.AsyncClient, keys: Keys) -> None:
    await create(client, keys, small_doc())
    await sign(client, keys, "smb", 1, "finance")
    await sign(client, keys, "smb", 1, "legal")
    await publish(client, keys, "smb", 1)
    entries = (
        await client.get(
            "/v1/audit?entity_type=playbook_version", headers=keys.headers("leadership")
        )
    ).json()
    actions = [e["action"] for e in reversed(entries["items"])]
    assert actions == [
        "playbook.version_created",
        "playbook.signed_off",
        "playbook.signed_off",
        "playbook.published",
    ]
    assert entries["items"][0]["actor"].endswith(":leadership")
