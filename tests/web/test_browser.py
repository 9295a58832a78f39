"""The console in a real browser: Debian's Chromium, driven by Playwright, against the app served
by `governance serve` on loopback (the suite's database: a SQLite file, or PostgreSQL).

Every test fails on a browser console error, an uncaught script error, or a request to any host
but the app's. Screenshots of the main pages, at laptop and phone widths, are written to
tests/web/artifacts/ (not committed) and their paths printed.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright
from tests.conftest import DEMO, Keys

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

expect.set_options(timeout=20_000)  # a busy CI machine; a failure still fails, only later

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser tests need Chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """The app served by `governance serve` in a subprocess, and an API client for setting up."""

    def __init__(self, database_url: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "GOVERNANCE_DATABASE_URL": database_url,
            "GOVERNANCE_PORT": str(self.port),
            "GOVERNANCE_LOG_LEVEL": "WARNING",
        }
        env.pop("GOVERNANCE_BOOTSTRAP_ADMIN_KEY", None)
        env.pop("GOVERNANCE_SESSION_SECRET", None)  # the generated, stored secret is used
        governance = str(Path(sys.executable).with_name("governance"))
        self.process = subprocess.Popen(
            [governance, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.api = httpx.Client(base_url=self.base, timeout=30)
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{self.base}/healthz", timeout=1)
                return
            except (urllib.error.URLError, ConnectionError):
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"the server did not come up:\n{self.output}")

    output = ""

    def stop(self) -> None:
        self.api.close()
        if self.process.poll() is None:
            self.process.terminate()
        try:
            out = self.process.communicate(timeout=15)[0]
        except subprocess.TimeoutExpired:
            self.process.kill()
            out = self.process.communicate()[0]
        self.output = out.decode(errors="replace") if out else ""


@pytest.fixture
def server(database_url: str, people: Keys) -> Iterator[Server]:
    served = Server(database_url)
    try:
        imported = served.api.post(
            "/v1/playbooks/import?publish=true",
            content=DEMO.read_text(encoding="utf-8"),
            headers={**people.headers("admin"), "Content-Type": "application/yaml"},
        )
        assert imported.status_code == 201, imported.text
        yield served
    finally:
        served.stop()


def submit(server: Server, keys: Keys, n: int, *, discount: int, name: str) -> dict[str, int]:
    """A deal under review; its requests' ids by chain group."""
    rep = keys.headers("rita_rep")
    deal = f"0065g00000Brw{n:03d}AA"
    stored = server.api.put(
        f"/v1/deals/{deal}",
        json={
            "name": name,
            "attributes": {"region": "EMEA", "segment": "enterprise", "amount": "240000",
                           "currency": "EUR", "owner_rep": "rita"},
            "terms": {"discount_pct": discount, "billing_frequency": "annual_upfront",
                      "contract_months": 12, "liability_cap_multiple": "1.5",
                      "payment_terms_days": 30},
        },
        headers=rep,
    )  # fmt: skip
    assert stored.status_code == 201, stored.text
    submitted = server.api.post(
        f"/v1/deals/{deal}/submit",
        json={"justifications": {"discount_pct": "Bake-off against a cheaper rival"}},
        headers=rep,
    )
    assert submitted.status_code == 200, submitted.text
    return {r["chain_group"]: r["id"] for r in submitted.json()["requests"]}


def status_of(server: Server, keys: Keys, request_id: int) -> str:
    read = server.api.get(f"/v1/approvals/{request_id}", headers=keys.headers("admin"))
    status: str = read.json()["status"]
    return status


class Watch:
    """Everything that must not happen in the browser: console errors, script errors, and
    requests to any host but the app's."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.problems: list[str] = []

    def attach(self, context: Any) -> None:
        context.on("console", self._console)
        context.on("weberror", lambda error: self.problems.append(f"script error: {error.error}"))
        context.on("request", self._request)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            where = message.location or {}
            self.problems.append(
                f"console error: {message.text} ({where.get('url')}:{where.get('lineNumber')})"
            )

    def _request(self, request: Any) -> None:
        url = request.url
        if url.startswith((self.base + "/", "data:", f"blob:{self.base}/")):
            return
        self.problems.append(f"request to another host: {url}")

    def check(self) -> None:
        assert self.problems == [], "\n".join(self.problems)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def watch(server: Server) -> Iterator[Watch]:
    watched = Watch(server.base)
    yield watched
    watched.check()


def person(chromium: Any, server: Server, watch: Watch, viewport: dict[str, int] = LAPTOP) -> Any:
    context = chromium.new_context(viewport=viewport, base_url=server.base)
    context.set_default_timeout(30_000)
    watch.attach(context)
    return context.new_page()


def sign_in(page: Any, secret: str) -> None:
    page.goto("/")
    page.get_by_label("API key").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("load")


def shot(page: Any, name: str, *, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    database = "pg" if os.environ.get("GOVERNANCE_TEST_DATABASE_URL") else "sqlite"
    path = ARTIFACTS / f"{name}-{database}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")
    return path


def test_an_approver_works_the_inbox(
    chromium: Any, server: Server, people: Keys, watch: Watch
) -> None:
    approve_me = submit(server, people, 1, discount=20, name="Acme renewal")["sales_director"]
    counter_me = submit(server, people, 2, discount=30, name="Globex expansion")["sales_director"]
    bulk_one = submit(server, people, 3, discount=19, name="Initech upgrade")["sales_director"]
    bulk_two = submit(server, people, 4, discount=21, name="Umbrella pilot")["sales_director"]
    stale = submit(server, people, 5, discount=22, name="Hooli renewal")["sales_director"]

    page = person(chromium, server, watch)
    sign_in(page, people.secrets["sam_sales_director"])
    expect(page).to_have_url(re.compile(r"/inbox$"))
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(page.locator("header")).to_contain_text("sam_sales_director")
    expect(page.locator("header")).to_contain_text("approver")
    expect(page.locator(".queue > li.row")).to_have_count(5)
    shot(page, "flow-inbox-laptop")

    # Approve one from its card, without leaving the inbox.
    page.locator(f"#open-{approve_me}").click()
    card = page.locator(f"#card-{approve_me}")
    expect(card).to_contain_text("Terms to decide")
    expect(card.locator("svg.bar")).to_have_count(1)
    expect(card).to_contain_text("Bake-off against a cheaper rival")
    shot(page, "flow-card-laptop")
    card.get_by_role("button", name="Approve").click()
    expect(card).to_contain_text("Approved. The rep and the other approvers see it now.")
    expect(page.locator(f"#row-{approve_me}")).to_have_class(re.compile("is-decided"))
    assert status_of(server, people, approve_me) == "approved"

    # Counter another: a value beyond authority is refused by field, then a valid one.
    page.locator(f"#open-{counter_me}").click()
    card = page.locator(f"#card-{counter_me}")
    card.get_by_text("Counter with other values").click()
    card.get_by_label("Reason").fill("We can meet you at 25")
    counter_input = card.locator(f"#counter-{counter_me}-discount_pct")
    counter_input.fill("29")
    card.get_by_role("button", name="Counter", exact=True).click()
    expect(card.locator(f"#counter-{counter_me}-discount_pct-error")).to_contain_text(
        "beyond what sales_director may approve"
    )
    card.locator(f"#counter-{counter_me}-discount_pct").fill("25")
    card.get_by_role("button", name="Counter", exact=True).click()
    expect(card).to_contain_text("Countered.")
    assert status_of(server, people, counter_me) == "countered"

    # Approve two at once.
    page.locator(f"#sel-{bulk_one}").check()
    page.locator(f"#sel-{bulk_two}").check()
    expect(page.locator("#approve-selected")).to_contain_text("(2)")
    page.locator("#approve-selected").click()
    expect(page.locator("#bulk-result")).to_contain_text("Approved 2 requests")
    assert status_of(server, people, bulk_one) == "approved"
    assert status_of(server, people, bulk_two) == "approved"
    shot(page, "flow-inbox-after-decisions-laptop")

    # Another approver decides while Sam reads the card: Sam's decision says so, decides nothing.
    page.locator(f"#open-{stale}").click()
    card = page.locator(f"#card-{stale}")
    expect(card).to_contain_text("Terms to decide")
    other = person(chromium, server, watch)
    sign_in(other, people.secrets["sara_sales_director"])
    other.goto(f"/requests/{stale}")
    other.get_by_role("button", name="Approve").click()
    expect(other.locator(f"#card-{stale}")).to_contain_text("Approved.")
    card.get_by_label("Reason").fill("Not at this price")
    card.get_by_role("button", name="Reject").click()
    expect(card).to_contain_text("This request changed since you opened it. Nothing was decided.")
    expect(card).to_contain_text("approved by sara_sales_director")
    assert status_of(server, people, stale) == "approved"
    shot(page, "flow-card-stale-laptop")

    # Sign out: the session ends, the inbox asks to sign in again.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in\?signed_out=1$"))
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto("/inbox")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/inbox$"))
    other.context.close()
    page.context.close()


def test_the_card_after_a_rep_changed_the_deal(
    chromium: Any, server: Server, people: Keys, watch: Watch
) -> None:
    request_id = submit(server, people, 1, discount=22, name="Acme renewal")["sales_director"]
    page = person(chromium, server, watch, PHONE)  # approvers decide from phones
    sign_in(page, people.secrets["sam_sales_director"])
    page.goto(f"/requests/{request_id}")
    shot(page, "flow-card-phone")
    moved = server.api.patch(
        "/v1/deals/0065g00000Brw001AA",
        json={"terms": {"discount_pct": 24}},
        headers=people.headers("rita_rep"),
    )
    assert moved.status_code == 200
    page.get_by_role("button", name="Approve").click()
    card = page.locator(f"#card-{request_id}")
    expect(card).to_contain_text("This request changed since you opened it. Nothing was decided.")
    expect(card).to_contain_text("Discount off list price: 22% → 24%")
    expect(card.locator('input[name="version"]')).to_have_value("2")
    card.get_by_role("button", name="Approve").click()  # on what it shows now
    expect(card).to_contain_text("Approved.")
    page.context.close()


@pytest.mark.parametrize(("width", "viewport"), [("laptop", LAPTOP), ("phone", PHONE)])
def test_every_main_page_renders_offline(
    chromium: Any, server: Server, people: Keys, watch: Watch, width: str, viewport: dict[str, int]
) -> None:
    requests = submit(server, people, 1, discount=30, name="Acme renewal")
    page = person(chromium, server, watch, viewport)
    page.goto("/sign-in")
    shot(page, f"sign-in-{width}")
    sign_in(page, people.secrets["admin"])
    expect(page.locator(".queue > li.row")).to_have_count(2)
    shot(page, f"inbox-{width}")
    page.goto(f"/requests/{requests['sales_director']}")
    expect(page.locator("svg.bar")).to_have_count(1)
    shot(page, f"request-{width}")
    page.goto("/deals")
    page.get_by_label("Opportunity Id").fill("0065g00000Brw001AA")
    page.get_by_role("button", name="Open deal").click()
    expect(page.get_by_role("heading", name="Acme renewal")).to_be_visible()
    shot(page, f"deal-{width}")
    page.goto("/simulator")
    page.get_by_label("Discount off list price (%)").fill("19")
    expect(page.locator("#sim-result")).to_contain_text("needs approval")
    page.get_by_label("Contract length (months)").fill("36")
    expect(page.locator("#sim-result")).to_contain_text("auto approved")
    shot(page, f"simulator-{width}")
    page.goto("/delegation")
    expect(page.get_by_role("heading", name="My delegation")).to_be_visible()
    shot(page, f"delegation-{width}")
    page.goto("/docs")
    # The docs bundles are large (1-2 MB of script to parse): slow on a busy machine.
    expect(page.locator(".swagger-ui .info")).to_contain_text(
        "Deal Governance Service", timeout=60_000
    )
    shot(page, f"docs-{width}", full_page=False)  # the API docs pages are very long
    page.goto("/redoc")
    expect(page.locator("h1").first).to_contain_text(
        "Deal Governance Service (0.1.0)", timeout=60_000
    )
    shot(page, f"redoc-{width}", full_page=False)
    page.context.close()
