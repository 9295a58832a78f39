"""The deal page, the check simulator, the delegation page, the API docs and static files."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from tests.conftest import Keys
from tests.web.conftest import Console, deal_id, request_of, submit_deal

from governance.web.rendering import STATIC

pytestmark = pytest.mark.usefixtures("demo_published")


async def signed_in(consoles: Callable[[], Console], keys: Keys, name: str) -> Console:
    console = consoles()
    assert (await console.sign_in(keys.secrets[name])).status_code == 303
    return console


# --- deals -------------------------------------------------------------------------------------


async def test_the_deal_page_shows_check_history_requests_and_outcome(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console]
) -> None:
    submission = await submit_deal(client, people, 1, name="Globex expansion")
    rep = people.headers("rita_rep")
    await client.patch(f"/v1/deals/{deal_id(1)}", json={"terms": {"discount_pct": 20}}, headers=rep)
    legal = request_of(submission, "legal")["id"]
    etag = (await client.get(f"/v1/approvals/{legal}", headers=rep)).headers["ETag"]
    await client.post(
        f"/v1/approvals/{legal}/decision",
        json={"decision": "reject", "reason": "Cap too high"},
        headers={**people.headers("lee_legal"), "If-Match": etag},
    )
    outcome = await client.post(
        f"/v1/deals/{deal_id(1)}/outcome",
        json={"won": False, "loss_reason": "went with a rival"},
        headers=rep,
    )
    assert outcome.status_code in (200, 201), outcome.text
    rita = await signed_in(consoles, people, "rita_rep")
    page = await rita.page(f"/deals/{deal_id(1)}")
    assert page.status_code == 200
    html = page.text
    assert "<h1>Globex expansion</h1>" in html
    assert "Current check" in html
    assert "Discount off list price" in html
    assert 'class="marker-line"' in html
    assert html.count("<td>2026") + html.count("UTC</td>") >= 2  # two checks in the history
    assert "Cap too high" in html  # the decision and its reason
    assert "badge-rejected" in html
    assert "went with a rival" in html  # the outcome
    assert "Round 1 (current)" in html


async def test_a_deal_is_found_by_its_opportunity_id(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console]
) -> None:
    await submit_deal(client, people, 1)
    admin = await signed_in(consoles, people, "admin")
    listed = await admin.page("/deals")
    assert f'href="/deals/{deal_id(1)}"' in listed.text
    found = await admin.http.get("/deals", params={"q": f" {deal_id(1)} "})
    assert found.status_code == 303
    assert found.headers["location"] == f"/deals/{deal_id(1)}"
    short = await admin.http.get("/deals", params={"q": "0065g00000AbCdE"})
    assert short.headers["location"] == "/deals/0065g00000AbCdEAAV"  # 15 characters work too
    bad = await admin.page("/deals", params={"q": "acme"})
    assert bad.status_code == 422
    assert "is not an Opportunity Id" in bad.text
    assert 'aria-invalid="true"' in bad.text
    missing = await admin.page("/deals/0065g00000Nothing1")
    assert missing.status_code == 404
    assert "No deal has the Opportunity Id" in missing.text


# --- simulator ---------------------------------------------------------------------------------


async def test_the_simulator_builds_inputs_from_the_playbook(
    people: Keys, consoles: Callable[[], Console]
) -> None:
    rita = await signed_in(consoles, people, "rita_rep")
    page = await rita.page("/simulator")
    assert page.status_code == 200
    html = page.text
    assert 'name="t.discount_pct"' in html
    assert 'inputmode="decimal"' in html
    assert re.search(r'<select id="f-t-support_level" name="t.support_level"', html)  # a choice
    assert '<option value="platinum">platinum</option>' in html
    assert re.search(r'type="checkbox" id="f-t-uncapped_liability"', html)  # a flag
    assert 'hx-get="/simulator/result"' in html
    assert 'hx-trigger="input delay:300ms' in html
    assert "Enter at least one term to see the verdict." in html


async def test_the_simulator_checks_as_you_type_and_stores_nothing(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console]
) -> None:
    rita = await signed_in(consoles, people, "rita_rep")
    result = await rita.page(
        "/simulator/result",
        params={
            "fields_for": "standard",
            "a.amount": "120000",
            "t.discount_pct": "27",
            "t.billing_frequency": "annual_upfront",
            "t.uncapped_liability": ["false", "true"],  # hidden false, then the ticked box
        },
        headers={"HX-Request": "true"},
    )
    assert result.status_code == 200
    html = result.text
    assert "<html" not in html
    assert 'id="sim-fields"' not in html
    assert "badge-needs_approval" in html
    assert "Approvals it would need" in html
    assert "sales director" in html
    assert "legal" in html
    assert "ask for Contract length ≥ 36 months" in html
    assert "Prepay widens discount" in html or "prepay widens discount" in html
    deals = await client.get("/v1/deals", headers=people.headers("admin"))
    assert deals.json()["items"] == []  # nothing stored
    audit = await client.get("/v1/audit?action=deal.checked", headers=people.headers("admin"))
    assert audit.json()["items"] == []


async def test_the_simulator_shows_errors_by_field(
    people: Keys, consoles: Callable[[], Console]
) -> None:
    rita = await signed_in(consoles, people, "rita_rep")
    result = await rita.page(
        "/simulator/result",
        params={"fields_for": "standard", "t.discount_pct": "lots", "a.amount": "-5"},
        headers={"HX-Request": "true"},
    )
    assert result.status_code == 200
    assert 'href="#f-a-amount"' in result.text
    full = await rita.page(
        "/simulator", params={"t.discount_pct": "lots", "t.contract_months": "12"}
    )
    assert 'id="f-t-discount_pct-error"' in full.text
    assert "is not a finite number" in full.text
    assert 'aria-invalid="true"' in full.text


async def test_the_simulator_can_be_pinned_to_a_playbook(
    people: Keys, consoles: Callable[[], Console]
) -> None:
    admin = await signed_in(consoles, people, "admin")
    page = await admin.page("/simulator", params={"playbook": "standard", "t.discount_pct": "10"})
    assert '<option value="standard" selected>' in page.text
    assert "badge-auto_approved" in page.text
    unknown = await admin.page("/simulator", params={"playbook": "nope", "t.discount_pct": "10"})
    assert "no published version of playbook" in unknown.text


# --- delegation --------------------------------------------------------------------------------


async def test_delegation_errors_are_shown_by_field(
    people: Keys, consoles: Callable[[], Console]
) -> None:
    lee = await signed_in(consoles, people, "lee_legal")
    page = await lee.page("/delegation")
    assert "You have not delegated." in page.text
    refused = await lee.post(
        "/delegation",
        {"delegate": "rita_rep", "starts_at": "2030-01-01T09:00", "ends_at": "2030-01-05T09:00"},
    )
    assert refused.status_code == 422
    assert 'id="d-delegate-error"' in refused.text
    assert "cannot decide approvals" in refused.text
    backwards = await lee.post(
        "/delegation",
        {"delegate": "fiona_finance", "starts_at": "2030-01-05T09:00", "ends_at": "2030-01-01T09:00"},
    )  # fmt: skip
    assert backwards.status_code == 422
    assert 'id="d-ends_at-error"' in backwards.text
    no_token = await lee.post("/delegation", {"delegate": "fiona_finance"}, token=False)
    assert no_token.status_code == 403


async def test_only_deciders_have_a_delegation_page(
    people: Keys, consoles: Callable[[], Console]
) -> None:
    rita = await signed_in(consoles, people, "rita_rep")
    assert (await rita.page("/delegation")).status_code == 403


# --- docs and static files ---------------------------------------------------------------------


async def test_the_api_docs_load_only_the_apps_own_assets(client: httpx.AsyncClient) -> None:
    for path, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        page = await client.get(path)
        assert page.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources
        assert all(s.startswith("/") for s in sources), sources
        assert any(asset in s for s in sources)
        assert "googleapis" not in page.text
        assert "cdn.jsdelivr" not in page.text
        csp = page.headers["content-security-policy"]
        inline = "'sha256-" in csp  # Swagger UI's one inline script is allowed by its hash
        assert inline == (path == "/docs"), csp
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', (await client.get("/docs")).text):
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_the_vendored_files_are_there_with_their_licenses() -> None:
    vendor = STATIC / "vendor"
    for name in (
        "htmx.min.js", "htmx.LICENSE", "swagger-ui-bundle.js", "swagger-ui.css",
        "favicon-32x32.png", "swagger-ui.LICENSE", "redoc.standalone.js", "redoc.LICENSE",
        "README.md",
    ):  # fmt: skip
        assert (vendor / name).is_file(), name
    assert b"cdn.redoc.ly" not in (vendor / "redoc.standalone.js").read_bytes()


async def test_pages_stay_out_of_the_openapi_contract(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert all(p.startswith(("/v1/", "/healthz", "/readyz")) for p in paths)


async def test_when_scope_picks_another_playbook_its_terms_replace_the_form(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console], demo_yaml: str
) -> None:
    regional = demo_yaml.replace("key: standard", "key: north_america", 1)
    regional = regional.replace("name: Standard B2B SaaS terms", "name: North America terms", 1)
    regional = regional.replace("scope: {}", "scope: {region: NA}", 1)
    regional = regional.replace("band: {low: 0, high: 15}", "band: {low: 0, high: 12}", 1)
    imported = await client.post(
        "/v1/playbooks/import?publish=true",
        content=regional,
        headers={**people.headers("admin"), "Content-Type": "application/yaml"},
    )
    assert imported.status_code == 201, imported.text
    rita = await signed_in(consoles, people, "rita_rep")
    result = await rita.page(
        "/simulator/result",
        params={"fields_for": "standard", "a.region": "NA", "t.discount_pct": "14"},
        headers={"HX-Request": "true"},
    )
    assert 'id="sim-fields" hx-swap-oob="outerHTML"' in result.text
    assert "Terms of North America terms" in result.text
    assert 'name="fields_for" value="north_america"' in result.text
    assert "badge-needs_approval" in result.text  # 14 is past North America's band edge of 12
    assert 'value="14"' in result.text  # what was typed survives the new form


async def test_the_deal_page_names_the_salesforce_rep_who_accepted_a_counter(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console]
) -> None:
    submission = await submit_deal(client, people, 1, discount=20)
    director = request_of(submission, "sales_director")["id"]
    etag = (
        await client.get(f"/v1/approvals/{director}", headers=people.headers("sam_sales_director"))
    ).headers["ETag"]
    countered = await client.post(
        f"/v1/approvals/{director}/decision",
        json={"decision": "counter", "reason": "18 at most", "counter_terms": {"discount_pct": 18}},
        headers={**people.headers("sam_sales_director"), "If-Match": etag},
    )
    assert countered.status_code == 200, countered.text
    accepted = await client.post(
        f"/v1/deals/{deal_id(1)}/accept-counter",
        json={"request_id": director},
        headers={**people.headers("integration"), "X-Acting-User": "005Dn000001AbCd"},
    )
    assert accepted.status_code == 200, accepted.text
    admin = await signed_in(consoles, people, "admin")
    html = (await admin.page(f"/deals/{deal_id(1)}")).text
    assert "counter accepted by Salesforce user 005Dn000001AbCdIAK (via integration)" in html


async def test_a_browser_at_an_unknown_address_gets_a_page_programs_a_problem(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console]
) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    sam = await signed_in(consoles, people, "sam_sales_director")
    page = await sam.page("/inboxx", headers=browser)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "No such page" in page.text
    assert "The console has no page at /inboxx" in page.text
    assert 'href="/">Back to the console</a>' in page.text
    # A program (no text/html in Accept), and anything under /v1, keep the problem.
    for path, headers in (("/inboxx", {}), ("/v1/nothing", browser), ("/static/none.css", browser)):
        problem = await client.get(path, headers={**people.headers("admin"), **headers})
        assert problem.status_code == 404, path
        assert problem.headers["content-type"] == "application/problem+json", path
