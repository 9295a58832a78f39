"""Signing in and out of the console: the cookie, CSRF, revocation, expiry, headers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.conftest import Keys
from tests.web.conftest import SIGN_IN_TOKEN, Console

from governance.auth.schemas import Role
from governance.db import Database, utcnow
from governance.settings import Settings
from governance.web.repository import WebSecretRepository
from governance.web.sessions import COOKIE, SECRET_NAME, Sessions, Signer


async def test_the_root_sends_a_visitor_to_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in"
    page = await client.get("/sign-in")
    assert page.status_code == 200
    assert '<label for="api_key">API key</label>' in page.text
    assert "Sign out" not in page.text


async def test_sign_in_sets_a_signed_httponly_lax_cookie_that_expires(
    consoles: Callable[[], Console], keys: Keys
) -> None:
    console = consoles()
    response = await console.sign_in(keys.secrets["approver"])
    assert response.status_code == 303
    assert response.headers["location"] == "/inbox"  # approvers land on their inbox
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "max-age", "path"} <= attributes
    assert "samesite=lax" in cookie.lower()
    assert "max-age=28800" in cookie.lower()  # 8 hours by default
    assert "secure" not in attributes  # plain http here; see the https test
    assert keys.secrets["approver"] not in cookie  # the key never travels in the cookie
    inbox = await console.page("/inbox")
    assert inbox.status_code == 200
    assert "<strong>approver</strong>" in inbox.text
    assert '<span class="role">approver</span>' in inbox.text


async def test_a_rep_lands_on_the_simulator_and_sees_no_inbox(
    consoles: Callable[[], Console], keys: Keys
) -> None:
    console = consoles()
    response = await console.sign_in(keys.secrets["rep"])
    assert response.headers["location"] == "/simulator"
    page = await console.page("/simulator")
    assert 'href="/inbox"' not in page.text
    assert 'href="/delegation"' not in page.text
    refused = await console.page("/inbox")
    assert refused.status_code == 403
    assert "This page is not for your role" in refused.text


async def test_a_wrong_key_is_refused_on_the_form(
    consoles: Callable[[], Console], keys: Keys
) -> None:
    console = consoles()
    response = await console.sign_in("gov_not-a-key-at-all-000000000000")
    assert response.status_code == 401
    assert "That key is unknown or has been revoked." in response.text
    assert COOKIE not in response.headers.get("set-cookie", "")


async def test_sign_in_needs_the_form_token(client: httpx.AsyncClient, keys: Keys) -> None:
    # A cross-site form could otherwise sign a victim into the attacker's account.
    response = await client.post(
        "/sign-in", data={"api_key": keys.secrets["admin"], "csrf_token": "forged"}
    )
    assert response.status_code == 403
    assert COOKIE not in response.headers.get("set-cookie", "")


async def test_after_sign_in_the_visitor_returns_where_they_were_going(
    consoles: Callable[[], Console], keys: Keys
) -> None:
    console = consoles()
    bounced = await console.http.get("/deals?q=abc")
    assert bounced.status_code == 303
    assert bounced.headers["location"] == "/sign-in?next=/deals%3Fq%3Dabc"
    response = await console.sign_in(keys.secrets["admin"], next_path="/deals?q=abc")
    assert response.headers["location"] == "/deals?q=abc"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
async def test_sign_in_never_sends_anyone_off_site(
    consoles: Callable[[], Console], keys: Keys, target: str
) -> None:
    console = consoles()
    response = await console.sign_in(keys.secrets["admin"], next_path=target)
    assert response.headers["location"] == "/inbox"


async def test_htmx_requests_without_a_session_are_sent_to_sign_in(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        "/inbox",
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/inbox?status=x"},
    )
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/sign-in?next=/inbox"


async def test_sign_out_ends_the_session_everywhere(
    consoles: Callable[[], Console], keys: Keys
) -> None:
    console = consoles()
    await console.sign_in(keys.secrets["admin"])
    stolen = console.http.cookies[COOKIE]
    signed_out = await console.post("/sign-out", {})
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/sign-in?signed_out=1"
    assert (await console.page(signed_out.headers["location"])).status_code == 200
    # A copy of the cookie (another tab, another machine) no longer works either.
    other = consoles()
    other.http.cookies.set(COOKIE, stolen)
    refused = await other.http.get("/inbox")
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/sign-in")


async def test_sign_out_needs_the_csrf_token(consoles: Callable[[], Console], keys: Keys) -> None:
    console = consoles()
    await console.sign_in(keys.secrets["admin"])
    refused = await console.post("/sign-out", {}, token=False)
    assert refused.status_code == 403
    assert "This form has expired" in refused.text
    assert (await console.page("/inbox")).status_code == 200  # still signed in


async def test_a_revoked_key_ends_its_sessions(
    consoles: Callable[[], Console], keys: Keys, client: httpx.AsyncClient
) -> None:
    keys.create("short_lived", Role.approver, ["finance"])
    console = consoles()
    await console.sign_in(keys.secrets["short_lived"])
    assert (await console.page("/inbox")).status_code == 200
    listed = await client.get("/v1/api-keys", headers=keys.headers("admin"))
    key_id = next(k["id"] for k in listed.json()["items"] if k["name"] == "short_lived")
    revoked = await client.delete(f"/v1/api-keys/{key_id}", headers=keys.headers("admin"))
    assert revoked.status_code == 200
    after = await console.page("/inbox")
    assert after.status_code == 303  # at once, not after a cache expires
    assert after.headers["location"].startswith("/sign-in")


async def test_an_expired_session_is_refused(
    consoles: Callable[[], Console], keys: Keys, app: FastAPI
) -> None:
    console = consoles()
    await console.sign_in(keys.secrets["admin"])
    sessions: Sessions = app.state.web_sessions
    # A cookie signed correctly but past its expiry (as if kept beyond Max-Age).
    session_id = console.http.cookies[COOKIE].split(".")[0]
    past = int((utcnow() - timedelta(minutes=1)).timestamp())
    console.http.cookies.set(COOKIE, sessions.signer.cookie(session_id, past))
    assert (await console.page("/inbox")).status_code == 303


async def test_a_forged_cookie_is_refused(consoles: Callable[[], Console], keys: Keys) -> None:
    console = consoles()
    await console.sign_in(keys.secrets["admin"])
    session_id, expires, _signature = console.http.cookies[COOKIE].split(".")
    forged = Signer("someone else's secret, at least 32 chars").cookie(session_id, int(expires))
    console.http.cookies.set(COOKIE, forged)
    assert (await console.page("/inbox")).status_code == 303


async def test_non_ascii_tokens_are_refused_not_failed(
    consoles: Callable[[], Console], keys: Keys
) -> None:
    """Every token the browser sends (the sign-in form's, a form's CSRF token, the cookie's
    signature) is compared as bytes: a forged one with "é" in it is a refusal, not a 500."""
    visitor = consoles()
    await visitor.http.get("/sign-in")
    refused = await visitor.http.post(
        "/sign-in", data={"api_key": keys.secrets["admin"], "csrf_token": "forgé²"}
    )
    assert refused.status_code == 403
    assert COOKIE not in refused.headers.get("set-cookie", "")

    console = consoles()
    await console.sign_in(keys.secrets["admin"])
    refused = await console.post("/sign-out", {"csrf_token": "jeton-forgé"}, token=False)
    assert refused.status_code == 403
    assert "This form has expired" in refused.text
    session_id, expires, _signature = console.http.cookies[COOKIE].split(".")
    console.http.cookies.clear()
    forged = f"{COOKIE}={session_id}.{expires}.signé".encode("latin-1")  # as a header carries it
    assert (await console.http.get("/inbox", headers={"Cookie": forged})).status_code == 303


async def test_the_generated_secret_is_shared_by_every_worker(
    settings: Settings, db: Database
) -> None:
    # Two processes (here: two Sessions on one database) sign alike without configuration.
    first = Sessions(db, None, 8).signer.cookie("abc", 2_000_000_000)
    second = Sessions(db, None, 8).signer.cookie("abc", 2_000_000_000)
    assert first == second
    with db.unit_of_work() as session:
        assert WebSecretRepository(session).get(SECRET_NAME)
    configured = Sessions(db, "x" * 40, 8).signer.cookie("abc", 2_000_000_000)
    assert configured != first


async def test_secure_cookies_over_https(settings: Settings, keys: Keys) -> None:
    from governance.app import create_app

    app = create_app(settings)
    console = Console(app, base_url="https://testserver")  # as behind a TLS proxy
    try:
        response = await console.sign_in(keys.secrets["admin"])
        cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE))
        assert "; secure" in cookie.lower()
        assert (await console.page("/inbox")).status_code == 200
    finally:
        await console.close()
        app.state.db.dispose()


async def test_every_console_response_carries_the_security_headers(
    consoles: Callable[[], Console], keys: Keys
) -> None:
    console = consoles()
    await console.sign_in(keys.secrets["admin"])
    for path in ("/sign-in", "/inbox", "/deals", "/simulator", "/static/app.css"):
        response = await console.http.get(path)
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp, path
        assert "script-src 'self';" in csp, path  # no inline scripts, no other host
        assert "frame-ancestors 'self'" in csp, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "same-origin", path
    page = await console.http.get("/inbox")
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text  # every script is a static file
    assert " style=" not in page.text  # and every style: the CSP allows no inline ones
    # The API keeps its own headers: the console does not touch it.
    api = await console.http.get("/healthz")
    assert "content-security-policy" not in api.headers


async def test_frame_ancestors_are_a_setting(settings: Settings) -> None:
    from governance.app import create_app

    origins = "'self' https://acme.lightning.force.com"
    app = create_app(settings.model_copy(update={"frame_ancestors": origins}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/sign-in")
    app.state.db.dispose()
    assert f"frame-ancestors {origins}" in response.headers["content-security-policy"]
    assert "x-frame-options" not in response.headers  # it would forbid Salesforce's frame


async def test_every_unsafe_page_route_needs_the_csrf_token(
    consoles: Callable[[], Console], keys: Keys, app: FastAPI
) -> None:
    from governance.web.dependencies import PageRoute
    from governance.web.router import router

    def page_routes(routes: list[Any]) -> list[PageRoute]:
        found = []
        for route in routes:
            if isinstance(route, PageRoute):
                found.append(route)
            included = getattr(route, "original_router", None)  # an included router
            found.extend(page_routes(included.routes if included else getattr(route, "routes", [])))
        return found

    unsafe = sorted(
        {
            route.path.replace("{request_id}", "1")
            for route in page_routes(router.routes)
            if route.methods - {"GET", "HEAD"}
            and route.path != "/sign-in"  # before a session: its own signed token (above)
        }
    )
    assert {"/sign-out", "/inbox/approve", "/delegation"} <= set(unsafe)
    console = consoles()
    await console.sign_in(keys.secrets["admin"])
    for path in unsafe:
        refused = await console.post(path, {"decision": "approve", "version": "1"}, token=False)
        assert refused.status_code == 403, path
        assert "This form has expired" in refused.text, path


async def test_signing_in_again_ends_the_earlier_session(
    consoles: Callable[[], Console], keys: Keys
) -> None:
    console = consoles()
    await console.sign_in(keys.secrets["admin"])
    first = console.http.cookies[COOKIE]
    # Another window of the same browser: it has the session, and a sign-in form got before.
    window = consoles()
    form = await window.http.get("/sign-in")
    token = SIGN_IN_TOKEN.search(form.text)
    assert token
    window.http.cookies.set(COOKIE, first)
    again = await window.http.post(
        "/sign-in", data={"api_key": keys.secrets["approver"], "csrf_token": token.group(1)}
    )
    assert again.status_code == 303
    assert again.headers["location"] == "/inbox"
    new = next(h for h in again.headers.get_list("set-cookie") if h.startswith(COOKIE))
    assert first not in new
    assert (await console.http.get("/inbox")).status_code == 303  # the admin session ended


async def test_a_proxied_origin_is_this_site(consoles: Callable[[], Console], keys: Keys) -> None:
    console = consoles()
    await console.sign_in(keys.secrets["admin"])
    behind_proxy = await console.http.post(
        "/delegation/end",
        data={"csrf_token": console.csrf},
        headers={"Origin": "https://deals.example", "X-Forwarded-Host": "deals.example"},
    )
    assert behind_proxy.status_code == 200
    assert "You had no delegation to end." in behind_proxy.text
