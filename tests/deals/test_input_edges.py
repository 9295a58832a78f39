"""Inputs that once slipped through: each gets a clear 4xx, and stored values stay exact."""

from __future__ import annotations

import base64

import httpx
import pytest
from tests.conftest import Keys

pytestmark = pytest.mark.usefixtures("demo_published")


async def test_15_and_18_character_ids_are_the_same_opportunity(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    created = await client.put(
        "/v1/deals/0065g00000AbCdE", json={"name": "short id"}, headers=keys.headers("rep")
    )
    assert created.status_code == 201
    assert created.json()["external_id"] == "0065g00000AbCdEAAV"
    again = await client.put(
        "/v1/deals/0065g00000AbCdEAAV", json={"name": "long id"}, headers=keys.headers("rep")
    )
    assert again.status_code == 200
    fetched = await client.get("/v1/deals/0065g00000AbCdE", headers=keys.headers("rep"))
    assert fetched.json()["name"] == "long id"


async def test_amounts_are_stored_exactly(client: httpx.AsyncClient, keys: Keys) -> None:
    amount = "1234567890123.12345678"
    await client.put(
        "/v1/deals/0065g00000AbCdEAAV",
        json={"attributes": {"amount": amount}},
        headers=keys.headers("rep"),
    )
    fetched = await client.get("/v1/deals/0065g00000AbCdEAAV", headers=keys.headers("rep"))
    assert fetched.json()["attributes"]["amount"] == amount


async def test_unparseable_json_is_400(client: httpx.AsyncClient, keys: Keys) -> None:
    for path, method in (("/v1/checks", "POST"), ("/v1/deals/0065g00000AbCdEAAV", "PUT")):
        response = await client.request(
            method,
            path,
            content=b"{",
            headers={**keys.headers("rep"), "Content-Type": "application/json"},
        )
        assert response.status_code == 400, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"


async def test_out_of_range_ids_and_cursors_are_422(client: httpx.AsyncClient, keys: Keys) -> None:
    huge = await client.delete("/v1/api-keys/99999999999999999999", headers=keys.headers("admin"))
    assert huge.status_code == 422
    cursor = base64.urlsafe_b64encode(b"id:99999999999999999999").decode().rstrip("=")
    for path in ("/v1/deals", "/v1/audit"):
        response = await client.get(f"{path}?cursor={cursor}", headers=keys.headers("admin"))
        assert response.status_code == 422, path


async def test_check_body_errors_name_the_field(client: httpx.AsyncClient, keys: Keys) -> None:
    response = await client.post(
        "/v1/checks", json={"terms": {"Bad Key": 1}}, headers=keys.headers("rep")
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith("terms")
    unknown = await client.post("/v1/checks", json={"surprise": 1}, headers=keys.headers("rep"))
    assert unknown.json()["errors"][0]["field"] == "surprise"


async def test_a_body_that_is_not_declared_json_is_415(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    body = b'{"attributes": {"region": "EMEA"}, "terms": {"discount_pct": "18"}}'
    # The hot check reads its body by hand; the deal upsert goes through FastAPI's parsing.
    for method, path in (("POST", "/v1/checks"), ("PUT", "/v1/deals/0065g00000AbCdEAAV")):
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = keys.headers("rep")
            if content_type:
                headers["Content-Type"] = content_type
            response = await client.request(method, path, content=body, headers=headers)
            assert response.status_code == 415, (path, content_type, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert "application/json" in response.json()["detail"]
        for content_type in ("application/json", "application/json; charset=utf-8"):
            headers = {**keys.headers("rep"), "Content-Type": content_type}
            response = await client.request(method, path, content=body, headers=headers)
            assert response.status_code in (200, 201), (path, content_type, response.text)


async def test_a_missing_body_is_still_422_naming_it(client: httpx.AsyncClient, keys: Keys) -> None:
    response = await client.put("/v1/deals/0065g00000AbCdEAAV", headers=keys.headers("rep"))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "body"
