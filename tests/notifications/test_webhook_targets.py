"""Where a group's webhook may point: never at loopback, link-local, private or other non-public
addresses (the worker posts from inside the network), https outside development, unless the
operator allows the host. Refused when saved (422 naming `webhook_url`) and again by the worker
before each post, which connects to the address it checked and never follows a redirect."""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI
from tests.conftest import Keys
from tests.driver import make_due
from tests.driver import notifications as outbox
from tests.driver import submit_sample as submit

from governance.app import create_app
from governance.auth.schemas import Role
from governance.db import Database
from governance.playbooks.registry import PlaybookRegistry
from governance.settings import Settings
from governance.worker import run_once

HOOK_PATH = "/T000/B000/XXXX"


@pytest.fixture
def people(keys: Keys, demo_published: None) -> Keys:
    keys.create("sam", Role.approver, ["sales_director"])
    return keys


async def put_hook(client: httpx.AsyncClient, keys: Keys, url: str) -> httpx.Response:
    return await client.put(
        "/v1/approval-groups/sales_director",
        json={"webhook_url": url},
        headers=keys.headers("admin"),
    )


@pytest.fixture
def resolve(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Names this test's DNS answers (everything else resolves as usual)."""
    answers: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            return real(answers[host], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


# --- when the webhook is saved ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://127.0.0.1:8000/hook", "loopback"),
        ("https://localhost/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://2130706433/hook", "loopback"),  # 127.0.0.1 written as a number
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://10.0.0.5/hook", "private"),
        ("https://192.168.1.20/hook", "private"),
        ("https://172.16.0.1/hook", "private"),
        ("https://[fd00::1]/hook", "private"),
        ("https://100.64.0.1/hook", "not a public address"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://240.0.0.1/hook", "reserved"),
        ("http://hooks.example.com/T000", "https"),
    ],
)
async def test_a_webhook_that_is_not_public_https_is_refused(
    client: httpx.AsyncClient, keys: Keys, url: str, why: str
) -> None:
    response = await put_hook(client, keys, url)
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == "webhook_url"
    assert why in error["message"]
    groups = await client.get("/v1/approval-groups", headers=keys.headers("admin"))
    assert all(not g["webhook_configured"] for g in groups.json())


async def test_a_name_that_resolves_to_a_private_address_is_refused(
    client: httpx.AsyncClient, keys: Keys, resolve: dict[str, str]
) -> None:
    resolve["intranet.example.com"] = "10.1.2.3"
    response = await put_hook(client, keys, "https://intranet.example.com/hook")
    assert response.status_code == 422, response.text
    assert "10.1.2.3, a private address" in response.json()["errors"][0]["message"]


async def test_a_public_https_webhook_is_saved(
    client: httpx.AsyncClient, keys: Keys, resolve: dict[str, str]
) -> None:
    resolve["hooks.example.com"] = "93.184.216.34"
    response = await put_hook(client, keys, "https://hooks.example.com/T000/B000/XXXX")
    assert response.status_code == 201, response.text
    assert response.json()["webhook_host"] == "hooks.example.com"


@pytest.fixture
async def operator_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose operator allows an internal host and network, in development."""
    app = create_app(
        Settings(
            database_url=database_url,
            environment="development",
            webhook_allowed_hosts=["hooks.internal", "10.20.0.0/16", "127.0.0.1"],
        )
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    app.state.db.dispose()


async def test_the_operator_may_allow_hosts_and_plain_http_in_development(
    operator_client: httpx.AsyncClient, keys: Keys
) -> None:
    for url in (
        "https://hooks.internal/hook",
        "http://10.20.3.4:8080/hook",
        "http://127.0.0.1:9000/hook",
        "http://hooks.example.com/T000",  # plain http: development only
    ):
        response = await put_hook(operator_client, keys, url)
        assert response.status_code in (200, 201), (url, response.text)
    for url in ("https://10.21.0.1/hook", "https://169.254.169.254/", "http://localhost/hook"):
        response = await put_hook(operator_client, keys, url)
        assert response.status_code == 422, (url, response.text)


# --- when the worker posts -------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    received: list[str]
    redirect_to: str | None = None

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(self.path)
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


def _receiver(redirect_to: str | None = None) -> tuple[HTTPServer, list[str]]:
    received: list[str] = []
    handler = type("Receiver", (_Receiver,), {"received": received, "redirect_to": redirect_to})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


@pytest.fixture
def receivers() -> Iterator[list[HTTPServer]]:
    started: list[HTTPServer] = []
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


async def test_the_worker_refuses_a_host_that_now_resolves_to_loopback(
    database_url: str,
    people: Keys,
    db: Database,
    receivers: list[HTTPServer],
    resolve: dict[str, str],
) -> None:
    server, received = _receiver()
    receivers.append(server)
    resolve["hooks.internal"] = "127.0.0.1"
    # Saved while the operator allowed the host; the worker's settings no longer do.
    saving = Settings(
        database_url=database_url,
        environment="development",
        webhook_allowed_hosts=["hooks.internal"],
    )
    app = create_app(saving)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        url = f"http://hooks.internal:{server.server_port}{HOOK_PATH}"
        assert (await put_hook(client, people, url)).status_code == 201
        await submit(client, people, discount_pct=20)
    app.state.db.dispose()
    sending = Settings(database_url=database_url, environment="development")
    report = run_once(db, PlaybookRegistry(db, 0), sending)
    assert (report.sent, report.retried) == (0, 1)
    assert received == []
    (row,) = outbox(db)
    assert row["last_error"] == "refused: hooks.internal resolves to 127.0.0.1, a loopback address"


async def test_the_worker_checks_dns_again_and_posts_to_the_address_it_checked(
    client: httpx.AsyncClient,
    people: Keys,
    db: Database,
    settings: Settings,
    resolve: dict[str, str],
) -> None:
    resolve["hooks.example.com"] = "93.184.216.34"  # public when the admin saves it
    assert (
        await put_hook(client, people, f"https://hooks.example.com{HOOK_PATH}")
    ).status_code == 201
    await submit(client, people, discount_pct=20)
    registry = PlaybookRegistry(db, 0)
    with respx.mock(assert_all_called=False) as mock:
        by_name = mock.post(f"https://hooks.example.com{HOOK_PATH}").respond(200)
        pinned = mock.post(f"https://93.184.216.34{HOOK_PATH}").respond(200)
        metadata = mock.route(host="169.254.169.254").respond(200)
        # Then the name is pointed at the cloud metadata service.
        resolve["hooks.example.com"] = "169.254.169.254"
        report = run_once(db, registry, settings)
        assert (report.sent, report.retried) == (0, 1)
        assert not metadata.called
        assert not by_name.called
        assert not pinned.called
        (row,) = outbox(db)
        assert "169.254.169.254, a link-local address" in str(row["last_error"])
        # Public again: the post goes to the address checked, under the host's name.
        resolve["hooks.example.com"] = "93.184.216.34"
        make_due(db)
        report = run_once(db, registry, settings)
        assert report.sent == 1
        assert pinned.call_count == 1
        assert not by_name.called
        sent = pinned.calls.last.request
        assert sent.headers["host"] == "hooks.example.com"
        assert sent.extensions["sni_hostname"] == "hooks.example.com"


async def test_the_worker_never_follows_a_redirect(
    operator_client: httpx.AsyncClient,
    people: Keys,
    db: Database,
    database_url: str,
    receivers: list[HTTPServer],
) -> None:
    target, stolen = _receiver()
    hook, received = _receiver(redirect_to=f"http://127.0.0.1:{target.server_port}/steal")
    receivers.extend([target, hook])
    url = f"http://127.0.0.1:{hook.server_port}{HOOK_PATH}"
    assert (await put_hook(operator_client, people, url)).status_code == 201
    await submit(operator_client, people, discount_pct=20)
    sending = Settings(
        database_url=database_url, environment="development", webhook_allowed_hosts=["127.0.0.1"]
    )
    report = run_once(db, PlaybookRegistry(db, 0), sending)
    assert (report.sent, report.retried) == (0, 1)
    assert received == [HOOK_PATH]
    assert stolen == []
    assert str(outbox(db)[0]["last_error"]).startswith("HTTP 302")


def test_the_app_under_test_is_production_by_default(app: FastAPI) -> None:
    # The rules above run with the defaults: production, nothing allowed.
    assert app.state.settings.environment == "production"
    assert app.state.settings.webhook_allowed_hosts == []
