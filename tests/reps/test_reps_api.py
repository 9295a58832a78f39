"""Rep profiles through the HTTP API: create or replace, read, list with filters, delete."""

from __future__ import annotations

import httpx
from tests.conftest import Keys

BODY = {"name": "Anna Schmidt", "team": "DACH", "region": "EMEA", "style": "closer"}


async def test_put_creates_then_replaces(client: httpx.AsyncClient, keys: Keys) -> None:
    created = await client.put(
        "/v1/reps/anna.schmidt", json=BODY, headers=keys.headers("leadership")
    )
    assert created.status_code == 201, created.text
    assert created.json() | {"created_at": None, "updated_at": None} == {
        "rep": "anna.schmidt",
        **BODY,
        "version": 1,
        "created_at": None,
        "updated_at": None,
    }
    # A PUT replaces every field: the team left out is gone.
    replaced = await client.put(
        "/v1/reps/anna.schmidt",
        json={"region": "EMEA", "style": "strategist"},
        headers=keys.headers("admin"),
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert (body["style"], body["team"], body["name"], body["version"]) == (
        "strategist",
        None,
        None,
        2,
    )
    read = await client.get("/v1/reps/anna.schmidt", headers=keys.headers("rep"))
    assert read.status_code == 200
    assert read.json() == body


async def test_changes_are_audited(client: httpx.AsyncClient, keys: Keys) -> None:
    await client.put("/v1/reps/anna.schmidt", json=BODY, headers=keys.headers("leadership"))
    await client.put(
        "/v1/reps/anna.schmidt", json={**BODY, "style": "diplomat"}, headers=keys.headers("admin")
    )
    assert (
        await client.delete("/v1/reps/anna.schmidt", headers=keys.headers("admin"))
    ).status_code == 204
    audit = await client.get(
        "/v1/audit", params={"entity_type": "rep"}, headers=keys.headers("admin")
    )
    entries = audit.json()["items"]
    assert [e["action"] for e in entries] == ["rep.deleted", "rep.replaced", "rep.created"]
    assert entries[1]["before"]["style"] == "closer"
    assert entries[1]["after"]["style"] == "diplomat"
    assert entries[0]["after"] is None
    assert {e["entity_id"] for e in entries} == {"anna.schmidt"}


async def test_delete_then_not_found(client: httpx.AsyncClient, keys: Keys) -> None:
    await client.put("/v1/reps/anna.schmidt", json=BODY, headers=keys.headers("admin"))
    assert (
        await client.delete("/v1/reps/anna.schmidt", headers=keys.headers("admin"))
    ).status_code == 204
    for response in (
        await client.get("/v1/reps/anna.schmidt", headers=keys.headers("admin")),
        await client.delete("/v1/reps/anna.schmidt", headers=keys.headers("admin")),
    ):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


async def test_list_filters_and_pages(client: httpx.AsyncClient, keys: Keys) -> None:
    reps = [
        ("a1", "DACH", "EMEA", "closer"),
        ("a2", "DACH", "EMEA", "diplomat"),
        ("a3", "France", "EMEA", "closer"),
        ("a4", "US East", "NA", "closer"),
        ("a5", "US East", "NA", "game_changer"),
    ]
    for rep, team, region, style in reps:
        response = await client.put(
            f"/v1/reps/{rep}",
            json={"team": team, "region": region, "style": style},
            headers=keys.headers("admin"),
        )
        assert response.status_code == 201
    headers = keys.headers("integration")

    async def names(**params: str | int) -> list[str]:
        response = await client.get("/v1/reps", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [r["rep"] for r in response.json()["items"]]

    assert await names() == ["a5", "a4", "a3", "a2", "a1"]
    assert await names(team="DACH") == ["a2", "a1"]
    assert await names(region="NA") == ["a5", "a4"]
    assert await names(style="closer") == ["a4", "a3", "a1"]
    assert await names(style="closer", region="EMEA") == ["a3", "a1"]

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/reps", params=params, headers=headers)).json()
        seen += [r["rep"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["a5", "a4", "a3", "a2", "a1"]


async def test_invalid_input_names_the_field(client: httpx.AsyncClient, keys: Keys) -> None:
    headers = keys.headers("admin")
    cases = [
        ("/v1/reps/anna", {"style": "bully"}, "style"),
        ("/v1/reps/anna", {"team": "x"}, "style"),
        ("/v1/reps/anna", {"style": "closer", "region": "x" * 101}, "region"),
        ("/v1/reps/anna", {"style": "closer", "nickname": "a"}, "nickname"),
        ("/v1/reps/" + "a" * 101, {"style": "closer"}, "rep"),
        ("/v1/reps/%20anna", {"style": "closer"}, "rep"),  # a leading space
    ]
    for path, body, field in cases:
        response = await client.put(path, json=body, headers=headers)
        assert response.status_code == 422, (path, body, response.text)
        assert any(field in e["loc"] for e in response.json()["errors"]), response.text
    bad_filter = await client.get("/v1/reps", params={"style": "bully"}, headers=headers)
    assert bad_filter.status_code == 422


async def test_only_editors_write(client: httpx.AsyncClient, keys: Keys) -> None:
    refused = await client.put("/v1/reps/anna", json=BODY, headers=keys.headers("rep"))
    assert refused.status_code == 403
    await client.put("/v1/reps/anna", json=BODY, headers=keys.headers("leadership"))
    refused = await client.delete("/v1/reps/anna", headers=keys.headers("leadership"))
    assert refused.status_code == 403
    assert (await client.get("/v1/reps/anna", headers=keys.headers("admin"))).status_code == 200


async def test_any_name_a_deal_can_carry_can_have_a_profile(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    # Deals name reps as free text (`owner_rep`): spaces and accents included.
    response = await client.put(
        "/v1/reps/José Núñez", json={"style": "diplomat"}, headers=keys.headers("leadership")
    )
    assert response.status_code == 201, response.text
    listed = await client.get("/v1/reps", params={"style": "diplomat"}, headers=keys.headers("rep"))
    assert [r["rep"] for r in listed.json()["items"]] == ["José Núñez"]
