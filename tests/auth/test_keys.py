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
