"""The playbook pages: library, a version as a table, the draft editor with inline validation and
the ETag rule, what a draft changes (term by term and on recent deals), sign-off, publication,
and YAML import and export."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from typing import Any

import httpx
import pytest
from tests.conftest import Keys
from tests.web.conftest import Console, deal_id

pytestmark = pytest.mark.usefixtures("demo_published")

DRAFT = "/playbooks/standard/versions/2"
ETAG = re.compile(r'name="etag" value="([^"]+)"')


async def signed_in(consoles: Callable[[], Console], keys: Keys, name: str) -> Console:
    console = consoles()
    assert (await console.sign_in(keys.secrets[name])).status_code == 303
    return console


def discount_form(etag: str, **changes: str) -> dict[str, str]:
    """The demo's discount term as its form posts it, with `changes`."""
    form = {
        "etag": etag, "kind": "number", "tier_rows": "3", "label": "Discount off list price",
        "owner": "finance", "priority": "1",
        "gets": "multi-year commitment\nannual prepayment\npublic case study",
        "unit": "%", "direction": "lower_is_better", "band.low": "0", "band.high": "15",
        "walk_away": "35", "target": "8", "opening": "0",
        "tiers[0].limit": "25", "tiers[0].approver": "sales_director",
        "tiers[1].limit": "35", "tiers[1].approver": "finance",
        "tiers[2].limit": "", "tiers[2].approver": "",
    }  # fmt: skip
    form.update(changes)
    return form


async def start_draft(console: Console) -> str:
    """Start draft version 2 and return its ETag as the editor shows it."""
    await console.page("/playbooks/standard/versions/1")
    started = await console.post("/playbooks/standard/drafts", {})
    assert started.status_code == 303
    assert started.headers["location"] == f"{DRAFT}?done=draft"
    return await editor_etag(console)


async def editor_etag(console: Console) -> str:
    page = await console.page(f"{DRAFT}/terms/discount_pct")
    assert page.status_code == 200, page.text
    found = ETAG.search(page.text)
    assert found
    return unescape(found.group(1))


async def store_deal(client: httpx.AsyncClient, keys: Keys, n: int, discount: int) -> None:
    stored = await client.put(
        f"/v1/deals/{deal_id(n)}",
        json={
            "name": f"Impact deal {n}",
            "attributes": {"region": "EMEA", "amount": "100000", "currency": "EUR"},
            "terms": {"discount_pct": discount, "contract_months": 12,
                      "billing_frequency": "semi_annual"},
        },
        headers=keys.headers("rita_rep"),
    )  # fmt: skip
    assert stored.status_code == 201, stored.text
    checked = await client.post(f"/v1/deals/{deal_id(n)}/checks", headers=keys.headers("rita_rep"))
    assert checked.status_code in (200, 201), checked.text


@pytest.mark.parametrize("who", ["leadership", "approver", "admin"])
async def test_the_library_lists_each_playbook_for_the_roles_that_read_it(
    people: Keys, consoles: Callable[[], Console], who: str
) -> None:
    console = await signed_in(consoles, people, who)
    page = await console.page("/playbooks")
    assert page.status_code == 200
    assert "Standard B2B SaaS terms" in page.text
    assert "every deal" in page.text  # the empty scope
    assert 'href="/playbooks/standard/versions/1">version 1' in page.text
    assert 'href="/playbooks"' in page.text
    assert 'aria-current="page">Playbooks' in page.text
    assert ("Import YAML" in page.text) is (who != "approver")


@pytest.mark.parametrize(
    "path",
    [
        "/playbooks",
        "/playbooks/standard/versions/1",
        "/playbooks/standard/versions/1/changes",
        "/playbooks/standard/versions/1/export",
    ],
)
async def test_reps_and_integrations_get_a_403_page(
    people: Keys, consoles: Callable[[], Console], path: str
) -> None:
    for who in ("rep", "integration"):
        console = await signed_in(consoles, people, who)
        page = await console.page(path)
        assert page.status_code == 403
        assert "This page is not for your role" in page.text
        assert "text/html" in page.headers["content-type"]


async def test_approvers_read_but_do_not_edit(
    people: Keys, consoles: Callable[[], Console]
) -> None:
    lead = await signed_in(consoles, people, "leadership")
    await start_draft(lead)
    fiona = await signed_in(consoles, people, "fiona_finance")
    page = await fiona.page(DRAFT)
    assert page.status_code == 200
    assert "Start a draft" not in page.text
    assert ">Edit</a>" not in page.text
    assert (await fiona.page(f"{DRAFT}/terms/discount_pct")).status_code == 403
    refused = await fiona.post(f"{DRAFT}/terms/discount_pct", discount_form('"x"'))
    assert refused.status_code == 403
    assert "Only leadership edits playbooks" in refused.text


async def test_a_version_is_a_table_of_terms_in_priority_order_with_bars(
    people: Keys, consoles: Callable[[], Console]
) -> None:
    console = await signed_in(consoles, people, "approver")
    page = await console.page("/playbooks/standard")
    assert page.status_code == 303 or page.url.path.endswith("/versions/1")
    html = (await console.page("/playbooks/standard/versions/1")).text
    keys = re.findall(r'<tr id="term-([a-z_]+)"', html)
    assert keys[:3] == ["discount_pct", "uncapped_liability", "liability_cap_multiple"]
    assert len(keys) == 12
    assert html.count('<svg class="bar"') == 7  # the number terms; choices and flags are chips
    assert "Band 0% to 15%" in html
    assert "up to 25%: sales director · up to 35%: finance" in html
    assert "walk-away 35%" in html
    assert (
        '<strong>multi year widens discount</strong>: +5% on the worse side<span class="pb-rule-when">when contract months &gt;= 36</span>'
        in html
    )
    assert "public case study" in html  # the gets
    assert "Export YAML" in html


async def test_leadership_edits_a_draft_with_the_api_validation_inline(
    people: Keys, consoles: Callable[[], Console], client: httpx.AsyncClient
) -> None:
    lead = await signed_in(consoles, people, "leadership")
    etag = await start_draft(lead)

    # While typing: a tier past the walk-away is named at its field, and nothing is saved.
    checked = await lead.post(
        f"{DRAFT}/terms/discount_pct/check",
        discount_form(etag, **{"tiers[1].limit": "40"}),
        htmx=True,
    )
    assert checked.status_code == 200
    error = re.search(r'<span class="field-error" id="err-tiers-1-limit" hx-swap-oob="true">(.*?)</span>', checked.text, re.S)  # fmt: skip
    assert error, checked.text
    assert "the last tier must end at walk_away 35, not 40" in error.group(1)
    assert "terms[0].tiers[1].limit" in error.group(1)
    assert 'id="err-band-high" hidden hx-swap-oob="true"' in checked.text  # cleared

    # Saving the same is refused at the same field; the typed values stay.
    refused = await lead.post(
        f"{DRAFT}/terms/discount_pct", discount_form(etag, **{"tiers[1].limit": "40"})
    )
    assert refused.status_code == 422
    assert "Not saved: correct the fields marked below." in refused.text
    assert 'id="f-tiers-1-limit" name="tiers[1].limit" value="40"' in refused.text
    assert 'aria-invalid="true"' in refused.text

    saved = await lead.post(
        f"{DRAFT}/terms/discount_pct", discount_form(etag, **{"band.high": "18"})
    )
    assert saved.status_code == 303
    page = await lead.page(DRAFT)
    assert "Band 0% to 18%" in page.text
    api = await client.get("/v1/playbooks/standard/versions/2", headers=people.headers("admin"))
    assert api.json()["document"]["terms"][0]["band"]["high"] == "18"
    assert api.json()["missing_signoffs"] == ["finance"]


async def test_the_second_of_two_editors_is_refused_not_overwritten(
    people: Keys, consoles: Callable[[], Console], client: httpx.AsyncClient
) -> None:
    first = await signed_in(consoles, people, "leadership")
    await start_draft(first)
    second = await signed_in(consoles, people, "admin")
    etag_first = await editor_etag(first)
    etag_second = await editor_etag(second)
    assert etag_first == etag_second
    saved = await first.post(f"{DRAFT}/terms/discount_pct", discount_form(etag_first, **{"band.high": "18"}))  # fmt: skip
    assert saved.status_code == 303
    refused = await second.post(
        f"{DRAFT}/terms/discount_pct", discount_form(etag_second, **{"band.high": "20"}), htmx=True
    )
    assert refused.status_code == 200
    assert refused.headers["X-Governance-Status"] == "412"
    assert "Someone else saved this draft after you opened it" in refused.text
    assert 'name="band.high" value="20"' in refused.text  # what they typed, still there
    api = await client.get("/v1/playbooks/standard/versions/2", headers=people.headers("admin"))
    assert api.json()["document"]["terms"][0]["band"]["high"] == "18"


async def test_terms_and_rules_are_added_removed_and_reordered(
    people: Keys, consoles: Callable[[], Console], client: httpx.AsyncClient
) -> None:
    lead = await signed_in(consoles, people, "leadership")
    await start_draft(lead)

    async def etag() -> str:
        found = ETAG.search((await lead.page(DRAFT)).text)
        assert found
        return unescape(found.group(1))

    new = await lead.page(
        f"{DRAFT}/new-term?key=onboarding_days&kind=number", follow_redirects=True
    )
    assert new.status_code == 200
    assert "New term" in new.text
    assert 'name="priority" value="13"' in new.text
    form = {
        "etag": await etag(), "kind": "number", "tier_rows": "1", "label": "Onboarding",
        "owner": "product", "priority": "13", "gets": "", "unit": "days",
        "direction": "lower_is_better", "band.low": "0", "band.high": "30", "walk_away": "60",
        "tiers[0].limit": "60", "tiers[0].approver": "product",
    }  # fmt: skip
    assert (await lead.post(f"{DRAFT}/terms/onboarding_days", form)).status_code == 303
    moved = await lead.post(f"{DRAFT}/terms/onboarding_days/move", {"etag": await etag(), "direction": "up"})  # fmt: skip
    assert moved.status_code == 303
    html = (await lead.page(DRAFT)).text
    keys = re.findall(r'<tr id="term-([a-z_]+)"', html)
    assert keys[-2:] == ["onboarding_days", "billing_frequency"]

    rule = "key: long_onboarding\nwhen: [{attribute: segment, op: '==', value: smb}]\nthen: [{term: onboarding_days, shift: 15}]"  # fmt: skip
    assert (
        await lead.post(f"{DRAFT}/rules", {"etag": await etag(), "rule": rule})
    ).status_code == 303
    bad = "key: bad_rule\nwhen: [{term: no_such_term, op: '>=', value: 3}]\nthen: [{term: discount_pct, shift: 1}]"  # fmt: skip
    refused = await lead.post(f"{DRAFT}/rules", {"etag": await etag(), "rule": bad})
    assert refused.status_code == 422
    assert "rules[7].when[0].term</code> unknown term" in refused.text
    removed = await lead.post(
        f"{DRAFT}/rules/prepay_widens_discount/delete", {"etag": await etag()}
    )
    assert removed.status_code == 303
    kept = await lead.post(f"{DRAFT}/terms/free_months/delete", {"etag": await etag()})
    assert kept.status_code == 422  # a rule still shifts it: the page says which
    assert "rules[2].then[1].term: unknown term &#39;free_months&#39;" in kept.text
    gone = await lead.post(f"{DRAFT}/terms/termination_for_convenience/delete", {"etag": await etag()})  # fmt: skip
    assert gone.status_code == 303

    doc = (await client.get("/v1/playbooks/standard/versions/2", headers=people.headers("admin"))).json()["document"]  # fmt: skip
    assert [r["key"] for r in doc["rules"]][-1] == "long_onboarding"
    assert "prepay_widens_discount" not in [r["key"] for r in doc["rules"]]
    assert "termination_for_convenience" not in [t["key"] for t in doc["terms"]]
    assert {t["key"]: t["priority"] for t in doc["terms"]}["onboarding_days"] == 12


async def test_an_emptied_field_says_required(
    people: Keys, consoles: Callable[[], Console]
) -> None:
    lead = await signed_in(consoles, people, "leadership")
    etag = await start_draft(lead)
    refused = await lead.post(
        f"{DRAFT}/terms/discount_pct", discount_form(etag, **{"band.high": "", "owner": " "})
    )
    assert refused.status_code == 422
    for name in ("band-high", "owner"):
        error = re.search(rf'<span class="field-error" id="err-{name}">(.*?)</span>', refused.text)
        assert error, name
        assert error.group(1).startswith("required <code"), error.group(1)
    assert "is not a number" not in refused.text
    assert "should match pattern" not in refused.text


@pytest.mark.parametrize(
    "rows", ["²", "9" * 5000, "-1", ""], ids=["superscript", "huge", "neg", "empty"]
)
async def test_a_tampered_tier_row_count_still_checks_the_term(
    people: Keys, consoles: Callable[[], Console], rows: str
) -> None:
    lead = await signed_in(consoles, people, "leadership")
    etag = await start_draft(lead)
    checked = await lead.post(
        f"{DRAFT}/terms/discount_pct/check", discount_form(etag, tier_rows=rows), htmx=True
    )
    assert checked.status_code == 200, checked.text
    # No tier row read: the term has no tiers, which the check names at its field.
    assert "terms[0].tiers" in checked.text


@pytest.mark.parametrize(
    ("rule", "said"),
    [
        ("key: [broken", "not valid YAML at line 2 column 1"),
        (
            "key: twice\nkey: again\nwhen: []\nthen: [{term: discount_pct, shift: 1}]",
            "duplicate key &#39;key&#39;",
        ),
        (
            "key: odd\nwhen: [{term: contract_months, op: '>=', value: 36}]\n"
            "then: [{term: discount_pct, shift: !!float abc}]",
            "then[0].shift",
        ),
        ("key: " + "[" * 5000, "not valid YAML"),
    ],
    ids=["not-yaml", "duplicate-key", "malformed-number", "too-deep"],
)
async def test_a_rule_that_is_not_yaml_is_refused_at_the_rule_box(
    people: Keys,
    consoles: Callable[[], Console],
    client: httpx.AsyncClient,
    rule: str,
    said: str,
) -> None:
    lead = await signed_in(consoles, people, "leadership")
    await start_draft(lead)
    found = ETAG.search((await lead.page(DRAFT)).text)
    assert found
    refused = await lead.post(f"{DRAFT}/rules", {"etag": unescape(found.group(1)), "rule": rule})
    assert refused.status_code == 422, refused.text
    assert said in refused.text
    assert "Something went wrong" not in refused.text
    doc = (await client.get(f"/v1{DRAFT}", headers=people.headers("admin"))).json()["document"]
    assert len(doc["rules"]) == 6  # the demo's, untouched


async def test_what_changes_shows_terms_and_the_impact_on_recent_deals(
    people: Keys, consoles: Callable[[], Console], client: httpx.AsyncClient
) -> None:
    await store_deal(client, people, 1, 17)  # needs the sales director today, not with 18
    await store_deal(client, people, 2, 10)  # within either way
    await store_deal(client, people, 3, 30)  # finance either way
    lead = await signed_in(consoles, people, "leadership")
    etag = await start_draft(lead)
    await lead.post(f"{DRAFT}/terms/discount_pct", discount_form(etag, **{"band.high": "18"}))
    page = await lead.page(f"{DRAFT}/changes")
    assert page.status_code == 200
    html = page.text
    summary = re.search(r'<p id="impact-summary"[^>]*>(.*?)</p>', html, re.S)
    assert summary
    assert "<strong>1 of 3</strong> deals" in summary.group(1)
    assert re.search(r"1 from <span class=\"badge badge-needs_approval\">needs approval</span> to <span class=\"badge badge-auto_approved\">", html)  # fmt: skip
    terms = re.search(r'<table class="pb-compact" id="impact-terms">(.*?)</table>', html, re.S)
    assert terms
    assert "Discount off list price" in terms.group(1)
    assert '<span class="pb-less">1 deal</span>' in terms.group(1)
    groups = re.search(r'id="impact-groups">(.*?)</table>', html, re.S)
    assert groups
    assert re.search(
        r"sales director</td><td class=\"num\">2</td><td class=\"num\">1</td>", groups.group(1)
    )
    change = re.search(r'<tr id="change-discount_pct" class="pb-changed">(.*?)</tr>\s*<tr id=', html, re.S)  # fmt: skip
    assert change
    assert "<del>0% to 15%</del>" in change.group(1)
    assert "<ins>0% to 18%</ins>" in change.group(1)
    assert 'id="change-uncapped_liability" class="pb-same"' in html
    assert "Waiting for sign-off from <strong>finance</strong>" in html

    # Bounded: a window that holds no check, and a count of one.
    assert "No deal was checked" not in html
    one = await lead.page(f"{DRAFT}/changes?days=30&limit=1")
    assert re.search(r"<strong>\d of 1</strong> deal checked", one.text)
    bad = await lead.page(f"{DRAFT}/changes?days=0")
    assert bad.status_code == 422


async def test_owners_sign_off_and_leadership_publishes(
    people: Keys, consoles: Callable[[], Console], client: httpx.AsyncClient
) -> None:
    lead = await signed_in(consoles, people, "leadership")
    etag = await start_draft(lead)
    await lead.post(f"{DRAFT}/terms/discount_pct", discount_form(etag, **{"band.high": "18"}))
    page = await lead.page(DRAFT)
    assert "Publish version 2" not in page.text
    early = await lead.post(f"{DRAFT}/publish", {})
    assert early.status_code == 409
    assert "Not published: cannot publish: sign-off missing from finance" in early.text

    lee = await signed_in(consoles, people, "lee_legal")
    assert "Sign off for" not in (await lee.page(DRAFT)).text
    fiona = await signed_in(consoles, people, "fiona_finance")
    page = await fiona.page(f"{DRAFT}/changes")
    assert "Sign off for finance</button>" in page.text
    signed = await fiona.post(f"{DRAFT}/signoffs", {"group": "finance", "back": "changes"})
    assert signed.status_code == 303
    assert "/changes?done=signed" in signed.headers["location"]
    assert "signed by fiona_finance" in (await fiona.page(DRAFT)).text
    assert (await lead.post(f"{DRAFT}/signoffs", {"group": "finance"})).status_code == 403

    page = await lead.page(DRAFT)
    assert "Publish version 2" in page.text
    published = await lead.post(f"{DRAFT}/publish", {})
    assert published.status_code == 303
    assert "Published: checks use this version" in (await lead.page(published.headers["location"])).text  # fmt: skip
    check = await client.post(
        "/v1/checks",
        json={"terms": {"discount_pct": 17}, "attributes": {"region": "EMEA"}},
        headers=people.headers("rita_rep"),
    )
    assert check.status_code == 200, check.text
    body: dict[str, Any] = check.json()
    assert body["verdict"] == "auto_approved"
    assert body["playbook"]["version"] == 2


@pytest.mark.parametrize(
    ("form", "said"),
    [
        ({"group": "finance", "note": "n" * 2001}, "note: String should have at most 2000"),
        ({"group": "Finance Team"}, "group: String should match pattern"),
    ],
    ids=["note-too-long", "not-a-group-name"],
)
async def test_a_crafted_sign_off_is_refused_as_the_api_refuses_it(
    people: Keys,
    consoles: Callable[[], Console],
    client: httpx.AsyncClient,
    form: dict[str, str],
    said: str,
) -> None:
    lead = await signed_in(consoles, people, "leadership")
    etag = await start_draft(lead)
    await lead.post(f"{DRAFT}/terms/discount_pct", discount_form(etag, **{"band.high": "18"}))
    admin = await signed_in(consoles, people, "admin")
    await admin.page(DRAFT)
    refused = await admin.post(f"{DRAFT}/signoffs", form)
    assert refused.status_code == 422, refused.text
    assert said in refused.text
    api = await client.get(f"/v1{DRAFT}", headers=people.headers("admin"))
    assert api.json()["missing_signoffs"] == ["finance"]


async def test_yaml_export_and_import_from_the_pages(
    people: Keys, consoles: Callable[[], Console], client: httpx.AsyncClient
) -> None:
    lead = await signed_in(consoles, people, "leadership")
    exported = await lead.page("/playbooks/standard/versions/1/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/yaml")
    assert 'filename="standard-v1.yaml"' in exported.headers["content-disposition"]
    text = exported.text.replace("key: standard", "key: emea", 1).replace(
        "scope: {}", "scope:\n  region: EMEA", 1
    )
    await lead.page("/playbooks")
    imported = await lead.http.post(
        "/playbooks/import",
        data={"csrf_token": lead.csrf},
        files={"file": ("emea.yaml", text.encode(), "application/yaml")},
    )
    assert imported.status_code == 303, imported.text
    assert imported.headers["location"] == "/playbooks/emea/versions/1?done=imported"
    library = (await lead.page("/playbooks")).text
    assert "region = EMEA" in library
    broken = await lead.post("/playbooks/import", {"yaml": text.replace("high: 15", "high: -3", 1)})
    assert broken.status_code == 422
    assert "Not imported." in broken.text
    assert "terms[0].band.low" in broken.text


async def test_choice_and_flag_terms_have_their_own_forms(
    people: Keys, consoles: Callable[[], Console], client: httpx.AsyncClient
) -> None:
    lead = await signed_in(consoles, people, "leadership")
    await start_draft(lead)
    choice = await lead.page(f"{DRAFT}/terms/support_level")
    assert choice.status_code == 200
    assert 'name="band.allowed" value="standard, premium"' in choice.text
    assert 'name="tiers[0].options" value="platinum"' in choice.text
    etag = unescape(ETAG.search(choice.text).group(1))  # type: ignore[union-attr]
    form = {
        "etag": etag, "kind": "choice", "tier_rows": "2", "label": "Support level included",
        "owner": "product", "priority": "6", "gets": "", "options": "standard\npremium\nplatinum",
        "band.allowed": "standard", "target": "standard", "opening": "standard",
        "tiers[0].options": "premium", "tiers[0].approver": "product",
        "tiers[1].options": "diamond", "tiers[1].approver": "product",
    }  # fmt: skip
    refused = await lead.post(f"{DRAFT}/terms/support_level", form)
    assert refused.status_code == 422
    assert "&#39;diamond&#39; is not one of the term&#39;s options" in refused.text
    assert "terms[5].tiers[1].options[0]" in refused.text
    form["tiers[1].options"] = "platinum"
    assert (await lead.post(f"{DRAFT}/terms/support_level", form)).status_code == 303

    flag = await lead.page(f"{DRAFT}/terms/uncapped_liability")
    assert flag.status_code == 200
    assert '<option value="false" selected>no</option>' in flag.text
    assert 'name="tiers[1].approver" value="general_counsel"' in flag.text

    doc = (await client.get("/v1/playbooks/standard/versions/2", headers=people.headers("admin"))).json()["document"]  # fmt: skip
    support = next(t for t in doc["terms"] if t["key"] == "support_level")
    assert support["band"] == {"allowed": ["standard"]}
    assert [t["options"] for t in support["tiers"]] == [["premium"], ["platinum"]]
