"""Liveness and readiness need no key; everything else does."""

from __future__ import annotations

import httpx
from tests.conftest import Keys


async def test_health_and_readiness_are_public(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


async def test_unknown_route_is_problem_json(client: httpx.AsyncClient, keys: Keys) -> None:
    # Without a key, every /v1 path is a 401: the key is checked before routing.
    assert (await client.get("/v1/nothing-here")).status_code == 401
    response = await client.get("/v1/nothing-here", headers=keys.headers("rep"))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
