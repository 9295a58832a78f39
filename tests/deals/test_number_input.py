"""Numbers are read one strict way wherever they enter: text that some reader would take for a
number but that is not written as one is a 422 naming the field, and nothing is stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.conftest import Keys

pytestmark = pytest.mark.usefixtures("demo_published")

DEAL = "/v1/deals/0065g00000AbCdEAAV"
LENIENT = [
    "1_000",
    "١٢٣",  # Arabic-Indic digits
    "１２３",  # full-width digits
    " 5 ",
    "5\n",
    "NaN",
    "Infinity",
    "-inf",
    "0x10",
    "1e999999999",
    ".5",
    "5.",
]


def assert_refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == [field], response.json()


@pytest.mark.parametrize("text", LENIENT)
async def test_deal_terms_and_attributes_refuse_numbers_not_written_as_numbers(
    client: httpx.AsyncClient, keys: Keys, text: str
) -> None:
    rep = keys.headers("rep")
    for body, field in (
        ({"terms": {"discount_pct": text}}, "terms.discount_pct"),
        ({"attributes": {"amount": text}}, "attributes.amount"),
        ({"attributes": {"seats": text}}, "attributes.seats"),
    ):
        assert_refused(await client.put(DEAL, json=body, headers=rep), field)
        assert_refused(await client.post("/v1/checks", json=body, headers=rep), field)
    assert (await client.get(DEAL, headers=rep)).status_code == 404  # nothing was stored


@pytest.mark.parametrize("text", ["1_000", " 5 ", "NaN", "0x10"])
async def test_counters_outcomes_and_preparations_refuse_them_too(
    client: httpx.AsyncClient, keys: Keys, text: str
) -> None:
    counter = await client.post(
        "/v1/approvals/1/decision",
        json={"decision": "counter", "reason": "r", "counter_terms": {"discount_pct": text}},
        headers=keys.headers("approver_finance"),
    )
    assert_refused(counter, "counter_terms.discount_pct")
    outcome = await client.post(
        f"{DEAL}/outcome",
        json={"won": True, "final_terms": {"discount_pct": text}},
        headers=keys.headers("rep"),
    )
    assert_refused(outcome, "final_terms.discount_pct")
    prepared = {"goal": "10", "opening": "5", "bottom_line": text}
    preparation = await client.put(
        f"{DEAL}/preparation",
        json={
            "terms": {"discount_pct": prepared},
            "customer_interests": ["speed"],
            "premortem": [{"risk": "r", "mitigation": "m"}] * 3,
        },
        headers=keys.headers("rep"),
    )
    assert_refused(preparation, "terms.discount_pct.bottom_line")


async def test_playbook_numbers_are_read_strictly(
    client: httpx.AsyncClient, keys: Keys, demo_yaml: str
) -> None:
    exported = await client.get(
        "/v1/playbooks/standard/export", params={"format": "json"}, headers=keys.headers("rep")
    )
    document: dict[str, Any] = exported.json()
    document["key"] = "strict"
    document["scope"] = {"region": "Mars"}
    document["terms"][0]["band"]["high"] = "1_5"
    response = await client.post("/v1/playbooks", json=document, headers=keys.headers("admin"))
    assert_refused(response, "terms[0].band.high")


async def test_numbers_written_as_numbers_are_kept_and_zero_has_no_sign(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    rep = keys.headers("rep")
    response = await client.put(
        DEAL,
        json={
            "terms": {"discount_pct": "-0", "free_months": -0.0, "contract_months": "+24"},
            "attributes": {"amount": "-0.00", "postcode": "01234", "phone": "+49 30 1234"},
        },
        headers=rep,
    )
    assert response.status_code == 201, response.text
    deal = response.json()
    assert deal["terms"] == {"discount_pct": "0", "free_months": "0.0", "contract_months": "24"}
    assert deal["attributes"]["amount"] == "0.00"
    assert deal["attributes"]["postcode"] == "01234"
    assert deal["attributes"]["phone"] == "+49 30 1234"
    checked = await client.post(f"{DEAL}/checks", headers=rep)
    assert checked.status_code in (200, 201), checked.text
