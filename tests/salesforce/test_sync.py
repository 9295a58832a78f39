"""The round trip against a fake org: opportunities in, checked, governance fields back out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from tests.conftest import Keys
from tests.driver import opportunity

from fake_salesforce import FakeSalesforce
from governance.db import Database
from governance.playbooks.registry import PlaybookRegistry
from governance.salesforce import inbound, outbound
from governance.salesforce.client import SimpleSalesforceClient
from governance.salesforce.mapping import SyncMapping
from governance.settings import Settings

pytestmark = pytest.mark.usefixtures("demo_published")


async def deal(client: httpx.AsyncClient, keys: Keys, external_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/deals/{external_id}", headers=keys.headers("admin"))
    body: dict[str, Any] = response.json()
    body["http_status"] = response.status_code
    return body


async def test_opportunities_round_trip(
    client: httpx.AsyncClient,
    keys: Keys,
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
) -> None:
    within, exception, doomed, closing = fake.add_opportunities(
        [
            opportunity("Within"),
            opportunity("Exception", Discount__c=20, Submit_For_Approval__c=True),
            opportunity("Doomed"),
            opportunity("Closing", Discount__c=12),
        ]
    )
    fake.batch_size = 2  # two pages, so an edit can land between them

    edited: list[str] = []

    def edit_mid_run(done: int, total: int) -> None:
        if done == 2 and not edited:  # after the first page: change a record already read
            fake.update_opportunity(within, {"Discount__c": 16})
            edited.append(within)

    report, run = inbound.pull(db, sf_client, registry, settings, mapping, progress=edit_mid_run)
    assert (report.read, report.created, report.checked, report.failed) == (4, 4, 4, 0)
    assert report.submitted == 1
    assert run.status == "done"
    assert report.api_calls == 2  # query + one queryMore

    body = await deal(client, keys, within)
    assert body["terms"]["discount_pct"] == "10"  # read before the edit
    assert body["attributes"]["region"] == "EMEA"
    assert body["last_check"]["verdict"] == "auto_approved"
    flagged = await deal(client, keys, exception)
    assert flagged["status"] == "in_review"  # Submit_For_Approval__c was ticked
    assert flagged["last_check"]["verdict"] == "needs_approval"

    pushed = outbound.push(db, sf_client, mapping, settings.salesforce, settings.public_url)
    assert (pushed.pushed, pushed.failed) == (4, 0)
    assert pushed.api_calls == 1
    org = fake.get(exception)
    assert org["Governance_Status__c"] == "needs_approval"
    assert org["Governance_Approval_Status__c"] == "in_review"
    assert org["Governance_Approvers__c"] == "sales_director"
    assert org["Governance_Check_URL__c"].endswith(f"/v1/deals/{exception}/checks")
    assert fake.get(within)["Governance_Status__c"] == "auto_approved"

    # The edit made during the first run, a deletion and a close are all picked up next time;
    # our own write-backs come round too, and change nothing.
    fake.delete_opportunity(doomed)
    fake.update_opportunity(closing, {"StageName": "Closed Won"})
    second, _ = inbound.pull(db, sf_client, registry, settings, mapping)
    assert second.failed == 0
    assert second.deleted == 1
    assert second.closed == 1
    assert second.updated == 2  # the edit and the close
    assert second.created == 0
    assert (await deal(client, keys, within))["terms"]["discount_pct"] == "16"
    assert (await deal(client, keys, doomed))["http_status"] == 404
    again = outbound.push(db, sf_client, mapping, settings.salesforce, settings.public_url)
    assert again.failed == 0
    assert fake.get(closing)["Governance_Outcome__c"] == "won"
    # The money conceded at close: 12 points off the 0 % opening on 120,000.
    assert fake.get(closing)["Governance_Concession_Cost__c"] == 14400
    assert fake.get(within)["Governance_Concession_Cost__c"] is None  # still open
    assert fake.get(within)["Governance_Status__c"] == "needs_approval"  # 16% needs approval
    # Not submitted, so no request is open: the approvers are those the check says it needs.
    assert fake.get(within)["Governance_Approvers__c"] == "sales_director"
    assert fake.get(within)["Governance_Approval_Status__c"] == "draft"

    # A third pull sees only our own writes: nothing is applied, checked or pushed again.
    third, _ = inbound.pull(db, sf_client, registry, settings, mapping)
    assert (third.created, third.updated, third.checked, third.deleted) == (0, 0, 0, 0)
    quiet = outbound.push(db, sf_client, mapping, settings.salesforce, settings.public_url)
    assert (quiet.pushed, quiet.api_calls) == (0, 0)

    status = await client.get("/v1/salesforce/status", headers=keys.headers("integration"))
    assert status.status_code == 200
    assert status.json()["watermark"] is not None
    assert status.json()["outbox"] == {"pending": 0, "dead": 0}
    runs = status.json()["runs"]
    assert [r["kind"] for r in runs][:4] == ["push", "pull", "push", "pull"]
    assert runs[0]["counts"]["pushed"] == 0  # the quiet push
    assert runs[2]["counts"]["pushed"] == again.pushed
    assert status.json()["api_usage"]["used"] > 0


async def test_a_second_save_within_the_same_second_is_applied(
    client: httpx.AsyncClient,
    keys: Keys,
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
) -> None:
    # Salesforce stamps SystemModstamp to the second: with the org's clock frozen, a save, a
    # pull, and a second save in that same second all carry one stamp.
    second = datetime.now(UTC).replace(microsecond=0)  # inside the pull's overlap window
    fake.clock.set(second)
    opportunity_id = fake.add_opportunity(opportunity("Twice", SystemModstamp=second))
    first, _ = inbound.pull(db, sf_client, registry, settings, mapping)
    assert first.created == 1
    fake.update_opportunity(opportunity_id, {"Discount__c": 16, "SystemModstamp": second})

    again, _ = inbound.pull(db, sf_client, registry, settings, mapping)
    assert (again.updated, again.checked, again.skipped) == (1, 1, 0)
    body = await deal(client, keys, opportunity_id)
    assert body["terms"]["discount_pct"] == "16"
    assert body["last_check"]["verdict"] == "needs_approval"

    # Read again (the overlap window) with the same content: a no-op, nothing checked or queued.
    outbound.push(db, sf_client, mapping, settings.salesforce, settings.public_url)
    third, _ = inbound.pull(db, sf_client, registry, settings, mapping)
    assert (third.updated, third.checked, third.unchanged + third.skipped) == (0, 0, 1)
    quiet = outbound.push(db, sf_client, mapping, settings.salesforce, settings.public_url)
    assert quiet.api_calls == 0


async def test_a_rep_edit_is_pulled_even_when_our_write_back_lands_after_it(
    client: httpx.AsyncClient,
    keys: Keys,
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
) -> None:
    # Why the pull does not leave out the integration user's own edits: the push can write to an
    # opportunity a rep changed since the last pull, and the record then shows the integration
    # user as its last modifier. Our own echoes are recognised by content instead.
    opportunity_id = fake.add_opportunity(opportunity("Raced"))
    inbound.pull(db, sf_client, registry, settings, mapping)
    fake.update_opportunity(opportunity_id, {"Discount__c": 16})  # the rep
    outbound.push(db, sf_client, mapping, settings.salesforce, settings.public_url)  # then us
    assert fake.get(opportunity_id)["LastModifiedById"] == fake.integration_user_id

    report, _ = inbound.pull(db, sf_client, registry, settings, mapping)
    assert (report.updated, report.checked) == (1, 1)
    assert (await deal(client, keys, opportunity_id))["terms"]["discount_pct"] == "16"
