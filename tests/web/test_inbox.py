"""The inbox and a request's card: what an approver sees, and decisions through the forms."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from tests.conftest import Keys
from tests.web.conftest import Console, deal_id, request_of, submit_deal

from governance.approvals.models import ApprovalRequest
from governance.db import Database, utcnow

pytestmark = pytest.mark.usefixtures("demo_published")


async def signed_in(consoles: Callable[[], Console], keys: Keys, name: str) -> Console:
    console = consoles()
    response = await console.sign_in(keys.secrets[name])
    assert response.status_code == 303, response.text
    return console


async def api_request(client: httpx.AsyncClient, keys: Keys, request_id: int) -> dict[str, object]:
    response = await client.get(f"/v1/approvals/{request_id}", headers=keys.headers("admin"))
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def outcome(response: httpx.Response) -> int:
    """What a form post came to: htmx gets 200 with the refusal's status in a header (so the
    browser logs no failed request); a plain form post gets the status itself."""
    assert response.status_code == 200, response.text
    return int(response.headers.get("X-Governance-Status", "200"))


def shown_of(card: str) -> str:
    """What a card's form says it showed (the hidden `shown` field)."""
    found = re.search(r'name="shown" value="([^"]+)"', card)
    assert found, card
    return html.unescape(found.group(1))


def row_ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<li class="row [a-z]+" id="row-(\d+)"', page)]


async def test_the_inbox_lists_the_callers_queue_overdue_first(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console], db: Database
) -> None:
    first = await submit_deal(client, people, 1, name="Oldest deal")
    second = await submit_deal(client, people, 2, name="Overdue deal")
    third = await submit_deal(client, people, 3, name="Newest deal")
    overdue_id = request_of(second, "sales_director")["id"]
    with db.unit_of_work() as session:  # the second request's SLA ran out two hours ago
        row = session.get(ApprovalRequest, overdue_id)
        assert row is not None
        row.due_at = utcnow() - timedelta(hours=2)
    sam = await signed_in(consoles, people, "sam_sales_director")
    page = await sam.page("/inbox")
    assert page.status_code == 200
    ids = row_ids(page.text)
    assert ids == [
        overdue_id,
        request_of(first, "sales_director")["id"],
        request_of(third, "sales_director")["id"],
    ]
    assert "overdue by 2 h" in page.text
    assert "1 overdue" in page.text
    assert "23 h 59 min left" in page.text or "24 h left" in page.text  # the SLA time left
    assert "Discount off list price: <strong>30%</strong>" in page.text
    # Only the sales director's requests: legal's are not in Sam's queue.
    assert all(f"row-{request_of(s, 'legal')['id']}" not in page.text for s in (first, second))


async def test_the_inbox_filters_like_the_api(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console]
) -> None:
    submission = await submit_deal(client, people, 1)
    admin = await signed_in(consoles, people, "admin")
    everything = await admin.page("/inbox")
    assert len(row_ids(everything.text)) == 2  # admins see every group: sales director, legal
    legal = await admin.page("/inbox?group=legal")
    assert row_ids(legal.text) == [request_of(submission, "legal")["id"]]
    waiting = await admin.page("/inbox?status=waiting")
    assert row_ids(waiting.text) == [request_of(submission, "finance")["id"]]
    old = await admin.page("/inbox?age=24")
    assert row_ids(old.text) == []
    assert "No request waits for you" in old.text
    fragment = await admin.page("/inbox?group=legal", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text  # htmx gets only the content block
    assert 'id="row-' in fragment.text
    sam = await signed_in(consoles, people, "sam_sales_director")
    refused = await sam.page("/inbox?group=legal")
    assert refused.status_code == 403


async def test_a_card_has_everything_to_decide(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console]
) -> None:
    submission = await submit_deal(client, people, 1, name="Acme renewal")
    request_id = request_of(submission, "sales_director")["id"]
    sam = await signed_in(consoles, people, "sam_sales_director")
    card = await sam.page(f"/requests/{request_id}/card")
    assert card.status_code == 200
    html = card.text
    assert "<html" not in html
    assert "Acme renewal" in html
    # The term against its band: value, band, tiers and walk-away, with the marker.
    assert 'class="seg-band"' in html
    assert 'class="seg-tier1"' in html
    assert 'class="seg-tier2"' in html
    assert 'class="seg-blocked"' in html
    assert 'class="marker-line"' in html
    assert "Band 0% to 18%" in html  # 15 + 3 for annual prepayment
    assert "walk-away 38%" in html
    assert "12% past the band edge, tier 2" in html
    assert "Bake-off against a cheaper rival" in html  # the rep's justification
    assert "ask for Contract length ≥ 36 months" in html  # a suggested trade
    assert "standard version 1" in html  # the pinned playbook version
    # The chain, and where this request stands in it.
    assert re.search(r'class="current" aria-current="step">\s*<span class="steps">Step 1', html)
    assert "Step 2</span>" in html
    assert "waiting" in html
    # The deal's attributes and its other terms.
    assert "EMEA" in html
    assert "240000" in html
    assert "240000.0" not in html  # PostgreSQL keeps 8 places; people read 240000
    assert "Payment terms" in html
    assert 'name="version" value="1"' in html
    full = await sam.page(f"/requests/{request_id}")
    assert "<html" in full.text
    assert "Acme renewal" in full.text


async def test_approving_through_the_form_decides_like_the_api(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console]
) -> None:
    submission = await submit_deal(client, people, 1)
    request_id = request_of(submission, "sales_director")["id"]
    sam = await signed_in(consoles, people, "sam_sales_director")
    response = await sam.post(
        f"/requests/{request_id}/decision",
        {"decision": "approve", "version": "1", "reason": "", "counter.discount_pct": ""},
        htmx=True,
    )
    assert response.status_code == 200, response.text
    assert "Approved. The rep and the other approvers see it now." in response.text
    assert '"decided"' in response.headers["HX-Trigger"]
    read = await api_request(client, people, request_id)
    assert read["status"] == "approved"
    assert read["decision"]["decided_by"].endswith(":sam_sales_director")  # type: ignore[index]
    # The chain moved on: finance's step opened (the service's rules, not the page's).
    finance = await api_request(client, people, request_of(submission, "finance")["id"])
    assert finance["status"] == "pending"
    audit = await client.get("/v1/audit?action=approval.decided", headers=people.headers("admin"))
    assert [e["entity_id"] for e in audit.json()["items"]] == [str(request_id)]


async def test_a_decision_without_the_csrf_token_is_refused(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console]
) -> None:
    submission = await submit_deal(client, people, 1)
    request_id = request_of(submission, "sales_director")["id"]
    sam = await signed_in(consoles, people, "sam_sales_director")
    for token in (False,):
        refused = await sam.post(
            f"/requests/{request_id}/decision",
            {"decision": "approve", "version": "1"},
            token=token,
        )
        assert refused.status_code == 403
    wrong = await sam.http.post(
        f"/requests/{request_id}/decision",
        data={"decision": "approve", "version": "1", "csrf_token": "x" * 43},
    )
    assert wrong.status_code == 403
    # Another site's page posting with a stolen token still fails on its origin.
    cross = await sam.http.post(
        f"/requests/{request_id}/decision",
        data={"decision": "approve", "version": "1", "csrf_token": sam.csrf},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    # htmx sends the token as a header instead of a field.
    by_header = await sam.http.post(
        f"/requests/{request_id}/decision",
        data={"decision": "approve", "version": "1"},
        headers={"X-CSRF-Token": sam.csrf, "HX-Request": "true"},
    )
    assert by_header.status_code == 200
    assert (await api_request(client, people, request_id))["status"] == "approved"


async def test_a_reject_needs_a_reason_shown_by_the_field(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console]
) -> None:
    submission = await submit_deal(client, people, 1)
    request_id = request_of(submission, "sales_director")["id"]
    sam = await signed_in(consoles, people, "sam_sales_director")
    response = await sam.post(
        f"/requests/{request_id}/decision",
        {"decision": "reject", "version": "1", "reason": "  "},
        htmx=True,
    )
    assert outcome(response) == 422
    plain = await sam.post(
        f"/requests/{request_id}/decision", {"decision": "reject", "version": "1"}
    )
    assert plain.status_code == 422  # a form posted without htmx: the whole page, and its status
    assert "<html" in plain.text
    assert 'id="reason-' in response.text
    assert 'aria-invalid="true"' in response.text
    assert "a reason is required to reject" in response.text
    assert (await api_request(client, people, request_id))["status"] == "pending"
    rejected = await sam.post(
        f"/requests/{request_id}/decision",
        {"decision": "reject", "version": "1", "reason": "Too deep for this customer"},
        htmx=True,
    )
    assert rejected.status_code == 200
    assert "Rejected." in rejected.text
    deal = await client.get(f"/v1/deals/{deal_id(1)}", headers=people.headers("admin"))
    assert deal.json()["status"] == "rejected"


async def test_a_counter_must_stay_within_authority(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console]
) -> None:
    submission = await submit_deal(client, people, 1)
    request_id = request_of(submission, "sales_director")["id"]
    sam = await signed_in(consoles, people, "sam_sales_director")
    worse = await sam.post(
        f"/requests/{request_id}/decision",
        {
            "decision": "counter",
            "version": "1",
            "reason": "Meet me lower",
            "counter.discount_pct": "32",
        },
        htmx=True,
    )
    assert outcome(worse) == 422
    assert "32 is worse for us than the 30 asked" in worse.text
    assert 'id="counter-' in worse.text
    assert "-discount_pct-error" in worse.text
    assert 'value="32"' in worse.text  # what was typed stays in the field
    beyond = await sam.post(
        f"/requests/{request_id}/decision",
        {"decision": "counter", "version": "1", "reason": "x", "counter.discount_pct": "29"},
        htmx=True,
    )
    assert outcome(beyond) == 422
    assert "beyond what sales_director may approve at step 1" in beyond.text
    countered = await sam.post(
        f"/requests/{request_id}/decision",
        {"decision": "counter", "version": "1", "reason": "Meet at 25", "counter.discount_pct": "25"},
        htmx=True,
    )  # fmt: skip
    assert countered.status_code == 200, countered.text
    assert "Countered." in countered.text
    read = await api_request(client, people, request_id)
    assert read["status"] == "countered"
    assert read["decision"]["counter_terms"] == {"discount_pct": "25"}  # type: ignore[index]


async def test_a_stale_card_says_what_changed_and_decides_nothing(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console]
) -> None:
    submission = await submit_deal(client, people, 1)
    request_id = request_of(submission, "legal")["id"]
    lee = await signed_in(consoles, people, "lee_legal")
    shown = shown_of((await lee.page(f"/requests/{request_id}/card")).text)
    # The rep moves the liability cap while Lee reads the card.
    moved = await client.patch(
        f"/v1/deals/{deal_id(1)}",
        json={"terms": {"liability_cap_multiple": "1.8"}},
        headers=people.headers("rita_rep"),
    )
    assert moved.status_code == 200
    stale = await lee.post(
        f"/requests/{request_id}/decision",
        {"decision": "approve", "version": "1", "shown": shown},
        htmx=True,
    )
    assert outcome(stale) == 412
    assert "This request changed since you opened it. Nothing was decided." in stale.text
    assert "Liability cap: 1.5 x ACV → 1.8 x ACV" in stale.text
    assert 'name="version" value="2"' in stale.text  # the re-rendered card decides on v2
    assert (await api_request(client, people, request_id))["status"] == "pending"
    again = await lee.post(
        f"/requests/{request_id}/decision", {"decision": "approve", "version": "2"}, htmx=True
    )
    assert again.status_code == 200
    assert (await api_request(client, people, request_id))["status"] == "approved"


async def test_a_request_decided_by_someone_else_says_so(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console]
) -> None:
    submission = await submit_deal(client, people, 1)
    request_id = request_of(submission, "sales_director")["id"]
    sam = await signed_in(consoles, people, "sam_sales_director")
    sara = await signed_in(consoles, people, "sara_sales_director")
    shown = shown_of((await sam.page(f"/requests/{request_id}/card")).text)
    first = await sara.post(
        f"/requests/{request_id}/decision", {"decision": "approve", "version": "1"}, htmx=True
    )
    assert first.status_code == 200
    late = await sam.post(
        f"/requests/{request_id}/decision",
        {"decision": "reject", "version": "1", "reason": "No", "shown": shown},
        htmx=True,
    )
    assert outcome(late) == 409
    assert "This request changed since you opened it. Nothing was decided." in late.text
    assert "Status: pending → approved by sara_sales_director" in late.text
    assert 'action="/requests/' not in late.text  # nothing left to decide
    assert (await api_request(client, people, request_id))["status"] == "approved"
    # Without what the card showed (an old form), the refusal still says why.
    bare = await sam.post(
        f"/requests/{request_id}/decision", {"decision": "approve", "version": "1"}, htmx=True
    )
    assert outcome(bare) == 409
    assert "was already decided: approved" in bare.text


async def test_bulk_approve_decides_each_with_its_own_version(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console]
) -> None:
    one = request_of(await submit_deal(client, people, 1), "sales_director")["id"]
    two = request_of(await submit_deal(client, people, 2), "sales_director")["id"]
    three = request_of(await submit_deal(client, people, 3), "sales_director")["id"]
    sam = await signed_in(consoles, people, "sam_sales_director")
    page = await sam.page("/inbox")
    assert f'value="{one}:1"' in page.text
    # The third deal changes after Sam loaded the inbox: its approval must not go through.
    await client.patch(
        f"/v1/deals/{deal_id(3)}",
        json={"terms": {"discount_pct": 27}},
        headers=people.headers("rita_rep"),
    )
    response = await sam.post(
        "/inbox/approve",
        [("selected", f"{one}:1"), ("selected", f"{two}:1"), ("selected", f"{three}:1"),
         ("status", "pending")],
        htmx=True,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert "Approved 2 requests" in response.text
    assert f"#{three}</a>: changed since you opened the inbox" in response.text
    for request_id, status in ((one, "approved"), (two, "approved"), (three, "pending")):
        assert (await api_request(client, people, request_id))["status"] == status
    assert row_ids(response.text) == [three]  # the inbox shows what is left


async def test_a_delegate_decides_for_the_delegator_from_the_inbox(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console]
) -> None:
    submission = await submit_deal(client, people, 1)
    request_id = request_of(submission, "legal")["id"]
    lee = await signed_in(consoles, people, "lee_legal")
    await lee.page("/delegation")
    now = utcnow().replace(second=0, microsecond=0)
    saved = await lee.post(
        "/delegation",
        {
            "delegate": "sam_sales_director",
            "starts_at": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert saved.status_code == 200, saved.text
    assert "sam_sales_director may decide for legal" in saved.text
    sam = await signed_in(consoles, people, "sam_sales_director")
    inbox = await sam.page("/inbox")
    assert request_id in row_ids(inbox.text)
    card = await sam.page(f"/requests/{request_id}/card")
    assert "You decide for lee_legal (delegation)" in card.text
    decided = await sam.post(
        f"/requests/{request_id}/decision", {"decision": "approve", "version": "1"}, htmx=True
    )
    assert decided.status_code == 200
    read = await api_request(client, people, request_id)
    # Decisions name the delegator by key id and name, as the audit log names actors.
    assert str(read["decision"]["on_behalf_of"]).endswith(":lee_legal")  # type: ignore[index]
    ended = await lee.post("/delegation/end", {})
    assert "Your delegation has ended." in ended.text


async def test_a_rep_cannot_decide(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console]
) -> None:
    submission = await submit_deal(client, people, 1)
    request_id = request_of(submission, "sales_director")["id"]
    rita = await signed_in(consoles, people, "rita_rep")
    refused = await rita.post(
        f"/requests/{request_id}/decision", {"decision": "approve", "version": "1"}
    )
    assert refused.status_code == 403
    assert (await api_request(client, people, request_id))["status"] == "pending"
    card = await rita.page(f"/requests/{request_id}")
    assert card.status_code == 403


async def test_an_approver_outside_the_group_sees_why_not(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console]
) -> None:
    submission = await submit_deal(client, people, 1)
    request_id = request_of(submission, "sales_director")["id"]
    lee = await signed_in(consoles, people, "lee_legal")
    card = await lee.page(f"/requests/{request_id}")
    assert card.status_code == 200
    assert "only members of &#39;sales_director&#39;" in card.text
    assert f'action="/requests/{request_id}/decision"' not in card.text
    refused = await lee.post(
        f"/requests/{request_id}/decision", {"decision": "approve", "version": "1"}
    )
    assert refused.status_code == 403


@pytest.mark.parametrize(
    "selected",
    ["99999999999999999999:1", "9" * 5000 + ":1", "{id}:²", "{id}:99999999999999999999", "{id}:0"],
    ids=["id-past-integers", "id-of-5000-digits", "superscript-version", "huge-version", "zero"],
)
async def test_a_tampered_selection_decides_nothing(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console], selected: str
) -> None:
    request_id = request_of(await submit_deal(client, people, 1), "sales_director")["id"]
    sam = await signed_in(consoles, people, "sam_sales_director")
    await sam.page("/inbox")
    refused = await sam.post("/inbox/approve", {"selected": selected.format(id=request_id)})
    assert refused.status_code == 400, refused.text
    assert "This form is incomplete" in refused.text
    assert (await api_request(client, people, request_id))["status"] == "pending"


@pytest.mark.parametrize(
    "version",
    ["²", "١", "9" * 5000, "0", ""],
    ids=["superscript", "arabic-indic", "5000-digits", "zero", "empty"],
)
async def test_a_decision_with_a_tampered_version_decides_nothing(
    client: httpx.AsyncClient, people: Keys, consoles: Callable[[], Console], version: str
) -> None:
    request_id = request_of(await submit_deal(client, people, 1), "sales_director")["id"]
    sam = await signed_in(consoles, people, "sam_sales_director")
    await sam.page(f"/requests/{request_id}")
    refused = await sam.post(
        f"/requests/{request_id}/decision", {"decision": "approve", "version": version}
    )
    assert refused.status_code == 400, refused.text
    assert (await api_request(client, people, request_id))["status"] == "pending"
