"""Every analytics figure against the hand-computed history in conftest.py, as JSON and CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from tests.conftest import Keys

from governance.db import Database
from governance.deals.models import Deal
from governance.outcomes.models import Outcome

pytestmark = pytest.mark.usefixtures("history")


async def _get(client: httpx.AsyncClient, keys: Keys, path: str, **params: Any) -> dict[str, Any]:
    response = await client.get(path, params=params, headers=keys.headers("leadership"))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _pick(rows: list[dict[str, Any]], **where: Any) -> dict[str, Any]:
    found = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    assert len(found) == 1, (where, rows)
    return found[0]


async def test_verdict_mix_counts_each_live_deal_once(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    body = await _get(client, keys, "/v1/analytics/verdicts")
    assert body["rows"] == [
        {"group": {}, "deals": 5, "auto_approved": 2, "needs_approval": 2, "blocked": 1,
         "auto_approval_rate": "0.4"}
    ]  # fmt: skip
    by_region = await _get(client, keys, "/v1/analytics/verdicts", group_by="region")
    assert [(r["group"], r["deals"], r["auto_approval_rate"]) for r in by_region["rows"]] == [
        ({"region": "EMEA"}, 3, "0.333333"),
        ({"region": "NA"}, 2, "0.5"),
    ]


async def test_variance_score_and_term_ratios(client: httpx.AsyncClient, keys: Keys) -> None:
    rows = (await _get(client, keys, "/v1/analytics/variance"))["rows"]
    # Scores 0, 0, 0.1, 0.25, 0.6: p90 sits 60% of the way from 0.25 to 0.6.
    assert _pick(rows, term=None) == {
        "group": {}, "term": None, "deals": 5, "mean": "0.19", "p50": "0.1",
        "p90": "0.46", "outside_band_share": "0.6",
    }  # fmt: skip
    assert _pick(rows, term="discount_pct") == {
        "group": {}, "term": "discount_pct", "deals": 5, "mean": "0.38", "p50": "0.2",
        "p90": "0.92", "outside_band_share": "0.6",
    }  # fmt: skip
    assert _pick(rows, term="payment_terms_days") == {
        "group": {}, "term": "payment_terms_days", "deals": 3, "mean": "0.033333",
        "p50": "0", "p90": "0.08", "outside_band_share": "0.333333",
    }  # fmt: skip
    assert [r["term"] for r in rows] == [None, "discount_pct", "payment_terms_days"]


async def test_variance_grouped_and_filtered(client: httpx.AsyncClient, keys: Keys) -> None:
    rows = (await _get(client, keys, "/v1/analytics/variance", group_by="region"))["rows"]
    emea = _pick(rows, group={"region": "EMEA"}, term=None)
    assert (emea["deals"], emea["mean"], emea["p50"], emea["p90"]) == (
        3, "0.283333", "0.25", "0.53"
    )  # fmt: skip
    na = _pick(rows, group={"region": "NA"}, term=None)
    assert (na["mean"], na["p50"], na["p90"]) == ("0.05", "0.05", "0.09")
    # Dates are the latest check's; the bounds are inclusive.
    since = await _get(client, keys, "/v1/analytics/verdicts", **{"from": "2026-02-01"})
    assert since["rows"][0]["deals"] == 3
    until = await _get(client, keys, "/v1/analytics/verdicts", to="2026-01-15")
    assert until["rows"][0]["deals"] == 2
    # Style and team come from the rep's profile.
    diplomats = await _get(client, keys, "/v1/analytics/verdicts", style="diplomat")
    assert diplomats["rows"][0]["deals"] == 2
    by_team = await _get(client, keys, "/v1/analytics/verdicts", group_by=["team", "style"])
    assert [(r["group"], r["deals"]) for r in by_team["rows"]] == [
        ({"team": "DACH", "style": "diplomat"}, 2),
        ({"team": "France", "style": "closer"}, 1),
        ({"team": "US East", "style": "strategist"}, 2),
    ]
    v2 = await _get(client, keys, "/v1/analytics/verdicts", playbook="standard", version=2)
    assert v2["rows"][0]["deals"] == 2
    monthly = await _get(client, keys, "/v1/analytics/verdicts", group_by="month")
    assert [(r["group"]["month"], r["deals"]) for r in monthly["rows"]] == [
        ("2026-01", 2), ("2026-02", 2), ("2026-03", 1)
    ]  # fmt: skip


async def test_concessions_of_won_deals(client: httpx.AsyncClient, keys: Keys) -> None:
    rows = (await _get(client, keys, "/v1/analytics/concessions"))["rows"]
    assert rows[0] == {
        "group": {}, "term": None, "deals": 3, "conceded": 3, "mean_conceded_share": "0.2",
        "held": 1, "cost": "50500.00", "cost_per_deal": "16833.33", "gives_without_gets": 2,
        "gives_without_gets_cost": "10500.00",
    }  # fmt: skip
    # Most conceded first.
    assert rows[1] == {
        "group": {}, "term": "discount_pct", "deals": 3, "conceded": 3,
        "mean_conceded_share": "0.333333", "held": 1, "cost": "50500.00",
        "cost_per_deal": "16833.33", "gives_without_gets": 2, "gives_without_gets_cost": "10500.00",
    }  # fmt: skip
    assert rows[2] == {
        "group": {}, "term": "payment_terms_days", "deals": 2, "conceded": 0,
        "mean_conceded_share": "0", "held": 2, "cost": "0.00", "cost_per_deal": "0.00",
        "gives_without_gets": 0, "gives_without_gets_cost": "0.00",
    }  # fmt: skip
    by_rep = (await _get(client, keys, "/v1/analytics/concessions", group_by="rep"))["rows"]
    assert [(r["group"]["rep"], r["term"], r["cost"]) for r in by_rep] == [
        ("ana", None, "10000.00"), ("ana", "discount_pct", "10000.00"),
        ("ana", "payment_terms_days", "0.00"),
        ("ben", None, "40000.00"), ("ben", "discount_pct", "40000.00"),
        ("ben", "payment_terms_days", "0.00"),
        ("cy", None, "500.00"), ("cy", "discount_pct", "500.00"),
    ]  # fmt: skip


async def test_approval_cycle_times(client: httpx.AsyncClient, keys: Keys) -> None:
    rows = (await _get(client, keys, "/v1/analytics/approvals"))["rows"]
    # Cycles 0.5 h, 2 h, 10 h, 25 h: the median halfway between 2 and 10, p90 70% of 10→25.
    assert rows[0] == {
        "group": {}, "approver_group": None, "step": None, "decided": 4,
        "cycle_hours_p50": "6.00", "cycle_hours_p90": "20.50", "within_sla_share": "0.5",
        "escalated": 1, "rejection_rate": "0.25", "counter_rate": "0.25",
    }  # fmt: skip
    assert [(r["approver_group"], r["step"], r["decided"], r["cycle_hours_p50"]) for r in rows[1:]] == [
        ("finance", 1, 1, "0.50"), ("finance", 2, 1, "10.00"), ("legal", 1, 1, "25.00"),
        ("sales_director", 1, 1, "2.00"),
    ]  # fmt: skip
    finance2 = _pick(rows, approver_group="finance", step=2)
    assert (finance2["within_sla_share"], finance2["escalated"]) == ("0", 1)


async def test_outcomes_by_variance_band(client: httpx.AsyncClient, keys: Keys) -> None:
    body = await _get(client, keys, "/v1/analytics/outcomes")
    assert body["discount_term"] == "discount_pct"
    rows = body["rows"]
    assert rows[0] == {
        "group": {}, "band": None, "closed": 4, "won": 3, "win_rate": "0.75",
        "average_discount": "11.6667", "margin_kept": "0.837097",
    }  # fmt: skip
    assert rows[1:] == [
        {"group": {}, "band": "0", "closed": 2, "won": 2, "win_rate": "1",
         "average_discount": "7.5000", "margin_kept": "0.904545"},
        {"group": {}, "band": "(0, 0.1]", "closed": 1, "won": 0, "win_rate": "0",
         "average_discount": None, "margin_kept": None},
        {"group": {}, "band": "(0.2, 0.35]", "closed": 1, "won": 1, "win_rate": "1",
         "average_discount": "20.0000", "margin_kept": "0.8"},
    ]  # fmt: skip


async def test_version_against_previous_over_equal_windows(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    rows = (await _get(client, keys, "/v1/analytics/versions", playbook="standard"))["rows"]
    assert rows == [
        {
            "playbook": "standard", "version": 2, "previous_version": 1, "window_days": 40,
            "version_from": "2026-02-10", "version_to": "2026-03-21",
            "previous_from": "2026-01-01", "previous_to": "2026-02-09",
            "closed": 2, "previous_closed": 2, "win_rate": "0.5", "previous_win_rate": "1",
            "mean_variance_score": "0.05", "previous_mean_variance_score": "0.125",
            "auto_approval_rate": "0.5", "previous_auto_approval_rate": "0.5",
            "margin_kept": "0.95", "previous_margin_kept": "0.833333",
        }
    ]  # fmt: skip


async def test_review_scores(client: httpx.AsyncClient, keys: Keys) -> None:
    rows = (await _get(client, keys, "/v1/analytics/reviews"))["rows"]
    assert rows == [
        {"group": {}, "reviews": 3, "instrumental": "3.33", "process": "4.00",
         "relationship": "4.67", "self": "4.00", "overall": "4.00"}
    ]  # fmt: skip
    by_style = (await _get(client, keys, "/v1/analytics/reviews", group_by="style"))["rows"]
    assert [(r["group"]["style"], r["reviews"], r["instrumental"]) for r in by_style] == [
        ("closer", 1, "5.00"), ("diplomat", 1, "3.00"), ("strategist", 1, "2.00")
    ]  # fmt: skip


async def test_consistency_finds_the_team_that_gives_more(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    body = await _get(client, keys, "/v1/analytics/consistency", across="team", min_deals=1)
    assert body["rows"] == [
        {
            "term": "discount_pct", "playbook": "standard", "segment": "enterprise",
            "currency": "USD", "amount_band": "50k–250k", "across": "team",
            "most_given": "DACH", "most_given_share": "0.571429", "most_given_final": "20.0000",
            "most_given_deals": 1,
            "least_given": "France", "least_given_share": "0.285714",
            "least_given_final": "10.0000", "least_given_deals": 1,
            "spread": "0.285715", "compared": 2,
        }
    ]  # fmt: skip
    # One deal per team is too few by default; a spread below the threshold is not listed.
    assert (await _get(client, keys, "/v1/analytics/consistency", across="team"))["rows"] == []
    wide = await _get(
        client, keys, "/v1/analytics/consistency", across="team", min_deals=1, min_spread="0.3"
    )
    assert wide["rows"] == []


def _flatten(row: dict[str, Any], dimensions: list[str]) -> list[str]:
    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    group = row.get("group", {})
    return [cell(group[d]) for d in dimensions] + [cell(v) for k, v in row.items() if k != "group"]


@pytest.mark.parametrize(
    ("path", "params", "dimensions"),
    [
        ("variance", {"group_by": ["region", "team"]}, ["region", "team"]),
        ("verdicts", {"group_by": "style"}, ["style"]),
        ("concessions", {"group_by": "rep"}, ["rep"]),
        ("approvals", {"group_by": "segment"}, ["segment"]),
        ("outcomes", {"group_by": "version"}, ["version"]),
        ("reviews", {}, []),
        ("versions", {}, []),
        ("consistency", {"across": "team", "min_deals": 1}, []),
    ],
)
async def test_csv_matches_json(
    client: httpx.AsyncClient, keys: Keys, path: str, params: dict[str, Any], dimensions: list[str]
) -> None:
    url = f"/v1/analytics/{path}"
    as_json = await _get(client, keys, url, **params)
    response = await client.get(
        url, params=params, headers={**keys.headers("leadership"), "Accept": "text/csv"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(response.text)))
    fields = [k for k in as_json["rows"][0] if k != "group"]
    assert table[0] == dimensions + fields
    assert table[1:] == [_flatten(r, dimensions) for r in as_json["rows"]]
    assert len(table) > 1


async def test_bad_filters_name_the_parameter(client: httpx.AsyncClient, keys: Keys) -> None:
    headers = keys.headers("leadership")
    for params, field in (
        ({"from": "2026-03-01", "to": "2026-02-01"}, "from"),
        ({"group_by": "planet"}, "group_by"),
        ({"group_by": ["region", "region"]}, "group_by"),
        ({"style": "bully"}, "style"),
        ({"from": "yesterday"}, "from"),
    ):
        response = await client.get("/v1/analytics/verdicts", params=params, headers=headers)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert any(field in e["field"] for e in response.json()["errors"]), response.json()


@pytest.mark.parametrize(
    "report",
    ["variance", "verdicts", "concessions", "approvals", "outcomes", "reviews", "consistency"],
)
async def test_the_widest_dates_cover_everything(
    client: httpx.AsyncClient, keys: Keys, report: str
) -> None:
    """`to=9999-12-31` (the last day a date has) is the end of time, not a 500 on the day after."""
    everything = await _get(client, keys, f"/v1/analytics/{report}")
    widest = await _get(client, keys, f"/v1/analytics/{report}", **{"from": "0001-01-01", "to": "9999-12-31"})  # fmt: skip
    assert widest["rows"] == everything["rows"]
    assert everything["rows"] or report == "consistency", report  # no spread wide enough there


async def test_reps_may_not_read_analytics(client: httpx.AsyncClient, keys: Keys) -> None:
    response = await client.get("/v1/analytics/verdicts", headers=keys.headers("rep"))
    assert response.status_code == 403


async def test_a_misspelt_filter_is_refused_not_ignored(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    response = await client.get(
        "/v1/analytics/verdicts", params={"regoin": "EMEA"}, headers=keys.headers("leadership")
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "regoin"]
    # A parameter of another report is unknown here too.
    response = await client.get(
        "/v1/analytics/verdicts", params={"across": "team"}, headers=keys.headers("leadership")
    )
    assert response.status_code == 422
    ok = await client.get(
        "/v1/analytics/consistency", params={"across": "team"}, headers=keys.headers("leadership")
    )
    assert ok.status_code == 200


async def test_money_in_different_currencies_is_kept_apart(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    rows = (await _get(client, keys, "/v1/analytics/concessions", group_by="currency"))["rows"]
    totals = [(r["group"]["currency"], r["deals"], r["cost"]) for r in rows if r["term"] is None]
    assert totals == [("EUR", 1, "500.00"), ("USD", 2, "50000.00")]
    usd = await _get(client, keys, "/v1/analytics/outcomes", currency="USD")
    assert (usd["rows"][0]["closed"], usd["rows"][0]["margin_kept"]) == (3, "0.833333")


@pytest.mark.parametrize(
    ("report", "counted"),
    [
        ("variance", "deals"),
        ("verdicts", "deals"),
        ("approvals", "decided"),
        ("reviews", "reviews"),
    ],
)
async def test_every_deal_report_filters_and_groups_by_the_deals_currency(
    client: httpx.AsyncClient, keys: Keys, report: str, counted: str
) -> None:
    def total(rows: list[dict[str, Any]]) -> dict[str | None, int]:
        firsts = [r for r in rows if r.get("term") is None and r.get("approver_group") is None]
        return {r["group"].get("currency"): r[counted] for r in firsts}

    everything = total((await _get(client, keys, f"/v1/analytics/{report}"))["rows"])[None]
    by_currency = total(
        (await _get(client, keys, f"/v1/analytics/{report}", group_by="currency"))["rows"]
    )
    assert set(by_currency) <= {"EUR", "USD"}
    assert sum(by_currency.values()) == everything > 0
    for currency, count in by_currency.items():
        only = await _get(client, keys, f"/v1/analytics/{report}", currency=currency)
        assert total(only["rows"]) == {None: count}


async def test_a_slow_close_counts_for_the_version_it_was_negotiated_under(
    client: httpx.AsyncClient, keys: Keys, db: Database
) -> None:
    # Checked on v1 a few days before v2 went live, closed (won) three weeks after.
    with db.unit_of_work() as session:
        deal = Deal(
            external_id="006000000000000099", terms={}, status="draft", region="EMEA",
            checked_playbook="standard", checked_version=1,
        )  # fmt: skip
        session.add(deal)
        session.flush()
        session.add(
            Outcome(
                deal_id=deal.id, won=True, closed_at=datetime(2026, 3, 2, tzinfo=UTC),
                close_date=date(2026, 3, 2), checked_on=date(2026, 2, 5), final_terms={},
                source="api", recorded_by="test", trades=[], playbook_key="standard",
                playbook_version=1, verdict="auto_approved", variance_micro=0, region="EMEA",
            )
        )  # fmt: skip
    (row,) = (await _get(client, keys, "/v1/analytics/versions"))["rows"]
    assert (row["previous_closed"], row["previous_win_rate"]) == (3, "1")
    assert row["closed"] == 2
