"""A close synced from Salesforce carries the same figures as one recorded through the API."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from tests.conftest import Keys
from tests.driver import opportunity

from fake_salesforce import FakeSalesforce
from governance.db import Database
from governance.playbooks.registry import PlaybookRegistry
from governance.salesforce import inbound
from governance.salesforce.client import SimpleSalesforceClient
from governance.salesforce.mapping import SyncMapping
from governance.settings import Settings

pytestmark = pytest.mark.usefixtures("demo_published")


async def test_a_synced_loss_records_figures_without_a_reason(
    client: httpx.AsyncClient,
    keys: Keys,
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
) -> None:
    (lost,) = fake.add_opportunities(
        [opportunity("Lost", Discount__c=12, Payment_Terms_Days__c=45, StageName="Closed Lost")]
    )
    report, _ = inbound.pull(db, sf_client, registry, settings, mapping)
    assert (report.closed, report.failed) == (1, 0)

    response = await client.get(f"/v1/deals/{lost}/outcome", headers=keys.headers("rep"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["won"], body["loss_reason"], body["source"]) == (False, None, "salesforce")
    assert body["recorded_by"] == "salesforce-sync"
    assert body["playbook"] == {"key": "standard", "version": 1}
    terms = {t["key"]: t for t in body["terms"]}
    # 12 % of 120,000, and 15 more days at 5 % a year on 120,000.
    assert Decimal(terms["discount_pct"]["cost"]) == Decimal(14400)
    assert terms["payment_terms_days"]["cost"] == "246.58"  # money: to the cent
    assert terms["contract_months"]["conceded"] == "24"  # 36 → 12
    assert body["cost"] == "14646.58"

    # A re-read of the same close records nothing again.
    fake.update_opportunity(lost, {"Name": "Lost (renamed)"})
    again, _ = inbound.pull(db, sf_client, registry, settings, mapping)
    assert again.closed == 0


async def test_the_sync_keeps_what_a_person_recorded(
    client: httpx.AsyncClient,
    keys: Keys,
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
) -> None:
    (opp,) = fake.add_opportunities([opportunity("Won", Discount__c=20)])
    inbound.pull(db, sf_client, registry, settings, mapping)
    # The deal desk records the close first: the customer signed at 18 %, with a case study.
    recorded = await client.post(
        f"/v1/deals/{opp}/outcome",
        json={
            "won": True,
            "final_terms": {"discount_pct": 18},
            "trades": [{"gave": "discount_pct", "got": ["public case study"]}],
        },
        headers=keys.headers("rep"),
    )
    assert recorded.status_code == 201, recorded.text
    fake.update_opportunity(opp, {"StageName": "Closed Won"})
    report, _ = inbound.pull(db, sf_client, registry, settings, mapping)
    assert report.closed == 0
    body = (await client.get(f"/v1/deals/{opp}/outcome", headers=keys.headers("rep"))).json()
    assert (body["source"], body["final_terms"]) == ("api", {"discount_pct": 18})
    assert [t["got"] for t in body["trades"] if not t.get("inferred")] == [["public case study"]]
    # Salesforce then says the deal was lost after all: won follows it, the details stay.
    fake.update_opportunity(opp, {"StageName": "Closed Lost"})
    report, _ = inbound.pull(db, sf_client, registry, settings, mapping)
    assert report.closed == 1
    body = (await client.get(f"/v1/deals/{opp}/outcome", headers=keys.headers("rep"))).json()
    assert (body["won"], body["final_terms"]) == (False, {"discount_pct": 18})


async def test_a_page_of_closes_records_each_with_its_own_figures(
    client: httpx.AsyncClient,
    keys: Keys,
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
) -> None:
    won, lost, _open = fake.add_opportunities(
        [
            opportunity("Won", Discount__c=5, StageName="Closed Won"),
            opportunity("Lost", Discount__c=12, Payment_Terms_Days__c=45, StageName="Closed Lost"),
            opportunity("Open"),
        ]
    )
    report, _ = inbound.pull(db, sf_client, registry, settings, mapping)
    assert (report.read, report.closed, report.failed) == (3, 2, 0)

    bodies = {}
    for opp in (won, lost):
        response = await client.get(f"/v1/deals/{opp}/outcome", headers=keys.headers("rep"))
        assert response.status_code == 200, response.text
        bodies[opp] = response.json()
        audit = await client.get(
            "/v1/audit", params={"entity_id": opp}, headers=keys.headers("admin")
        )
        assert "deal.closed" in [e["action"] for e in audit.json()["items"]]
    assert (bodies[won]["won"], bodies[lost]["won"]) == (True, False)
    # Each close is measured on its own terms: 5 % of 120,000; the loss as in the test above.
    assert Decimal(bodies[won]["cost"]) == Decimal(6000)
    assert Decimal(bodies[lost]["cost"]) == Decimal("14646.58")  # money: two places
