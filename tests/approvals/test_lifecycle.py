"""A deal's review from submission to its end, through the HTTP API with real keys.

The demo playbook's discount ladder, with a 12-month contract and no billing frequency: the rep
may give up to 15% alone, the sales director approves up to 25%, finance up to 35% (the
walk-away), and anything beyond is blocked.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from tests import driver
from tests.conftest import Keys, request_etag
from tests.driver import (
    add_people,
    deal_body,
    deal_path,
    deal_status,
    fields,
    patch_terms,
    queue,
    queue_ids,
    submit,
    submitted,
)

from governance.approvals.models import ApprovalRequest
from governance.db import Database, utcnow
from governance.deals.schemas import salesforce_id_18

pytestmark = pytest.mark.usefixtures("demo_published")

ATTRIBUTES = {"region": "EMEA", "segment": "enterprise", "amount": "240000"}


@pytest.fixture
def approvers(keys: Keys) -> Keys:
    return add_people(keys, "sam_sales_director", "fiona_finance", "lee_legal")


async def put_deal(
    client: httpx.AsyncClient, keys: Keys, external_id: str, **terms: object
) -> dict[str, Any]:
    """The rep's deal: 240,000 EMEA enterprise, 12 months unless `terms` say otherwise."""
    body = deal_body(f"Deal {external_id[-4:]}", ATTRIBUTES, {"contract_months": 12, **terms})
    return await driver.put_deal(client, keys, external_id, body)


async def deal_requests(
    client: httpx.AsyncClient, keys: Keys, external_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"{deal_path(external_id)}/approvals", headers=keys.headers("rep"))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()
    return items


async def decide(
    client: httpx.AsyncClient, keys: Keys, who: str, request_id: int, **body: object
) -> httpx.Response:
    etag = await request_etag(client, keys, who, request_id)
    return await client.post(
        f"/v1/approvals/{request_id}/decision",
        json={"decision": "approve", **body},
        headers={**keys.headers(who), "If-Match": etag},
    )


def by_chain(requests: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(r["chain_group"], r["step"]): r for r in requests}


# --- submission ----------------------------------------------------------------------------------


async def test_deal_within_every_band_is_approved_at_once(
    client: httpx.AsyncClient, approvers: Keys
) -> None:
    deal = "0065g00000LifeA001"
    await put_deal(client, approvers, deal, discount_pct=10, payment_terms_days=30)
    body = await submitted(client, approvers, deal)
    assert body["deal_status"] == "approved"
    assert body["check"]["result"]["verdict"] == "auto_approved"
    assert body["requests"] == []
    assert body["opened"] == []
    assert await deal_status(client, approvers, deal) == "approved"
    assert await deal_requests(client, approvers, deal) == []
    assert await queue_ids(client, approvers, "admin") == []


async def test_blocked_deal_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, approvers: Keys
) -> None:
    deal = "0065g00000LifeA002"
    # Legal's exception would open a request if the deal were not blocked as a whole.
    await put_deal(client, approvers, deal, discount_pct=60, liability_cap_multiple="1.5")
    refused = await submit(client, approvers, deal)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert fields(refused) == ["terms.discount_pct"]
    assert "walk-away" in refused.json()["errors"][0]["message"]
    assert await deal_status(client, approvers, deal) == "draft"
    assert await deal_requests(client, approvers, deal) == []
    assert await queue_ids(client, approvers, "admin") == []
    # Once the rep brings the discount back within reach, the deal goes to review.
    await patch_terms(client, approvers, deal, discount_pct=20)
    body = await submitted(client, approvers, deal)
    assert body["deal_status"] == "in_review"
    assert {r["chain_group"] for r in body["requests"]} == {"sales_director", "legal"}


async def test_submitting_again_does_not_duplicate_requests(
    client: httpx.AsyncClient, approvers: Keys
) -> None:
    deal = "0065g00000LifeA003"
    await put_deal(client, approvers, deal, discount_pct=30, liability_cap_multiple="1.5")
    first = await submitted(client, approvers, deal)
    assert set(by_chain(first["requests"])) == {
        ("sales_director", 1),
        ("finance", 2),
        ("legal", 1),
    }
    again = await submitted(client, approvers, deal)
    assert again["deal_status"] == "in_review"
    assert again["opened"] == []
    assert again["withdrawn"] == []
    assert sorted(r["id"] for r in again["requests"]) == sorted(r["id"] for r in first["requests"])
    assert len(await deal_requests(client, approvers, deal)) == 3
    assert len(await queue_ids(client, approvers, "sam_sales_director")) == 1
    assert len(await queue_ids(client, approvers, "lee_legal")) == 1


# --- reject and counter --------------------------------------------------------------------------


async def test_reject_needs_a_reason_and_ends_the_whole_review(
    client: httpx.AsyncClient, approvers: Keys
) -> None:
    deal = "0065g00000LifeA004"
    await put_deal(client, approvers, deal, discount_pct=30, liability_cap_multiple="1.5")
    steps = by_chain((await submitted(client, approvers, deal))["requests"])
    legal_id = steps[("legal", 1)]["id"]

    for body in ({}, {"reason": "   "}):
        refused = await decide(client, approvers, "lee_legal", legal_id, decision="reject", **body)
        assert refused.status_code == 422, refused.text
        assert fields(refused) == ["reason"]
    assert (
        await client.get(f"/v1/approvals/{legal_id}", headers=approvers.headers("lee_legal"))
    ).json()["status"] == "pending"

    rejected = await decide(
        client, approvers, "lee_legal", legal_id, decision="reject", reason="Uncapped exposure"
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["decision"]["reason"] == "Uncapped exposure"
    assert await deal_status(client, approvers, deal) == "rejected"
    statuses = {
        (r["chain_group"], r["step"]): r["status"]
        for r in await deal_requests(client, approvers, deal)
    }
    assert statuses == {
        ("legal", 1): "rejected",
        ("sales_director", 1): "withdrawn",
        ("finance", 2): "withdrawn",
    }
    for who in ("sam_sales_director", "fiona_finance", "lee_legal"):
        assert await queue_ids(client, approvers, who) == []
    # A withdrawn request cannot be decided any more.
    late = await decide(client, approvers, "sam_sales_director", steps[("sales_director", 1)]["id"])
    assert late.status_code == 409


async def test_counter_needs_a_reason_and_values_within_the_approvers_authority(
    client: httpx.AsyncClient, approvers: Keys
) -> None:
    deal = "0065g00000LifeA005"
    await put_deal(client, approvers, deal, discount_pct=30)
    steps = by_chain((await submitted(client, approvers, deal))["requests"])
    sd_id = steps[("sales_director", 1)]["id"]

    no_values = await decide(
        client, approvers, "sam_sales_director", sd_id, decision="counter", reason="Too deep"
    )
    assert no_values.status_code == 422
    assert fields(no_values) == ["counter_terms"]
    no_reason = await decide(
        client, approvers, "sam_sales_director", sd_id,
        decision="counter", counter_terms={"discount_pct": 22},
    )  # fmt: skip
    assert no_reason.status_code == 422
    assert fields(no_reason) == ["reason"]
    # 28% would still need finance: more than the sales director may grant.
    beyond = await decide(
        client, approvers, "sam_sales_director", sd_id,
        decision="counter", reason="Meet halfway", counter_terms={"discount_pct": 28},
    )  # fmt: skip
    assert beyond.status_code == 422, beyond.text
    assert fields(beyond) == ["counter_terms.discount_pct"]
    # One statement: who else it needs, never "needs sales_director" next to "beyond what
    # sales_director may approve".
    assert beyond.json()["detail"] == "the counter is outside the approver's authority"
    assert beyond.json()["errors"][0]["message"] == (
        "28 also needs finance: beyond what sales_director may approve at step 1"
    )
    worse = await decide(
        client, approvers, "sam_sales_director", sd_id,
        decision="counter", reason="Why not", counter_terms={"discount_pct": 32},
    )  # fmt: skip
    assert worse.status_code == 422
    assert fields(worse) == ["counter_terms.discount_pct"]
    assert worse.json()["detail"] == "a counter may not be worse for us than what was asked"
    assert await deal_status(client, approvers, deal) == "in_review"

    countered = await decide(
        client, approvers, "sam_sales_director", sd_id,
        decision="counter", reason="22% is as far as I go", counter_terms={"discount_pct": 22},
    )  # fmt: skip
    assert countered.status_code == 200, countered.text
    assert countered.json()["status"] == "countered"
    assert countered.json()["decision"]["counter_terms"] == {"discount_pct": "22"}
    assert await deal_status(client, approvers, deal) == "countered"

    # The rep accepts: the deal takes 22%, which the sales director may grant alone, so the
    # sales director is not asked again and finance's step is no longer needed.
    accepted = await client.post(
        f"{deal_path(deal)}/accept-counter",
        json={"request_id": sd_id},
        headers=approvers.headers("rep"),
    )
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["deal_status"] == "approved"
    assert body["opened"] == []
    assert body["withdrawn"] == [steps[("finance", 2)]["id"]]
    assert {(k["term"], k["group"]) for k in body["kept"]} == {("discount_pct", "sales_director")}
    deal_read = (await client.get(deal_path(deal), headers=approvers.headers("rep"))).json()
    assert deal_read["status"] == "approved"
    assert deal_read["terms"]["discount_pct"] in ("22", 22)
    for who in ("sam_sales_director", "fiona_finance"):
        assert await queue_ids(client, approvers, who) == []
    again = await client.post(
        f"{deal_path(deal)}/accept-counter",
        json={"request_id": sd_id},
        headers=approvers.headers("rep"),
    )
    assert again.status_code == 409


async def test_accepted_counter_leaves_other_open_requests_open(
    client: httpx.AsyncClient, approvers: Keys
) -> None:
    deal = "0065g00000LifeA006"
    await put_deal(client, approvers, deal, discount_pct=24, liability_cap_multiple="1.5")
    steps = by_chain((await submitted(client, approvers, deal))["requests"])
    countered = await decide(
        client, approvers, "sam_sales_director", steps[("sales_director", 1)]["id"],
        decision="counter", reason="20 at most", counter_terms={"discount_pct": 20},
    )  # fmt: skip
    assert countered.status_code == 200, countered.text
    accepted = await client.post(
        f"{deal_path(deal)}/accept-counter",
        json={"request_id": steps[("sales_director", 1)]["id"]},
        headers=approvers.headers("rep"),
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["deal_status"] == "in_review"
    assert await queue_ids(client, approvers, "sam_sales_director") == []
    assert await queue_ids(client, approvers, "lee_legal") == [steps[("legal", 1)]["id"]]
    assert (
        await decide(client, approvers, "lee_legal", steps[("legal", 1)]["id"])
    ).status_code == 200
    assert await deal_status(client, approvers, deal) == "approved"


# --- withdraw and re-approval --------------------------------------------------------------------


async def test_withdraw_closes_open_requests_and_returns_the_deal_to_draft(
    client: httpx.AsyncClient, approvers: Keys
) -> None:
    deal = "0065g00000LifeA007"
    await put_deal(client, approvers, deal, discount_pct=30)
    never_submitted = await client.post(
        f"{deal_path(deal)}/withdraw", headers=approvers.headers("rep")
    )
    assert never_submitted.status_code == 409
    assert never_submitted.headers["content-type"] == "application/problem+json"

    await submitted(client, approvers, deal)
    withdrawn = await client.post(f"{deal_path(deal)}/withdraw", headers=approvers.headers("rep"))
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "draft"
    assert {r["status"] for r in await deal_requests(client, approvers, deal)} == {"withdrawn"}
    for who in ("sam_sales_director", "fiona_finance"):
        assert await queue_ids(client, approvers, who) == []
    twice = await client.post(f"{deal_path(deal)}/withdraw", headers=approvers.headers("rep"))
    assert twice.status_code == 409


async def test_a_term_that_got_better_never_reopens_a_request(
    client: httpx.AsyncClient, approvers: Keys
) -> None:
    deal = "0065g00000LifeA008"
    await put_deal(client, approvers, deal, discount_pct=24)
    (request,) = (await submitted(client, approvers, deal))["requests"]
    assert (await decide(client, approvers, "sam_sales_director", request["id"])).status_code == 200
    assert await deal_status(client, approvers, deal) == "approved"

    for better in (
        22,
        16,
        10,
        24,
    ):  # still an exception, within the band, back to the value approved
        assert (await patch_terms(client, approvers, deal, discount_pct=better))[
            "status"
        ] == "approved"
        resubmitted = await submitted(client, approvers, deal)
        assert resubmitted["deal_status"] == "approved"
        assert resubmitted["opened"] == []
    assert [r["id"] for r in await deal_requests(client, approvers, deal)] == [request["id"]]
    assert await queue_ids(client, approvers, "sam_sales_director") == []

    # One point worse than approved is asked again.
    assert (await patch_terms(client, approvers, deal, discount_pct=25))["status"] == "in_review"
    asked = await queue(client, approvers, "sam_sales_director")
    assert [t["value"] for r in asked["items"] for t in r["terms"]] == ["25"]


async def test_review_stays_on_its_playbook_version_until_withdrawn(
    client: httpx.AsyncClient, approvers: Keys, demo_yaml: str
) -> None:
    deal = "0065g00000LifeA009"
    await put_deal(client, approvers, deal, discount_pct=21)
    first = await submitted(client, approvers, deal)
    assert [(r["chain_group"], r["playbook"]["version"]) for r in first["requests"]] == [
        ("sales_director", 1)
    ]

    # Version 2: the sales director only approves up to 20%; 21% now also needs finance.
    v2 = demo_yaml.replace(
        "{limit: 25, approver: sales_director}", "{limit: 20, approver: sales_director}"
    )
    assert v2 != demo_yaml
    published = await client.post(
        "/v1/playbooks/import?publish=true",
        content=v2,
        headers={**approvers.headers("admin"), "Content-Type": "application/yaml"},
    )
    assert published.status_code == 201, published.text
    assert published.json()["version"] == 2
    assert published.json()["status"] == "published"

    # A change under review is checked against version 1, so only the sales director is asked.
    await patch_terms(client, approvers, deal, discount_pct=22)
    checked = await client.post(f"{deal_path(deal)}/checks", headers=approvers.headers("rep"))
    assert checked.status_code == 201, checked.text
    assert checked.json()["result"]["playbook"]["version"] == 1
    assert {(o["playbook"], o["playbook_version"]) for o in checked.json()["open_requests"]} == {
        ("standard", 1)
    }
    again = await submitted(client, approvers, deal)
    assert again["check"]["result"]["playbook"]["version"] == 1
    assert [(r["chain_group"], r["playbook"]["version"]) for r in again["requests"]] == [
        ("sales_director", 1)
    ]

    # Withdrawn and submitted again, the deal starts over on version 2.
    assert (
        await client.post(f"{deal_path(deal)}/withdraw", headers=approvers.headers("rep"))
    ).status_code == 200
    fresh = await submitted(client, approvers, deal)
    assert fresh["check"]["result"]["playbook"]["version"] == 2
    assert sorted((r["chain_group"], r["playbook"]["version"]) for r in fresh["requests"]) == [
        ("finance", 2),
        ("sales_director", 2),
    ]


# --- who decides ---------------------------------------------------------------------------------


async def test_an_admin_decides_as_an_audited_override(
    client: httpx.AsyncClient, approvers: Keys
) -> None:
    deal = "0065g00000LifeA010"
    await put_deal(client, approvers, deal, discount_pct=20)
    (request,) = (await submitted(client, approvers, deal))["requests"]
    outsider = await decide(client, approvers, "lee_legal", request["id"])
    assert outsider.status_code == 403
    decided = await decide(client, approvers, "admin", request["id"])
    assert decided.status_code == 200, decided.text
    decision = decided.json()["decision"]
    assert decision["admin_override"] is True
    assert decision["decided_by"].endswith(":admin")
    assert decision["on_behalf_of"] is None
    assert await deal_status(client, approvers, deal) == "approved"
    audit = await client.get(
        "/v1/audit",
        params={"action": "approval.decided", "entity_id": str(request["id"])},
        headers=approvers.headers("admin"),
    )
    (entry,) = audit.json()["items"]
    assert entry["actor"].endswith(":admin")
    assert entry["after"]["admin_override"] is True
    assert entry["after"]["deal_status"] == "approved"


async def test_a_member_decision_is_not_an_override(
    client: httpx.AsyncClient, approvers: Keys
) -> None:
    deal = "0065g00000LifeA011"
    await put_deal(client, approvers, deal, discount_pct=20)
    (request,) = (await submitted(client, approvers, deal))["requests"]
    decided = await decide(client, approvers, "sam_sales_director", request["id"])
    assert decided.status_code == 200, decided.text
    assert decided.json()["decision"]["admin_override"] is False
    assert decided.json()["decision"]["decided_by"].endswith(":sam_sales_director")


# --- reading -------------------------------------------------------------------------------------


async def test_deal_approvals_list_every_round(client: httpx.AsyncClient, approvers: Keys) -> None:
    deal = "0065g00000LifeA012"
    await put_deal(client, approvers, deal, discount_pct=30)
    first = await submitted(client, approvers, deal)
    await client.post(f"{deal_path(deal)}/withdraw", headers=approvers.headers("rep"))
    await patch_terms(client, approvers, deal, discount_pct=20)
    second = await submitted(client, approvers, deal)

    listed = await deal_requests(client, approvers, deal)
    first_ids = sorted(r["id"] for r in first["requests"])
    (second_request,) = second["requests"]
    assert [r["id"] for r in listed] == [*first_ids, second_request["id"]]
    assert [r["status"] for r in listed] == ["withdrawn", "withdrawn", "pending"]
    assert listed[-1]["terms"] == ["discount_pct"]
    assert listed[0]["reason"] == "withdrawn by the rep"


async def test_queue_filters_and_cursor_paging(
    client: httpx.AsyncClient, approvers: Keys, db: Database
) -> None:
    deals = [salesforce_id_18(f"0065g00000Que{n:02d}") for n in range(3)]
    await put_deal(client, approvers, deals[0], discount_pct=20)
    await put_deal(client, approvers, deals[1], discount_pct=20, liability_cap_multiple="1.5")
    await put_deal(client, approvers, deals[2], discount_pct=24)
    for deal in deals:
        await submitted(client, approvers, deal)

    everything = await queue_ids(client, approvers, "admin")
    assert len(everything) == 4
    assert everything == sorted(everything)  # oldest first
    sd = await queue_ids(client, approvers, "admin", group="sales_director")
    legal = await queue_ids(client, approvers, "admin", group="legal")
    assert len(sd) == 3
    assert len(legal) == 1
    assert sorted(sd + legal) == everything
    assert await queue_ids(client, approvers, "sam_sales_director") == sd
    refused = await client.get(
        "/v1/approvals", params={"group": "legal"}, headers=approvers.headers("sam_sales_director")
    )
    assert refused.status_code == 403

    # A deal by its 18- or 15-character Opportunity Id.
    second = await queue(client, approvers, "admin", deal=deals[1])
    assert {r["group"] for r in second["items"]} == {"sales_director", "legal"}
    assert {r["deal"]["external_id"] for r in second["items"]} == {deals[1]}
    assert await queue_ids(client, approvers, "admin", deal=deals[1][:15]) == [
        r["id"] for r in second["items"]
    ]
    assert await queue_ids(client, approvers, "admin", deal="0065g00000Nobody01") == []

    # Decided requests by status.
    first_sd = (await queue(client, approvers, "admin", deal=deals[0]))["items"][0]["id"]
    assert (await decide(client, approvers, "sam_sales_director", first_sd)).status_code == 200
    assert await queue_ids(client, approvers, "admin", status="approved") == [first_sd]
    assert first_sd not in await queue_ids(client, approvers, "admin")

    # Only requests open at least this long.
    third_sd = (await queue(client, approvers, "admin", deal=deals[2]))["items"][0]["id"]
    with db.unit_of_work() as session:
        session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == third_sd)
            .values(opened_at=utcnow() - timedelta(hours=3))
        )
    assert await queue_ids(client, approvers, "admin", min_age_hours=2) == [third_sd]
    assert await queue_ids(client, approvers, "admin", min_age_hours=4) == []

    # limit=1 walks the whole queue, one request a page.
    pending = await queue_ids(client, approvers, "admin")
    walked: list[int] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, str | int] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = await queue(client, approvers, "admin", **params)
        walked += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == pending
    assert cursor is None
    forged = await client.get(
        "/v1/approvals", params={"cursor": "not-a-cursor"}, headers=approvers.headers("admin")
    )
    assert forged.status_code == 422
