"""Fine groupings over a generated history: every grouping answers however many groups it has,
and a group's figures are the report's figures filtered to that group."""

from __future__ import annotations

import calendar
from collections import Counter
from datetime import date
from typing import Any

import httpx
import pytest
from tests.conftest import Keys

from governance.auth.principal import SYSTEM
from governance.db import Database
from governance.demo import generator
from governance.playbooks import publication

# 40 reps over two years: rep × month is about a thousand groups of 12 terms, rep alone 480.
DEALS = 1_500
AS_OF = date(2026, 11, 1)
GROUPINGS = [
    ["rep"],
    ["team", "month"],
    ["rep", "version"],
    ["rep", "segment"],
    ["region", "month"],
    ["segment", "month"],
    ["style", "month"],
    ["rep", "month"],
]


@pytest.fixture
def generated(database_url: str) -> None:
    db = Database(database_url)
    with db.unit_of_work() as session:
        publication.import_document(session, SYSTEM, generator._demo_document(), publish_now=True)
    generator.generate(db, DEALS, seed=5, as_of=AS_OF)
    db.dispose()


async def _variance(client: httpx.AsyncClient, keys: Keys, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(
        "/v1/analytics/variance", params=params, headers=keys.headers("leadership")
    )
    assert response.status_code == 200, response.text[:500]
    return response.json()["rows"]  # type: ignore[no-any-return]


@pytest.mark.usefixtures("generated")
async def test_every_grouping_answers_and_adds_up(client: httpx.AsyncClient, keys: Keys) -> None:
    overall = await _variance(client, keys)
    stated = {row["term"]: row["deals"] for row in overall}
    for grouping in GROUPINGS:
        rows = await _variance(client, keys, group_by=grouping)
        groups = {tuple(row["group"][d] for d in grouping) for row in rows}
        if grouping == ["rep", "month"]:
            assert len(groups) * 12 > 5_000  # far past SQLite's 500 parts of a compound SELECT
        # Each deal and each stated term (at ratio 0 or not) falls in exactly one group.
        summed: Counter[str | None] = Counter()
        for row in rows:
            summed[row["term"]] += row["deals"]
        assert dict(summed) == stated, grouping


@pytest.mark.usefixtures("generated")
async def test_a_group_has_the_figures_of_its_filter(client: httpx.AsyncClient, keys: Keys) -> None:
    rows = await _variance(client, keys, group_by=["rep", "month"])
    busiest = sorted(
        (row for row in rows if row["term"] is None), key=lambda row: (-row["deals"], str(row))
    )
    for picked in busiest[:3]:
        rep, month = picked["group"]["rep"], picked["group"]["month"]
        year, number = (int(part) for part in month.split("-"))
        last = calendar.monthrange(year, number)[1]
        filtered = await _variance(
            client, keys, rep=rep, **{"from": f"{month}-01", "to": f"{month}-{last:02d}"}
        )
        grouped = [row for row in rows if row["group"] == {"rep": rep, "month": month}]
        assert [_figures(row) for row in grouped] == [_figures(row) for row in filtered]
        assert picked["deals"] > 1
        assert any(row["term"] and row["p50"] == "0" for row in filtered)


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "group"}
