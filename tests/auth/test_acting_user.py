"""`X-Acting-User`: the Salesforce package's integration key names the rep it acts for, and the
audit log, the submission, the withdrawal and the accepted counter say which rep did what."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.conftest import Keys, request_etag
from tests.driver import add_people, deal_body, deal_path, put_deal

from governance.web.rendering import actor

pytestmark = pytest.mark.usefixtures("demo_published")

REP_15 = "005Dn000001AbCd"
REP = "005Dn000001AbCdIAK"  # its case-safe 18-character form
TERMS = {"region": "EMEA", "segment": "enterprise", "amount": "240000"}


def as_rep(keys: Keys, user: str = REP) -> dict[str, str]:
    return {**keys.headers("integration"), "X-Acting-User": user}


async def audit_actors(client: httpx.AsyncClient, keys: Keys, action: str) -> list[str]:
    listed = await client.get(
        "/v1/audit", params={"action": action, "limit": 50}, headers=keys.headers("admin")
    )
    assert listed.status_code == 200, listed.text
    return [entry["actor"] for entry in listed.json()["items"]]


async def test_submission_withdrawal_and_counter_name_the_salesforce_user(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    add_people(keys, "sam_sales_director")
    deal = "0065g00000ActA0001"
    await put_deal(client, keys, deal, deal_body("Acme", TERMS, {"contract_months": 12}))
    await client.patch(
        deal_path(deal), json={"terms": {"discount_pct": 20}}, headers=as_rep(keys, REP_15)
    )
    submitted = await client.post(f"{deal_path(deal)}/submit", headers=as_rep(keys, REP_15))
    assert submitted.status_code == 200, submitted.text
    (request,) = submitted.json()["requests"]
    assert request["submitted_by"].endswith(f"integration for sf:{REP}")
    assert [a.split(":", 2)[2] for a in await audit_actors(client, keys, "deal.submitted")] == [
        f"integration for sf:{REP}"
    ]

    etag = await request_etag(client, keys, "sam_sales_director", request["id"])
    countered = await client.post(
        f"/v1/approvals/{request['id']}/decision",
        json={"decision": "counter", "reason": "18 at most", "counter_terms": {"discount_pct": 18}},
        headers={**keys.headers("sam_sales_director"), "If-Match": etag},
    )
    assert countered.status_code == 200, countered.text
    accepted = await client.post(
        f"{deal_path(deal)}/accept-counter",
        json={"request_id": request["id"]},
        headers=as_rep(keys),
    )
    assert accepted.status_code == 200, accepted.text
    listed = await client.get(f"{deal_path(deal)}/approvals", headers=keys.headers("rep"))
    first: dict[str, Any] = listed.json()[0]
    assert first["counter_terms"] == {"discount_pct": "18"}
    assert first["counter_accepted_by"].endswith(f"integration for sf:{REP}")
    assert first["counter_accepted_at"] is not None


async def test_withdrawal_names_the_salesforce_user(client: httpx.AsyncClient, keys: Keys) -> None:
    deal = "0065g00000ActA0002"
    terms = {"contract_months": 12, "discount_pct": 20}
    await put_deal(client, keys, deal, deal_body("Acme", TERMS, terms))
    assert (await client.post(f"{deal_path(deal)}/submit", headers=as_rep(keys))).status_code == 200
    withdrawn = await client.post(f"{deal_path(deal)}/withdraw", headers=as_rep(keys))
    assert withdrawn.status_code == 200, withdrawn.text
    listed = (await client.get(f"{deal_path(deal)}/approvals", headers=keys.headers("rep"))).json()
    assert [(r["status"], r["decided_by"].split(":", 2)[2]) for r in listed] == [
        ("withdrawn", f"integration for sf:{REP}")
    ]
    assert len(await audit_actors(client, keys, "deal.withdrawn")) == 1


async def test_only_an_integration_key_may_act_for_someone(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    for role in ("rep", "admin", "approver"):
        refused = await client.post(
            "/v1/deals/0065g00000ActA0003/submit",
            headers={**keys.headers(role), "X-Acting-User": REP},
        )
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "X-Acting-User" in refused.json()["detail"]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "005Dn000001AbC",
        "005Dn000001AbCdIAKX",
        "005Dn000001AbCdAAA",
        "005Dn00-001AbCd",
        "005Dn000001AbCé",
    ],
)
async def test_a_value_that_is_not_a_salesforce_id_is_refused_naming_the_header(
    client: httpx.AsyncClient, keys: Keys, value: str
) -> None:
    refused = await client.get(
        "/v1/deals/0065g00000ActA0003",
        headers={**keys.headers("integration"), "X-Acting-User": value.encode()},
    )
    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in refused.json()["errors"]] == ["header.X-Acting-User"]


def test_the_console_names_the_rep_behind_the_integration_key() -> None:
    assert actor(f"key:3:salesforce for sf:{REP}") == f"Salesforce user {REP} (via salesforce)"
    assert actor("key:7:fiona") == "fiona"
