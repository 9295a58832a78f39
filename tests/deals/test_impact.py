"""A playbook draft measured on recent deals: verdicts that change, terms that start or stop
needing approval, approver groups asked more or less; bounded in time and count; nothing
stored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from tests.conftest import DEMO, Keys

from governance.db import Database, utcnow
from governance.deals import impact as deal_impact
from governance.deals.models import DealCheck
from governance.engine.document import PlaybookDocument
from governance.playbooks import formats

pytestmark = pytest.mark.usefixtures("demo_published")


def demo() -> PlaybookDocument:
    return formats.parse_text(DEMO.read_text(encoding="utf-8"), "application/yaml")


def changed(doc: PlaybookDocument, term: str, **fields: Any) -> PlaybookDocument:
    raw = doc.model_dump(mode="json", exclude_none=True)
    for item in raw["terms"]:
        if item["key"] == term:
            item.update(fields)
    return PlaybookDocument.model_validate(raw)


async def checked(client: httpx.AsyncClient, keys: Keys, n: int, terms: dict[str, Any]) -> None:
    deal = f"0065g00000Imp{n:03d}AA"
    rep = keys.headers("rep")
    stored = await client.put(
        f"/v1/deals/{deal}",
        json={"name": f"Deal {n}", "attributes": {"region": "EMEA"}, "terms": terms},
        headers=rep,
    )
    assert stored.status_code == 201, stored.text
    assert (await client.post(f"/v1/deals/{deal}/checks", headers=rep)).status_code in (200, 201)


async def test_a_tighter_band_counts_new_approvals_by_term_and_group(
    client: httpx.AsyncClient, keys: Keys, db: Database
) -> None:
    await checked(client, keys, 1, {"payment_terms_days": 40})  # within 45 today
    await checked(client, keys, 2, {"payment_terms_days": 30})  # within either way
    await checked(client, keys, 3, {"payment_terms_days": 50})  # finance either way
    live = demo()
    draft = changed(live, "payment_terms_days", band={"low": "0", "high": "35"})
    with db.session() as session:
        before = session.scalar(select(func.count()).select_from(DealCheck))
        measured = deal_impact.impact(session, "standard", live, draft)
        assert session.scalar(select(func.count()).select_from(DealCheck)) == before
    assert (measured.deals, measured.changed, measured.skipped) == (3, 1, 0)
    assert measured.moves == [("auto_approved", "needs_approval", 1)]
    assert [(t.key, t.start, t.stop) for t in measured.terms] == [("payment_terms_days", 1, 0)]
    assert [(g.group, g.before, g.after) for g in measured.groups] == [("finance", 1, 2)]
    assert measured.verdicts_after == {"auto_approved": 1, "needs_approval": 2}


async def test_a_removed_term_stops_needing_approval_and_the_deal_still_counts(
    client: httpx.AsyncClient, keys: Keys, db: Database
) -> None:
    await checked(client, keys, 1, {"free_months": 2, "discount_pct": 5})
    live = demo()
    raw = live.model_dump(mode="json", exclude_none=True)
    raw["terms"] = [t for t in raw["terms"] if t["key"] != "free_months"]
    raw["rules"] = [r for r in raw["rules"] if r["key"] != "strong_position_tightens"]
    draft = PlaybookDocument.model_validate(raw)
    with db.session() as session:
        measured = deal_impact.impact(session, "standard", live, draft)
    assert (measured.deals, measured.changed) == (1, 1)
    assert [(t.key, t.start, t.stop) for t in measured.terms] == [("free_months", 0, 1)]
    assert {g.group: (g.before, g.after) for g in measured.groups} == {
        "sales_director": (1, 0),
        "finance": (1, 0),
    }


async def test_only_recent_deals_of_this_playbook_up_to_the_limit(
    client: httpx.AsyncClient, keys: Keys, db: Database
) -> None:
    for n in range(1, 4):
        await checked(client, keys, n, {"discount_pct": 17})
    live = demo()
    draft = changed(live, "discount_pct", band={"low": "0", "high": "18"})
    with db.session() as session:
        assert deal_impact.impact(session, "standard", live, draft, limit=2).deals == 2
        later = utcnow() + timedelta(days=31)
        assert deal_impact.impact(session, "standard", live, draft, days=30, now=later).deals == 0
        assert deal_impact.impact(session, "other", live, draft).deals == 0
        bounded = deal_impact.impact(session, "standard", live, draft, days=10**6, limit=10**9)
    assert (bounded.days, bounded.limit) == (deal_impact.MAX_DAYS, deal_impact.MAX_LIMIT)
    assert bounded.changed == 3


async def test_the_api_measures_a_draft_for_leadership_and_approvers(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    await checked(client, keys, 1, {"discount_pct": 17})
    none_yet = await client.get(
        "/v1/playbooks/standard/versions/1/impact", headers=keys.headers("leadership")
    )
    assert none_yet.status_code == 409
    assert "no published or earlier version" in none_yet.json()["detail"]
    draft = await client.post("/v1/playbooks/standard/versions", headers=keys.headers("leadership"))
    assert draft.status_code == 201
    term = next(t for t in draft.json()["document"]["terms"] if t["key"] == "discount_pct")
    term["band"]["high"] = "18"
    saved = await client.put(
        "/v1/playbooks/standard/versions/2/terms/discount_pct",
        json=term,
        headers={**keys.headers("leadership"), "If-Match": draft.headers["ETag"]},
    )
    assert saved.status_code == 200, saved.text
    for who in ("leadership", "approver", "admin"):
        measured = await client.get(
            "/v1/playbooks/standard/versions/2/impact?days=30&limit=10", headers=keys.headers(who)
        )
        assert measured.status_code == 200, measured.text
        body = measured.json()
        assert (body["version"], body["baseline"], body["deals"], body["changed"]) == (2, 1, 1, 1)
        assert body["moves"] == [{"before": "needs_approval", "after": "auto_approved", "deals": 1}]
        assert body["terms"] == [
            {"term": "discount_pct", "label": "Discount off list price", "start": 0, "stop": 1}
        ]
        assert body["groups"] == [{"group": "sales_director", "before": 1, "after": 0}]
    refused = await client.get(
        "/v1/playbooks/standard/versions/2/impact", headers=keys.headers("rep")
    )
    assert refused.status_code == 403
    bad = await client.get(
        "/v1/playbooks/standard/versions/2/impact?days=0", headers=keys.headers("admin")
    )
    assert bad.status_code == 422
