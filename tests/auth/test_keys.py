"""API keys an admin manages: the last admin key stays."""

from __future__ import annotations

import httpx
from tests.conftest import Keys


async def key_ids(client: httpx.AsyncClient, keys: Keys, role: str) -> list[int]:
    listed = await client.get("/v1/api-keys", headers=keys.headers("admin"))
    assert listed.status_code == 200, listed.text
    return [
        k["id"] for k in listed.json()["items"] if k["role"] == role and k["revoked_at"] is None
    ]


async def test_the_last_active_admin_key_cannot_be_revoked(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    made = await client.post(
        "/v1/api-keys",
        json={"name": "second-admin", "role": "admin"},
        headers=keys.headers("admin"),
    )
    assert made.status_code == 201, made.text
    first, second = await key_ids(client, keys, "admin")
    assert second == made.json()["id"]

    # Two admins: one may go, even by its own hand.
    gone = await client.delete(f"/v1/api-keys/{second}", headers=keys.headers("admin"))
    assert gone.status_code == 200, gone.text

    last = await client.delete(f"/v1/api-keys/{first}", headers=keys.headers("admin"))
    assert last.status_code == 409, last.text
    assert last.headers["content-type"] == "application/problem+json"
    assert "last active admin key" in last.json()["detail"]
    assert await key_ids(client, keys, "admin") == [first]
    assert (await client.get("/v1/api-keys", headers=keys.headers("admin"))).status_code == 200

    # Revoking it again once another admin exists works, and other roles were never limited.
    again = await client.post(
        "/v1/api-keys", json={"name": "third-admin", "role": "admin"}, headers=keys.headers("admin")
    )
    assert again.status_code == 201
    rep = (await key_ids(client, keys, "rep"))[0]
    assert (
        await client.delete(f"/v1/api-keys/{rep}", headers=keys.headers("admin"))
    ).status_code == 200
    assert (
        await client.delete(f"/v1/api-keys/{first}", headers=keys.headers("admin"))
    ).status_code == 200


async def create_approver(
    client: httpx.AsyncClient, keys: Keys, name: str, groups: list[str]
) -> httpx.Response:
    return await client.post(
        "/v1/api-keys",
        json={"name": name, "role": "approver", "groups": groups},
        headers=keys.headers("admin"),
    )


async def test_an_approver_key_may_only_join_groups_that_exist(
    client: httpx.AsyncClient, keys: Keys, demo_yaml: str
) -> None:
    # The keys fixture created finance; "fianance" is a typo, "cfo" no playbook names yet.
    typo = await create_approver(client, keys, "fiona", ["finance", "fianance", "cfo"])
    assert typo.status_code == 422, typo.text
    assert typo.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in typo.json()["errors"]] == ["groups[1]", "groups[2]"]
    assert "PUT /v1/approval-groups/fianance" in typo.json()["errors"][0]["message"]
    listed = await client.get("/v1/api-keys", headers=keys.headers("admin"))
    assert "fiona" not in {k["name"] for k in listed.json()["items"]}

    # A draft playbook naming cfo as a tier approver makes it a group.
    draft = await client.post(
        "/v1/playbooks/import",
        content=demo_yaml,
        headers={**keys.headers("leadership"), "Content-Type": "application/yaml"},
    )
    assert draft.status_code == 201, draft.text
    assert (await create_approver(client, keys, "carla", ["cfo"])).status_code == 201
    # So does creating the group.
    assert (await create_approver(client, keys, "dora", ["deal_desk"])).status_code == 422
    created = await client.put(
        "/v1/approval-groups/deal_desk", json={}, headers=keys.headers("admin")
    )
    assert created.status_code == 201, created.text
    assert (await create_approver(client, keys, "dora", ["deal_desk"])).status_code == 201
