"""The figures analytics read are kept by the producers: stored checks and decisions."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from tests.conftest import Keys

DEAL = "/v1/deals/0065g00000LiveAAAA"


async def _report(client: httpx.AsyncClient, keys: Keys, name: str) -> list[dict[str, object]]:
    response = await client.get(f"/v1/analytics/{name}", headers=keys.headers("leadership"))
    assert response.status_code == 200, response.text
    rows: list[dict[str, object]] = response.json()["rows"]
    return rows


@pytest.mark.usefixtures("demo_published")
async def test_a_deal_counts_once_with_its_latest_check(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    rep = keys.headers("rep")
    deal = {
        "attributes": {"region": "EMEA", "segment": "enterprise", "amount": "100000"},
        "terms": {"discount_pct": 30, "payment_terms_days": 30, "contract_months": 12},
    }
    assert (await client.put(DEAL, json=deal, headers=rep)).status_code == 201
    check = (await client.post(f"{DEAL}/checks", headers=rep)).json()["result"]
    ratios = {t["key"]: Decimal(t["variance_ratio"]) for t in check["terms"]}
    rows = await _report(client, keys, "variance")
    by_term = {r["term"]: r for r in rows}
    assert by_term[None]["deals"] == 1
    assert Decimal(str(by_term[None]["mean"])) == Decimal(check["variance_score"]).quantize(
        Decimal("0.000001")
    )
    assert Decimal(str(by_term["discount_pct"]["mean"])) == ratios["discount_pct"].quantize(
        Decimal("0.000001")
    )
    assert by_term["discount_pct"]["outside_band_share"] == "1"
    assert set(by_term) == {None, "discount_pct", "payment_terms_days", "contract_months"}

    # Bring the discount inside its band and drop a term: the report follows the latest check.
    patch = {"terms": {"discount_pct": 10, "contract_months": None}}
    assert (await client.patch(DEAL, json=patch, headers=rep)).status_code == 200
    await client.post(f"{DEAL}/checks", headers=rep)
    by_term = {r["term"]: r for r in await _report(client, keys, "variance")}
    assert set(by_term) == {None, "discount_pct", "payment_terms_days"}
    assert by_term["discount_pct"]["deals"] == 1
    assert by_term["discount_pct"]["mean"] == "0"
    verdicts = await _report(client, keys, "verdicts")
    assert verdicts[0]["deals"] == 1
    assert verdicts[0]["auto_approved"] == 1


@pytest.mark.usefixtures("demo_published")
async def test_a_decision_records_its_cycle_time(client: httpx.AsyncClient, keys: Keys) -> None:
    rep = keys.headers("rep")
    deal = {
        "attributes": {"region": "EMEA", "segment": "enterprise", "amount": "100000"},
        "terms": {"payment_terms_days": 50},
    }
    assert (await client.put(DEAL, json=deal, headers=rep)).status_code == 201
    submitted = (await client.post(f"{DEAL}/submit", json={}, headers=rep)).json()
    (request,) = submitted["requests"]
    assert request["group"] == "finance"
    assert await _report(client, keys, "approvals") == []
    etag = (
        await client.get(f"/v1/approvals/{request['id']}", headers=keys.headers("approver_finance"))
    ).headers["etag"]
    decided = await client.post(
        f"/v1/approvals/{request['id']}/decision",
        json={"decision": "reject", "reason": "Sixty days is not for this customer"},
        headers={**keys.headers("approver_finance"), "If-Match": etag},
    )
    assert decided.status_code == 200, decided.text
    rows = await _report(client, keys, "approvals")
    assert [(r["approver_group"], r["step"], r["decided"]) for r in rows] == [
        (None, None, 1),
        ("finance", 1, 1),
    ]
    assert rows[0]["rejection_rate"] == "1"
    assert rows[0]["within_sla_share"] == "1"
    assert Decimal(str(rows[0]["cycle_hours_p50"])) < Decimal(1)


@pytest.mark.parametrize(
    "name",
    ["variance", "verdicts", "concessions", "approvals", "outcomes", "versions", "reviews",
     "consistency"],
)  # fmt: skip
async def test_reports_over_nothing_are_empty(
    client: httpx.AsyncClient, keys: Keys, name: str
) -> None:
    for group_by in ([], ["region"]):
        assert (
            await _report(client, keys, f"{name}?{'&'.join(f'group_by={g}' for g in group_by)}")
            == []
        )
    response = await client.get(
        f"/v1/analytics/{name}", headers={**keys.headers("admin"), "Accept": "text/csv"}
    )
    assert response.status_code == 200
    assert len(response.text.splitlines()) == 1  # the header only


@pytest.mark.usefixtures("demo_published")
async def test_a_closed_deal_shows_in_concessions_outcomes_and_reviews(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    rep = keys.headers("rep")
    profile = {"team": "France", "region": "EMEA", "style": "closer"}
    assert (
        await client.put("/v1/reps/rita", json=profile, headers=keys.headers("leadership"))
    ).status_code == 201
    deal = {
        "attributes": {"region": "EMEA", "segment": "smb", "amount": "100000", "owner_rep": "rita"},
        "terms": {"discount_pct": 20},
    }
    assert (await client.put(DEAL, json=deal, headers=rep)).status_code == 201
    assert (await client.post(f"{DEAL}/checks", headers=rep)).status_code == 201
    closed = await client.post(
        f"{DEAL}/outcome", json={"won": True, "close_date": "2026-11-20"}, headers=rep
    )
    assert closed.status_code == 201, closed.text
    # 20 points off a 100,000 list price, from an opening of 0, nothing asked in return.
    concessions = await _report(client, keys, "concessions?group_by=style")
    assert concessions[0] == {
        "group": {"style": "closer"}, "term": None, "deals": 1, "conceded": 1,
        "mean_conceded_share": "0.571429", "held": 0, "cost": "20000.00",
        "cost_per_deal": "20000.00", "gives_without_gets": 1, "gives_without_gets_cost": "20000.00",
    }  # fmt: skip
    outcomes = await _report(client, keys, "outcomes")
    assert (outcomes[0]["closed"], outcomes[0]["won"], outcomes[0]["average_discount"]) == (
        1, 1, "20.0000"
    )  # fmt: skip
    assert outcomes[0]["margin_kept"] == "0.8"
    review = {"instrumental": 6, "process": 5, "relationship": 7, "self": 4, "note": "Held firm."}
    filed = await client.put(f"{DEAL}/after-action-review", json=review, headers=rep)
    assert filed.status_code == 201, filed.text
    reviews = await _report(client, keys, "reviews?group_by=team&from=2026-11-01")
    assert reviews == [
        {"group": {"team": "France"}, "reviews": 1, "instrumental": "6.00", "process": "5.00",
         "relationship": "7.00", "self": "4.00", "overall": "5.50"}
    ]  # fmt: skip


@pytest.mark.usefixtures("demo_published")
async def test_csv_cells_never_run_as_formulas(client: httpx.AsyncClient, keys: Keys) -> None:
    rep = keys.headers("rep")
    deal = {"attributes": {"region": '=HYPERLINK("http://evil")'}, "terms": {"discount_pct": 5}}
    assert (await client.put(DEAL, json=deal, headers=rep)).status_code == 201
    assert (await client.post(f"{DEAL}/checks", headers=rep)).status_code == 201
    response = await client.get(
        "/v1/analytics/verdicts?group_by=region",
        headers={**keys.headers("admin"), "Accept": "text/csv"},
    )
    header, row = response.text.splitlines()
    assert row.startswith("\"'=HYPERLINK(")
    assert header.startswith("region,deals")
