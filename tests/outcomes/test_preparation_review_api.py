"""A deal's preparation before and after-action review after: plain resources, validated."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.conftest import Keys
from tests.driver import invalid_fields, put_deal

pytestmark = pytest.mark.usefixtures("demo_published")

OPP = "0065g00000AbCdEAAZ"
DEAL = {"attributes": {"amount": "100000"}, "terms": {"discount_pct": 12}}
PREMORTEM = [
    {"risk": "procurement stalls", "mitigation": "agree the timeline with the sponsor"},
    {"risk": "a cheaper rival", "mitigation": "quantify the migration cost"},
    {"risk": "legal insists on uncapped liability", "mitigation": "offer 2x ACV early"},
]
PREPARATION: dict[str, Any] = {
    "goal": "a three-year deal at no more than 10 % off",
    "terms": {
        "discount_pct": {"opening": 0, "goal": "8", "bottom_line": 15},
        "contract_months": {"opening": 36, "goal": 36, "bottom_line": 12},
        "support_level": {"opening": "standard", "goal": "standard", "bottom_line": "premium"},
        "uncapped_liability": {"opening": False, "goal": False, "bottom_line": True},
    },
    "customer_interests": ["predictable spend", "EU data residency"],
    "premortem": PREMORTEM,
}
REVIEW = {"instrumental": 5, "process": 6, "relationship": 7, "self": 4, "note": "held on price"}


@pytest.fixture(autouse=True)
async def deal(client: httpx.AsyncClient, keys: Keys) -> None:
    await put_deal(client, keys, OPP, DEAL, expect=(201,))


async def test_preparation_is_stored_and_replaced(client: httpx.AsyncClient, keys: Keys) -> None:
    url = f"/v1/deals/{OPP}/preparation"
    assert (await client.get(url, headers=keys.headers("rep"))).status_code == 404
    created = await client.put(url, json=PREPARATION, headers=keys.headers("rep"))
    assert created.status_code == 201, created.text
    assert created.headers["ETag"] == '"1"'
    body = created.json()
    assert body["terms"]["discount_pct"] == {"opening": "0", "goal": "8", "bottom_line": "15"}
    assert body["terms"]["uncapped_liability"]["bottom_line"] is True
    assert body["premortem"] == PREMORTEM
    assert (body["version"], body["customer_interests"]) == (
        1,
        ["predictable spend", "EU data residency"],
    )

    replaced = await client.put(
        url, json={**PREPARATION, "goal": None}, headers={**keys.headers("rep"), "If-Match": '"1"'}
    )
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["version"], replaced.json()["goal"]) == (2, None)
    stale = await client.put(
        url, json=PREPARATION, headers={**keys.headers("rep"), "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    fetched = await client.get(url, headers=keys.headers("approver"))
    assert (fetched.json()["version"], fetched.headers["ETag"]) == (2, '"2"')


async def test_preparation_refusals_name_the_field(client: httpx.AsyncClient, keys: Keys) -> None:
    url = f"/v1/deals/{OPP}/preparation"

    async def put(**changes: Any) -> httpx.Response:
        return await client.put(url, json={**PREPARATION, **changes}, headers=keys.headers("rep"))

    assert invalid_fields(
        await put(terms={"bogus": {"opening": 1, "goal": 1, "bottom_line": 1}})
    ) == ["terms.bogus"]
    # Discount is lower-is-better: opening 10 is worse than goal 8, and goal 8 worse than 5.
    assert invalid_fields(
        await put(terms={"discount_pct": {"opening": 10, "goal": 8, "bottom_line": 5}})
    ) == ["terms.discount_pct.opening", "terms.discount_pct.goal"]
    # Contract length is higher-is-better.
    assert invalid_fields(
        await put(terms={"contract_months": {"opening": 12, "goal": 24, "bottom_line": 36}})
    ) == ["terms.contract_months.opening", "terms.contract_months.goal"]
    assert invalid_fields(
        await put(
            terms={
                "support_level": {"opening": "gold", "goal": "standard", "bottom_line": "premium"}
            }
        )
    ) == ["terms.support_level.opening"]
    assert invalid_fields(await put(terms={"discount_pct": {"opening": 0, "goal": 8}})) == [
        "terms.discount_pct.bottom_line"
    ]
    assert invalid_fields(await put(premortem=PREMORTEM[:2])) == ["premortem"]
    assert invalid_fields(await put(premortem=[*PREMORTEM[:2], {"risk": "x"}])) == [
        "premortem[2].mitigation"
    ]
    assert invalid_fields(await put(customer_interests=[])) == ["customer_interests"]
    assert invalid_fields(await put(customer_interests=["x" * 201])) == ["customer_interests[0]"]
    assert invalid_fields(await put(goal="x" * 2001)) == ["goal"]
    assert (await client.get(url, headers=keys.headers("rep"))).status_code == 404


async def test_review_only_after_closing(client: httpx.AsyncClient, keys: Keys) -> None:
    url = f"/v1/deals/{OPP}/after-action-review"
    early = await client.put(url, json=REVIEW, headers=keys.headers("rep"))
    assert early.status_code == 409
    assert "no outcome yet" in early.json()["detail"]
    closed = await client.post(
        f"/v1/deals/{OPP}/outcome", json={"won": True}, headers=keys.headers("rep")
    )
    assert closed.status_code == 201, closed.text
    assert (await client.get(url, headers=keys.headers("rep"))).status_code == 404

    created = await client.put(url, json=REVIEW, headers=keys.headers("rep"))
    assert created.status_code == 201, created.text
    assert {k: created.json()[k] for k in REVIEW} == REVIEW
    replaced = await client.put(url, json={**REVIEW, "self": 6}, headers=keys.headers("rep"))
    assert (replaced.status_code, replaced.json()["self"]) == (200, 6)
    assert (await client.get(url, headers=keys.headers("leadership"))).json()["self"] == 6

    assert invalid_fields(
        await client.put(url, json={**REVIEW, "self": 8}, headers=keys.headers("rep"))
    ) == ["self"]
    assert invalid_fields(
        await client.put(url, json={**REVIEW, "process": 0}, headers=keys.headers("rep"))
    ) == ["process"]
    assert invalid_fields(
        await client.put(url, json={**REVIEW, "instrumental": "5"}, headers=keys.headers("rep"))
    ) == ["instrumental"]
    no_self = {k: v for k, v in REVIEW.items() if k != "self"}
    assert invalid_fields(
        await client.put(url, json={**no_self, "self_score": 5}, headers=keys.headers("rep"))
    ) == [
        "self",
        "self_score",
    ]
    assert invalid_fields(
        await client.put(url, json={**REVIEW, "note": "x" * 4001}, headers=keys.headers("rep"))
    ) == ["note"]
