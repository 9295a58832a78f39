"""The push outbox as an operator sees it: what is waiting, what is dead and why, and a requeue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from tests import driver
from tests.conftest import Keys, ManualClock

from fake_salesforce import FakeSalesforce
from governance.db import Database
from governance.playbooks.registry import PlaybookRegistry
from governance.salesforce import inbound, outbound
from governance.salesforce.client import SimpleSalesforceClient
from governance.salesforce.mapping import SyncMapping
from governance.settings import Settings

pytestmark = pytest.mark.usefixtures("demo_published")

LOCKED = ("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")
RULE = ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Discount needs a reason", ["Discount__c"])


def opportunity(name: str, discount: float) -> dict[str, Any]:
    return driver.opportunity(
        name, StageName="Proposal/Price Quote", Amount=80000, Discount__c=discount
    )


async def listing(client: httpx.AsyncClient, keys: Keys, query: str = "") -> list[dict[str, Any]]:
    response = await client.get(f"/v1/salesforce/outbox{query}", headers=keys.headers("admin"))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_outbox_lists_pending_and_dead_items_with_their_last_error(
    client: httpx.AsyncClient,
    keys: Keys,
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
    clock: ManualClock,
) -> None:
    fine, refused, flaky = fake.add_opportunities(
        [opportunity("Fine", 5), opportunity("Refused", 10), opportunity("Flaky", 10)]
    )
    inbound.pull(db, sf_client, registry, settings, mapping)
    waiting = await listing(client, keys)
    assert [(i["external_id"], i["status"], i["attempts"]) for i in waiting] == [
        (fine, "pending", 0),
        (refused, "pending", 0),
        (flaky, "pending", 0),
    ]
    assert all(i["last_error"] is None and i["last_values"] is None for i in waiting)

    # A validation rule refuses one opportunity; with a single attempt allowed it goes dead.
    fake.reject_records({refused: RULE}, times=None)
    once = settings.salesforce.model_copy(update={"max_attempts": 1})
    pushed = outbound.push(db, sf_client, mapping, once, settings.public_url, clock=clock)
    assert (pushed.pushed, pushed.failed, pushed.dead) == (2, 1, 1)

    # The rep raises another discount; Salesforce cannot lock the record this time.
    fake.update_opportunity(flaky, {"Discount__c": 20})
    inbound.pull(db, sf_client, registry, settings, mapping)
    fake.reject_records({flaky: LOCKED})
    before = clock()
    retrying = outbound.push(
        db, sf_client, mapping, settings.salesforce, settings.public_url, clock=clock
    )
    assert (retrying.pushed, retrying.failed, retrying.dead) == (0, 1, 0)

    items = await listing(client, keys)
    assert [(i["external_id"], i["status"], i["attempts"]) for i in items] == [
        (refused, "dead", 1),
        (flaky, "pending", 1),
    ]
    dead, pending = items
    assert dead["last_error"] == (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION: Discount needs a reason (Discount__c)"
    )
    assert pending["last_error"] == (
        "UNABLE_TO_LOCK_ROW: unable to obtain exclusive access to this record"
    )
    # What the last attempt tried to write, to see what Salesforce refused.
    assert pending["last_values"]["Governance_Status__c"] == "needs_approval"
    assert dead["last_values"]["Governance_Status__c"] == "auto_approved"
    assert datetime.fromisoformat(pending["next_attempt_at"]) > before  # backing off

    assert [i["external_id"] for i in await listing(client, keys, "?status=dead")] == [refused]
    assert [i["external_id"] for i in await listing(client, keys, "?status=pending")] == [flaky]

    # Paged with a cursor.
    first = await client.get("/v1/salesforce/outbox?limit=1", headers=keys.headers("admin"))
    assert [i["external_id"] for i in first.json()["items"]] == [refused]
    cursor = first.json()["next_cursor"]
    assert cursor is not None
    second = await client.get(
        f"/v1/salesforce/outbox?limit=1&cursor={cursor}", headers=keys.headers("admin")
    )
    assert [i["external_id"] for i in second.json()["items"]] == [flaky]
    last = await client.get(
        f"/v1/salesforce/outbox?limit=1&cursor={second.json()['next_cursor']}",
        headers=keys.headers("admin"),
    )
    assert last.json() == {"items": [], "next_cursor": None}

    status = await client.get("/v1/salesforce/status", headers=keys.headers("admin"))
    assert status.json()["outbox"] == {"pending": 1, "dead": 1}

    # The admin fixes the rule in the org and requeues the dead item: it goes out next push.
    fake.clear_faults()
    retried = await client.post(
        f"/v1/salesforce/outbox/{dead['id']}/retry", headers=keys.headers("admin")
    )
    assert retried.status_code == 200
    body = retried.json()
    assert (body["id"], body["external_id"], body["status"], body["attempts"]) == (
        dead["id"],
        refused,
        "pending",
        0,
    )
    audit = await client.get(
        "/v1/audit?action=salesforce.outbox_retried", headers=keys.headers("admin")
    )
    [entry] = audit.json()["items"]
    assert entry["before"]["status"] == "dead"
    assert entry["after"]["status"] == "pending"

    # The clock has not moved: the flaky one is still backing off, however long this took.
    again = outbound.push(
        db, sf_client, mapping, settings.salesforce, settings.public_url, clock=clock
    )
    assert again.pushed == 1  # the requeued one; the flaky one is still backing off
    assert fake.get(refused)["Governance_Status__c"] == "auto_approved"
    assert [i["external_id"] for i in await listing(client, keys)] == [flaky]


async def test_outbox_refuses_unknown_items_and_filters(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    missing = await client.post("/v1/salesforce/outbox/987654/retry", headers=keys.headers("admin"))
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "987654" in missing.json()["detail"]

    zero = await client.post("/v1/salesforce/outbox/0/retry", headers=keys.headers("admin"))
    assert zero.status_code == 422

    for query in ("?status=sent", "?limit=0", "?limit=501", "?cursor=not-a-cursor"):
        response = await client.get(f"/v1/salesforce/outbox{query}", headers=keys.headers("admin"))
        assert response.status_code == 422, query
        assert response.headers["content-type"] == "application/problem+json"

    empty = await client.get("/v1/salesforce/outbox", headers=keys.headers("integration"))
    assert empty.json() == {"items": [], "next_cursor": None}
