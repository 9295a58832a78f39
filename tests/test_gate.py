"""The request gate: the key is checked before a body is read, and bodies are capped as they
stream in (413 problem+json), the playbook import with a larger cap of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from tests.conftest import Keys

from governance.app import create_app
from governance.settings import Settings

DEAL = "/v1/deals/0065g00000GateAAAA"
MiB = 1024 * 1024
CHUNK = 64 * 1024


class Upload:
    """A chunked request body of `total` bytes that records how much the server pulled."""

    def __init__(self, total: int, chunk: bytes = b" " * CHUNK) -> None:
        self.total = total
        self.chunk = chunk
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            self.pulled += len(self.chunk)
            yield self.chunk


def problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["status"] == status
    return body


async def test_a_body_without_a_key_is_refused_before_a_byte_of_it_is_read(
    client: httpx.AsyncClient,
) -> None:
    upload = Upload(100 * MiB)
    response = await client.put(DEAL, content=upload, headers={"Content-Type": "application/json"})
    problem(response, 401)
    assert upload.pulled == 0
    assert response.headers["connection"] == "close"  # the server stops reading the upload


async def test_an_unknown_key_is_refused_before_the_body_too(client: httpx.AsyncClient) -> None:
    upload = Upload(100 * MiB)
    response = await client.post(
        "/v1/checks",
        content=upload,
        headers={"Authorization": "Bearer gov_not-a-key", "Content-Type": "application/json"},
    )
    problem(response, 401)
    assert upload.pulled == 0


async def test_a_declared_length_over_the_cap_is_413_before_the_body(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    # 1 MiB by default: one byte more is refused, whatever the route.
    for method, path in (("PUT", DEAL), ("POST", "/v1/checks"), ("POST", "/v1/playbooks")):
        response = await client.request(
            method,
            path,
            content=b" " * (MiB + 1),
            headers={**keys.headers("admin"), "Content-Type": "application/json"},
        )
        body = problem(response, 413)
        assert body["title"] == "Request body too large"
        assert str(MiB) in str(body["detail"])


async def test_a_streamed_body_is_cut_off_once_it_passes_the_cap(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    # Chunked: no length up front, so the bytes are counted as they arrive.
    for path in (DEAL, "/v1/checks"):
        upload = Upload(100 * MiB)
        method = "PUT" if path == DEAL else "POST"
        response = await client.request(
            method,
            path,
            content=upload,
            headers={**keys.headers("rep"), "Content-Type": "application/json"},
        )
        problem(response, 413)
        assert upload.pulled <= MiB + CHUNK, (path, upload.pulled)
        assert response.headers["connection"] == "close"


async def test_a_body_within_the_cap_is_read_as_before(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    name = "x" * 100
    padded = b'{"name": "' + name.encode() + b'"' + b" " * (MiB - 200) + b"}"
    assert len(padded) < MiB
    response = await client.put(
        DEAL, content=padded, headers={**keys.headers("rep"), "Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == name


async def test_the_playbook_import_is_capped_at_1_mib_by_default(
    client: httpx.AsyncClient, keys: Keys, demo_yaml: str
) -> None:
    headers = {**keys.headers("admin"), "Content-Type": "application/yaml"}
    too_big = demo_yaml + ("# " + "x" * 1022 + "\n") * 1024
    body = problem(await client.post("/v1/playbooks/import", content=too_big, headers=headers), 413)
    assert str(MiB) in str(body["detail"])


@pytest.fixture
def small_app(database_url: str) -> Iterator[FastAPI]:
    application = create_app(
        Settings(database_url=database_url, max_body_bytes=1000, max_import_body_bytes=10_000)
    )
    yield application
    application.state.db.dispose()


async def test_the_caps_are_settings_and_the_import_has_its_own(
    small_app: FastAPI, keys: Keys, demo_yaml: str
) -> None:
    transport = httpx.ASGITransport(app=small_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        headers = {**keys.headers("admin"), "Content-Type": "application/json"}
        fits = b'{"name": "n"' + b" " * 900 + b"}"
        created = await client.put(DEAL, content=fits, headers=headers)
        assert created.status_code == 201, created.text
        over = b'{"name": "n"' + b" " * 1000 + b"}"
        problem(await client.put(DEAL, content=over, headers=headers), 413)
        # The demo document (6 KB) is over the general cap and within the import's.
        yaml_headers = {**headers, "Content-Type": "application/yaml"}
        assert len(demo_yaml) > 1000
        imported = await client.post(
            "/v1/playbooks/import", content=demo_yaml, headers=yaml_headers
        )
        assert imported.status_code == 201, imported.text
        padded = demo_yaml + "#" * (10_001 - len(demo_yaml.encode()))
        body = problem(
            await client.post("/v1/playbooks/import", content=padded, headers=yaml_headers), 413
        )
        assert "10000 bytes" in str(body["detail"])


async def test_an_outbound_message_with_a_wrong_secret_is_refused_before_its_body(
    client: httpx.AsyncClient,
) -> None:
    upload = Upload(10 * MiB, chunk=b"<" * CHUNK)
    response = await client.post(
        "/v1/salesforce/outbound-messages?secret=guess",
        content=upload,
        headers={"Content-Type": "text/xml"},
    )
    problem(response, 403)
    assert upload.pulled == 0


async def test_every_response_says_nosniff_and_api_answers_are_not_stored(
    app: FastAPI, client: httpx.AsyncClient, keys: Keys
) -> None:
    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)  # an unexpected error: answered outside the app's routes
    answers = {
        "health": await client.get("/healthz"),
        "docs": await client.get("/openapi.json"),
        "not found": await client.get("/nothing-here"),
        "500": await client.get("/boom"),
        "401": await client.get("/v1/deals"),
        "413": await client.put(DEAL, content=b" " * (MiB + 1), headers=keys.headers("rep")),
        "deals": await client.get("/v1/deals", headers=keys.headers("rep")),
        "new key": await client.post(
            "/v1/api-keys", json={"name": "ci", "role": "rep"}, headers=keys.headers("admin")
        ),
    }
    assert answers["500"].status_code == 500
    assert answers["new key"].status_code == 201
    assert "secret" in answers["new key"].json()
    for name, response in answers.items():
        assert response.headers["x-content-type-options"] == "nosniff", name
    for name in ("401", "413", "deals", "new key"):
        assert answers[name].headers["cache-control"] == "no-store", name
