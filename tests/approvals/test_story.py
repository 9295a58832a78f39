"""The whole approval story through the HTTP API, with real keys (issue 3, "Done means")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.conftest import Keys
from tests.driver import add_people

DEAL = "/v1/deals/0065g00000StoryAAA"


@pytest.fixture
def approvers(keys: Keys) -> Keys:
    return add_people(keys, "sam_sales_director", "fiona_finance", "lee_legal", "rita_rep")


async def queue(client: httpx.AsyncClient, keys: Keys, who: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/approvals", headers=keys.headers(who))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def decide(
    client: httpx.AsyncClient, keys: Keys, who: str, request_id: int, etag: str, **body: object
) -> httpx.Response:
    return await client.post(
        f"/v1/approvals/{request_id}/decision",
        json={"decision": "approve", **body},
        headers={**keys.headers(who), "If-Match": etag},
    )


async def read(client: httpx.AsyncClient, keys: Keys, who: str, request_id: int) -> httpx.Response:
    response = await client.get(f"/v1/approvals/{request_id}", headers=keys.headers(who))
    assert response.status_code == 200, response.text
    return response


@pytest.mark.usefixtures("demo_published")
async def test_full_approval_story(client: httpx.AsyncClient, approvers: Keys) -> None:
    keys = approvers
    rep = keys.headers("rita_rep")
    # 1. A deal with a discount exception that needs the sales director, then finance
    #    (30% with annual prepayment: band 18, tiers 28 and 38) and a legal exception.
    created = await client.put(
        DEAL,
        json={
            "name": "Acme renewal",
            "attributes": {"region": "EMEA", "segment": "enterprise", "amount": "240000"},
            "terms": {
                "discount_pct": 30,
                "billing_frequency": "annual_upfront",
                "contract_months": 12,
                "liability_cap_multiple": "1.5",
                "payment_terms_days": 30,
            },
        },
        headers=rep,
    )
    assert created.status_code == 201, created.text
    submitted = await client.post(
        f"{DEAL}/submit",
        json={"justifications": {"discount_pct": "Competitive bake-off against a cheaper rival"}},
        headers=rep,
    )
    assert submitted.status_code == 200, submitted.text
    body = submitted.json()
    assert body["deal_status"] == "in_review"
    steps = {(r["chain_group"], r["step"]): r for r in body["requests"]}
    assert set(steps) == {("sales_director", 1), ("finance", 2), ("legal", 1)}
    assert steps[("finance", 2)]["status"] == "waiting"
    assert steps[("finance", 2)]["terms"] == ["discount_pct"]
    # The check result names the version each open request uses.
    assert {(o["playbook"], o["playbook_version"]) for o in body["check"]["open_requests"]} == {
        ("standard", 1)
    }

    # 2. Legal and the sales director have their requests at once; finance has nothing yet.
    sd_queue = await queue(client, keys, "sam_sales_director")
    legal_queue = await queue(client, keys, "lee_legal")
    assert [r["terms"][0]["key"] for r in sd_queue] == ["discount_pct"]
    assert [r["terms"][0]["key"] for r in legal_queue] == ["liability_cap_multiple"]
    assert await queue(client, keys, "fiona_finance") == []
    # The queue carries what is needed to decide without another call.
    sd_request = sd_queue[0]
    term = sd_request["terms"][0]
    assert term["value"] == "30"
    assert term["band"]["high"] == "18"
    assert term["variance"] == "12"
    assert term["tier"] == 2
    assert term["owner"] == "finance"
    assert term["approvers"] == ["sales_director", "finance"]
    assert term["justification"] == "Competitive bake-off against a cheaper rival"
    assert sd_request["deal"]["attributes"]["region"] == "EMEA"
    assert sd_request["playbook"] == {"key": "standard", "version": 1}
    assert any(t["rule"] == "multi_year_widens_discount" for t in sd_request["trades"])

    # 3. Finance waits for the sales director.
    finance_id = steps[("finance", 2)]["id"]
    early = await decide(client, keys, "fiona_finance", finance_id, '"1"')
    assert early.status_code == 409

    # 4. Legal read its request; then the rep moved the liability cap, so what legal read is
    #    stale: 412. Read again and approve.
    legal_id = legal_queue[0]["id"]
    legal_etag = (await read(client, keys, "lee_legal", legal_id)).headers["ETag"]
    moved = await client.patch(DEAL, json={"terms": {"liability_cap_multiple": "1.8"}}, headers=rep)
    assert moved.status_code == 200, moved.text
    stale = await decide(client, keys, "lee_legal", legal_id, legal_etag)
    assert stale.status_code == 412, stale.text
    assert stale.headers["content-type"] == "application/problem+json"
    fresh = await read(client, keys, "lee_legal", legal_id)
    assert fresh.json()["terms"][0]["value"] == "1.8"
    approved = await decide(client, keys, "lee_legal", legal_id, fresh.headers["ETag"])
    assert approved.status_code == 200, approved.text
    again = await decide(client, keys, "lee_legal", legal_id, approved.headers["ETag"])
    assert again.status_code == 409

    # An approver outside the group may not decide.
    sd_id = sd_request["id"]
    outsider = await decide(client, keys, "lee_legal", sd_id, '"1"')
    assert outsider.status_code == 403
    sd_etag = (await read(client, keys, "sam_sales_director", sd_id)).headers["ETag"]
    assert (await decide(client, keys, "sam_sales_director", sd_id, sd_etag)).status_code == 200

    # Only now does finance get its request.
    finance_queue = await queue(client, keys, "fiona_finance")
    assert [r["id"] for r in finance_queue] == [finance_id]
    history = {(h["group"], h["status"]) for h in finance_queue[0]["history"]}
    assert {("legal", "approved"), ("sales_director", "approved")} <= history
    finance_etag = (await read(client, keys, "fiona_finance", finance_id)).headers["ETag"]
    assert (
        await decide(client, keys, "fiona_finance", finance_id, finance_etag)
    ).status_code == 200
    deal = (await client.get(DEAL, headers=rep)).json()
    assert deal["status"] == "approved"

    # 5. The rep improves the discount: every approval still holds, nothing is asked again.
    improved = await client.patch(DEAL, json={"terms": {"discount_pct": 26}}, headers=rep)
    assert improved.status_code == 200
    resubmitted = await client.post(f"{DEAL}/submit", headers=rep)
    assert resubmitted.status_code == 200, resubmitted.text
    assert resubmitted.json()["deal_status"] == "approved"
    assert resubmitted.json()["opened"] == []
    assert {(k["term"], k["group"]) for k in resubmitted.json()["kept"]} >= {
        ("discount_pct", "sales_director"),
        ("liability_cap_multiple", "legal"),
    }
    for who in ("sam_sales_director", "fiona_finance", "lee_legal"):
        assert await queue(client, keys, who) == []

    # 6. The rep worsens the payment terms: only finance is asked again.
    worse = await client.patch(DEAL, json={"terms": {"payment_terms_days": 55}}, headers=rep)
    assert worse.status_code == 200
    assert worse.json()["status"] == "in_review"
    assert await queue(client, keys, "sam_sales_director") == []
    assert await queue(client, keys, "lee_legal") == []
    finance_again = await queue(client, keys, "fiona_finance")
    assert len(finance_again) == 1
    assert [t["key"] for t in finance_again[0]["terms"]] == ["payment_terms_days"]
    again_id = finance_again[0]["id"]
    etag = (await read(client, keys, "fiona_finance", again_id)).headers["ETag"]
    assert (await decide(client, keys, "fiona_finance", again_id, etag)).status_code == 200

    # 7. The deal ends approved.
    assert (await client.get(DEAL, headers=rep)).json()["status"] == "approved"

    # 8. The audit log tells the whole story, in order.
    audit = await client.get("/v1/audit?limit=500", headers=keys.headers("admin"))
    entries = list(reversed(audit.json()["items"]))
    story = [
        (e["action"], e["actor"].split(":")[-1])
        for e in entries
        if e["action"].startswith(("deal.submitted", "deal.rechecked", "approval."))
    ]
    assert story[:4] == [
        ("approval.opened", "rita_rep"),
        ("approval.opened", "rita_rep"),
        ("approval.opened", "rita_rep"),
        ("deal.submitted", "rita_rep"),
    ]
    decided = [(a, who) for a, who in story if a == "approval.decided"]
    assert decided == [
        ("approval.decided", "lee_legal"),
        ("approval.decided", "sam_sales_director"),
        ("approval.decided", "fiona_finance"),
        ("approval.decided", "fiona_finance"),
    ]
    assert ("approval.updated", "rita_rep") in story  # the liability cap moved under legal
    rechecks = [e for e in entries if e["action"] == "deal.rechecked"]
    last = rechecks[-1]["after"]
    assert last["reapproval"] == []
    assert len(last["opened"]) == 1
    assert last["status"] == "in_review"
    assert rechecks[-1]["before"]["status"] == "approved"
