"""Edges a careless client or an unlucky moment reaches: clear 4xx answers, no double work."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from tests.conftest import Keys
from tests.driver import create_and_submit, deal_body, deal_path

from governance.approvals import service as approval_service
from governance.auth.schemas import Role
from governance.db import Database, utcnow
from governance.playbooks.registry import PlaybookRegistry
from governance.settings import Settings

pytestmark = pytest.mark.usefixtures("demo_published")
DEAL_ID = "0065g00000EdgesAAA"
DEAL = deal_path(DEAL_ID)


async def open_request(client: httpx.AsyncClient, keys: Keys, **terms: Any) -> dict[str, Any]:
    keys.create("sam", Role.approver, ["sales_director"])
    body = deal_body(terms={"discount_pct": 20, "contract_months": 12, **terms})
    submitted = await create_and_submit(client, keys, DEAL_ID, body)
    request: dict[str, Any] = next(
        r for r in submitted["requests"] if r["group"] == "sales_director"
    )
    return request


async def test_a_counter_of_null_is_a_422_naming_the_term(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    request = await open_request(client, keys)
    response = await client.post(
        f"/v1/approvals/{request['id']}/decision",
        json={"decision": "counter", "reason": "x", "counter_terms": {"discount_pct": None}},
        headers={**keys.headers("sam"), "If-Match": f'"{request["version"]}"'},
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["counter_terms.discount_pct"]


@pytest.mark.parametrize("if_match", [None, "*", " * "], ids=["absent", "star", "spaced-star"])
async def test_a_decision_without_the_version_read_is_a_428(
    client: httpx.AsyncClient, keys: Keys, if_match: str | None
) -> None:
    """A client that never read the request cannot decide it."""
    request = await open_request(client, keys)
    headers = keys.headers("sam") | ({"If-Match": if_match} if if_match is not None else {})
    response = await client.post(
        f"/v1/approvals/{request['id']}/decision", json={"decision": "approve"}, headers=headers
    )
    assert response.status_code == 428, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/precondition-required")
    assert "If-Match" in response.json()["detail"]
    read = await client.get(f"/v1/approvals/{request['id']}", headers=keys.headers("sam"))
    assert read.json()["status"] == "pending"
    assert read.json()["decision"] is None

    decided = await client.post(
        f"/v1/approvals/{request['id']}/decision",
        json={"decision": "approve"},
        headers={**keys.headers("sam"), "If-Match": read.headers["ETag"]},
    )
    assert decided.status_code == 200, decided.text


@pytest.mark.parametrize("etag", ['"²"', '"1x"', '"99999999999"', "garbage"])
async def test_an_if_match_this_api_never_issued_is_a_412(
    client: httpx.AsyncClient, keys: Keys, etag: str
) -> None:
    request = await open_request(client, keys)
    response = await client.post(
        f"/v1/approvals/{request['id']}/decision",
        json={"decision": "approve"},
        headers=[(k.encode(), v.encode()) for k, v in keys.headers("sam").items()]
        + [(b"If-Match", etag.encode("latin-1"))],
    )
    assert response.status_code == 412, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_delegate_must_be_someone_who_decides(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    now = utcnow()
    response = await client.put(
        "/v1/me/delegation",
        json={
            "delegate": "rep",  # the fixture's rep key
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(days=1)).isoformat(),
        },
        headers=keys.headers("approver_finance"),
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["delegate"]


async def test_a_recheck_that_finds_blocked_terms_stores_one_check(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    await open_request(client, keys)
    blocked = await client.patch(
        DEAL, json={"terms": {"discount_pct": 60}}, headers=keys.headers("rep")
    )
    assert blocked.status_code == 200, blocked.text
    assert blocked.json()["status"] == "draft"
    checks = (await client.get(f"{DEAL}/checks", headers=keys.headers("rep"))).json()["items"]
    assert [c["result"]["verdict"] for c in checks] == ["blocked", "needs_approval"]
    requests = (await client.get(f"{DEAL}/approvals", headers=keys.headers("rep"))).json()
    assert [r["status"] for r in requests] == ["withdrawn"]


async def test_a_countered_deal_is_not_chased_by_the_worker(
    client: httpx.AsyncClient, keys: Keys, db: Database, settings: Settings
) -> None:
    keys.create("lee", Role.approver, ["legal"])
    request = await open_request(client, keys, liability_cap_multiple="1.5")
    legal = next(
        r
        for r in (await client.get(f"{DEAL}/approvals", headers=keys.headers("rep"))).json()
        if r["group"] == "legal"
    )
    countered = await client.post(
        f"/v1/approvals/{request['id']}/decision",
        json={
            "decision": "counter",
            "reason": "meet me at 17",
            "counter_terms": {"discount_pct": 17},
        },
        headers={**keys.headers("sam"), "If-Match": f'"{request["version"]}"'},
    )
    assert countered.status_code == 200, countered.text
    # Long past legal's SLA: the deal is with the rep, so no reminder and no escalation.
    with db.unit_of_work() as session:
        report = approval_service.sweep(
            session, PlaybookRegistry(db, 0), settings, now=utcnow() + timedelta(days=30)
        )
    assert (report.reminded, report.escalated, report.overdue_without_target) == (0, 0, 0)
    after = (await client.get(f"/v1/approvals/{legal['id']}", headers=keys.headers("lee"))).json()
    assert (after["group"], after["status"], after["escalation_level"]) == ("legal", "pending", 0)


async def test_a_wrong_method_on_the_batch_route_is_405_not_a_request_id(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    # `decisions` used to match `GET /v1/approvals/{request_id}` and fail as a bad integer.
    wrong = await client.get("/v1/approvals/decisions", headers=keys.headers("admin"))
    assert wrong.status_code == 405, wrong.text
    assert wrong.headers["allow"] == "POST"
    assert wrong.headers["content-type"] == "application/problem+json"
    # The body names them too, for a client that reads only the problem.
    assert wrong.json()["detail"] == "GET is not a method of this path; it has POST"
    not_an_id = await client.get("/v1/approvals/latest", headers=keys.headers("admin"))
    assert not_an_id.status_code == 404, not_an_id.text
