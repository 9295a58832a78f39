"""Deciding several requests in one call: each item stands or fails on its own."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests import driver
from tests.conftest import Keys
from tests.driver import add_people, create_and_submit, deal_body, deal_path, read_request

pytestmark = pytest.mark.usefixtures("demo_published")

BATCH = "/v1/approvals/decisions"
MISSING = 2_000_000_000


@pytest.fixture
def approvers(keys: Keys) -> Keys:
    return add_people(
        keys, "lee_legal", "lou_legal", "sam_sales_director", "dana_deal_desk", "rita_rep"
    )


async def open_review(
    client: httpx.AsyncClient, keys: Keys, external_id: str, **terms: object
) -> dict[tuple[str, int], dict[str, Any]]:
    """Create the deal as the rep and submit it; its requests by (chain group, step)."""
    body = deal_body(external_id, terms=terms)
    submitted = await create_and_submit(client, keys, external_id, body, who="rita_rep")
    assert submitted["deal_status"] == "in_review"
    return {(r["chain_group"], r["step"]): r for r in submitted["requests"]}


async def legal_request(client: httpx.AsyncClient, keys: Keys, external_id: str) -> dict[str, Any]:
    """A deal whose only exception is a 1.5x liability cap: one pending legal request."""
    requests = await open_review(client, keys, external_id, liability_cap_multiple="1.5")
    assert set(requests) == {("legal", 1)}
    return requests[("legal", 1)]


async def batch(
    client: httpx.AsyncClient, keys: Keys, who: str, *decisions: dict[str, Any]
) -> httpx.Response:
    return await client.post(BATCH, json={"decisions": list(decisions)}, headers=keys.headers(who))


async def results(
    client: httpx.AsyncClient, keys: Keys, who: str, *decisions: dict[str, Any]
) -> list[dict[str, Any]]:
    response = await batch(client, keys, who, *decisions)
    assert response.status_code == 200, response.text
    out: list[dict[str, Any]] = response.json()["results"]
    assert [r["id"] for r in out] == [d["id"] for d in decisions]
    return out


async def request_of(client: httpx.AsyncClient, keys: Keys, request_id: int) -> dict[str, Any]:
    return await read_request(client, keys, request_id, who="rita_rep")


async def deal_status(client: httpx.AsyncClient, keys: Keys, external_id: str) -> str:
    return await driver.deal_status(client, keys, external_id, who="rita_rep")


async def decided_ids(client: httpx.AsyncClient, keys: Keys) -> list[int]:
    """Request ids with an `approval.decided` audit entry, oldest first (one per decision)."""
    response = await client.get(
        "/v1/audit",
        params={"entity_type": "approval_request", "action": "approval.decided", "limit": 500},
        headers=keys.headers("admin"),
    )
    assert response.status_code == 200, response.text
    return [int(e["entity_id"]) for e in reversed(response.json()["items"])]


def refused(result: dict[str, Any], status: int, slug: str) -> dict[str, Any]:
    """Check a failed item carries its own problem+json body and no request."""
    assert result["status"] == status, result
    assert result["request"] is None
    problem: dict[str, Any] = result["problem"]
    assert problem["status"] == status
    assert problem["type"].endswith(f"/{slug}")
    assert problem["title"]
    return problem


async def test_each_decision_stands_or_fails_on_its_own(
    client: httpx.AsyncClient, approvers: Keys
) -> None:
    keys = approvers
    approve = await legal_request(client, keys, "0065g00000BatchA01")
    reject = await legal_request(client, keys, "0065g00000BatchA02")
    stale = await legal_request(client, keys, "0065g00000BatchA03")
    decided = await legal_request(client, keys, "0065g00000BatchA04")
    later = await legal_request(client, keys, "0065g00000BatchA05")
    others = await open_review(client, keys, "0065g00000BatchA06", discount_pct=20)
    not_mine = others[("sales_director", 1)]

    # Legal read the third request; then the rep moved the cap under it.
    moved = await client.patch(
        deal_path("0065g00000BatchA03"),
        json={"terms": {"liability_cap_multiple": "1.8"}},
        headers=keys.headers("rita_rep"),
    )
    assert moved.status_code == 200, moved.text
    # A colleague already approved the fourth.
    first = await results(
        client,
        keys,
        "lou_legal",
        {"id": decided["id"], "decision": "approve", "version": decided["version"]},
    )
    assert first[0]["status"] == 200, first

    out = await results(
        client,
        keys,
        "lee_legal",
        {"id": approve["id"], "decision": "approve", "version": approve["version"]},
        {"id": stale["id"], "decision": "approve", "version": stale["version"]},
        {
            "id": reject["id"],
            "decision": "reject",
            "reason": "Cap is too high",
            "version": reject["version"],
        },
        {"id": MISSING, "decision": "approve", "version": 1},
        {"id": not_mine["id"], "decision": "approve", "version": not_mine["version"]},
        {"id": decided["id"], "decision": "approve", "version": decided["version"]},
        {"id": later["id"], "decision": "approve", "version": later["version"]},
    )
    assert [r["status"] for r in out] == [200, 412, 200, 404, 403, 409, 200]

    for result, status in ((out[0], "approved"), (out[2], "rejected"), (out[6], "approved")):
        assert result["problem"] is None
        assert result["request"]["status"] == status
        assert result["request"]["decision"]["decided_by"].endswith(":lee_legal")
    assert out[2]["request"]["decision"]["reason"] == "Cap is too high"
    assert "read it again" in refused(out[1], 412, "precondition-failed")["detail"]
    assert str(MISSING) in refused(out[3], 404, "not-found")["detail"]
    assert "sales_director" in refused(out[4], 403, "forbidden")["detail"]
    assert "already decided" in refused(out[5], 409, "conflict")["detail"]

    # What the batch did is what the service now says.
    after = {r["id"]: await request_of(client, keys, r["id"]) for r in (approve, reject, later)}
    assert after[approve["id"]]["status"] == "approved"
    assert after[reject["id"]]["status"] == "rejected"
    assert after[reject["id"]]["decision"]["reason"] == "Cap is too high"
    assert after[later["id"]]["status"] == "approved"
    for request in after.values():
        assert request["decision"]["decided_by"].endswith(":lee_legal")
    still_stale = await request_of(client, keys, stale["id"])
    assert still_stale["status"] == "pending"
    assert still_stale["decision"] is None
    assert still_stale["terms"][0]["value"] == "1.8"
    assert (await request_of(client, keys, not_mine["id"]))["status"] == "pending"
    colleague = await request_of(client, keys, decided["id"])
    assert colleague["decision"]["decided_by"].endswith(":lou_legal")
    statuses = [await deal_status(client, keys, f"0065g00000BatchA0{n}") for n in range(1, 7)]
    assert statuses == ["approved", "rejected", "in_review", "approved", "approved", "in_review"]
    # One audit entry per decision made, none for the refusals.
    assert await decided_ids(client, keys) == [
        decided["id"],
        approve["id"],
        reject["id"],
        later["id"],
    ]

    # Read again, the stale request can be decided.
    retry = await results(
        client,
        keys,
        "lee_legal",
        {"id": stale["id"], "decision": "approve", "version": still_stale["version"]},
    )
    assert retry[0]["status"] == 200, retry
    assert retry[0]["request"]["decision"]["values"] == {"liability_cap_multiple": "1.8"}
    assert await deal_status(client, keys, "0065g00000BatchA03") == "approved"


async def test_items_run_in_order_each_seeing_the_ones_before(
    client: httpx.AsyncClient, approvers: Keys
) -> None:
    keys = approvers
    # The same request twice: the second finds it decided.
    twice = await legal_request(client, keys, "0065g00000BatchB01")
    out = await results(
        client,
        keys,
        "lee_legal",
        {"id": twice["id"], "decision": "approve", "version": twice["version"]},
        {
            "id": twice["id"],
            "decision": "reject",
            "reason": "Changed my mind",
            "version": twice["version"],
        },
    )
    assert [r["status"] for r in out] == [200, 409]
    assert (await request_of(client, keys, twice["id"]))["status"] == "approved"
    assert await deal_status(client, keys, "0065g00000BatchB01") == "approved"

    # 30% needs the sales director, then finance. Dana holds both groups: finance listed first
    # is not open yet, but listed after the sales director it is.
    early = await open_review(client, keys, "0065g00000BatchB02", discount_pct=30)
    sd, finance = early[("sales_director", 1)], early[("finance", 2)]
    assert finance["status"] == "waiting"
    out = await results(
        client,
        keys,
        "dana_deal_desk",
        {"id": finance["id"], "decision": "approve", "version": finance["version"]},
        {"id": sd["id"], "decision": "approve", "version": sd["version"]},
    )
    assert [r["status"] for r in out] == [409, 200]
    assert "not open yet" in refused(out[0], 409, "conflict")["detail"]
    assert (await request_of(client, keys, finance["id"]))["status"] == "pending"
    assert await deal_status(client, keys, "0065g00000BatchB02") == "in_review"

    in_order = await open_review(client, keys, "0065g00000BatchB03", discount_pct=30)
    sd, finance = in_order[("sales_director", 1)], in_order[("finance", 2)]
    out = await results(
        client,
        keys,
        "dana_deal_desk",
        {"id": sd["id"], "decision": "approve", "version": sd["version"]},
        {"id": finance["id"], "decision": "approve", "version": finance["version"]},
    )
    # The sales director's approval opened finance's step, which took a new version: Dana read
    # it while it was waiting, so she reads it again before deciding.
    assert [r["status"] for r in out] == [200, 412]
    opened = await request_of(client, keys, finance["id"])
    assert opened["status"] == "pending"
    out = await results(
        client,
        keys,
        "dana_deal_desk",
        {"id": finance["id"], "decision": "approve", "version": opened["version"]},
    )
    assert [r["status"] for r in out] == [200]
    assert out[0]["request"]["deal"]["status"] == "approved"
    assert await deal_status(client, keys, "0065g00000BatchB03") == "approved"


async def test_a_counter_outside_authority_fails_alone(
    client: httpx.AsyncClient, approvers: Keys
) -> None:
    keys = approvers
    deals = ("0065g00000BatchC01", "0065g00000BatchC02")
    beyond, within = [
        (await open_review(client, keys, d, discount_pct=30))[("sales_director", 1)] for d in deals
    ]
    out = await results(
        client,
        keys,
        "sam_sales_director",
        # 28% would still need finance: more than the sales director may grant.
        {"id": beyond["id"], "decision": "counter", "reason": "Meet me", "counter_terms": {"discount_pct": 28}, "version": beyond["version"]},
        {"id": within["id"], "decision": "counter", "reason": "22 at most", "counter_terms": {"discount_pct": 22}, "version": within["version"]},
    )  # fmt: skip
    problem = refused(out[0], 422, "invalid-request")
    assert [e["field"] for e in problem["errors"]] == ["counter_terms.discount_pct"]
    assert "finance" in problem["errors"][0]["message"]
    assert out[1]["status"] == 200, out[1]
    assert out[1]["request"]["decision"]["counter_terms"] == {"discount_pct": "22"}

    assert (await request_of(client, keys, beyond["id"]))["status"] == "pending"
    assert (await request_of(client, keys, within["id"]))["status"] == "countered"
    assert [await deal_status(client, keys, d) for d in deals] == ["in_review", "countered"]


async def test_an_invalid_item_refuses_the_whole_batch(
    client: httpx.AsyncClient, approvers: Keys
) -> None:
    keys = approvers
    good = await legal_request(client, keys, "0065g00000BatchD01")
    other = await legal_request(client, keys, "0065g00000BatchD02")

    no_reason = await batch(
        client,
        keys,
        "lee_legal",
        {"id": good["id"], "decision": "approve", "version": good["version"]},
        {"id": other["id"], "decision": "reject", "version": other["version"]},
    )
    assert no_reason.status_code == 422, no_reason.text
    assert no_reason.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in no_reason.json()["errors"]] == ["decisions[1].reason"]
    # Nothing was decided, not even the valid item.
    for request in (good, other):
        assert (await request_of(client, keys, request["id"]))["status"] == "pending"
    assert await decided_ids(client, keys) == []

    # Each item names the version its decider read: an item without one refuses the batch.
    unread = await batch(
        client,
        keys,
        "lee_legal",
        {"id": good["id"], "decision": "approve", "version": good["version"]},
        {"id": other["id"], "decision": "approve"},
    )
    assert unread.status_code == 422, unread.text
    assert [e["field"] for e in unread.json()["errors"]] == ["decisions[1].version"]
    for request in (good, other):
        assert (await request_of(client, keys, request["id"]))["status"] == "pending"

    empty = await batch(client, keys, "lee_legal")
    assert empty.status_code == 422, empty.text
    assert [e["field"] for e in empty.json()["errors"]] == ["decisions"]

    too_many = await batch(
        client,
        keys,
        "lee_legal",
        *(
            {"id": good["id"], "decision": "approve", "version": good["version"]}
            for _ in range(101)
        ),
    )
    assert too_many.status_code == 422, too_many.text
    assert [e["field"] for e in too_many.json()["errors"]] == ["decisions"]
    assert (await request_of(client, keys, good["id"]))["status"] == "pending"

    # A rep may not decide at all.
    rep = await batch(
        client, keys, "rita_rep", {"id": good["id"], "decision": "approve", "version": 1}
    )
    assert rep.status_code == 403, rep.text
    assert (await request_of(client, keys, good["id"]))["status"] == "pending"
    assert await deal_status(client, keys, "0065g00000BatchD01") == "in_review"
