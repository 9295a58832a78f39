"""Salesforce Outbound Messages: SOAP in, an Ack out, and a fetch of the named opportunities
from the org itself (the message's own field values are never trusted)."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from tests import driver
from tests.conftest import Keys
from tests.salesforce.conftest import SECRET

from fake_salesforce import ORG_ID, FakeSalesforce
from governance import worker
from governance.db import Database
from governance.playbooks.registry import PlaybookRegistry
from governance.salesforce import inbound
from governance.salesforce.client import SimpleSalesforceClient
from governance.salesforce.mapping import SyncMapping
from governance.settings import Settings

pytestmark = pytest.mark.usefixtures("demo_published")

SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
URL = f"/v1/salesforce/outbound-messages?secret={SECRET}"
XML = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}


def notification(opportunity_id: str, notification_id: str, **fields: Any) -> str:
    values = "".join(f"<sf:{name}>{value}</sf:{name}>" for name, value in fields.items())
    return (
        f"<Notification><Id>{notification_id}</Id>"
        '<sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:Id>{opportunity_id}</sf:Id>{values}</sObject></Notification>"
    )


def envelope(*notifications: str, org: str = ORG_ID) -> bytes:
    """An Outbound Message as Salesforce posts it (the outbound messaging WSDL's notifications
    call, enterprise sObject namespace)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAPENV}"'
        ' xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body>"
        f'<notifications xmlns="{OUTBOUND}">'
        f"<OrganizationId>{org}</OrganizationId>"
        "<ActionId>04k5g000000XyZaAAK</ActionId>"
        '<SessionId xsi:nil="true"/>'
        "<EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/59.0/00DFk0000000ORG"
        "</EnterpriseUrl>"
        "<PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/59.0/00DFk0000000ORG"
        "</PartnerUrl>"
        + "".join(notifications)
        + "</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


def opportunity(name: str, **fields: Any) -> dict[str, Any]:
    """A German opportunity: 50,000, 12 % off, 24 months, unless `fields` say otherwise."""
    values = {"Amount": 50000, "Discount__c": 12, "Contract_Months__c": 24, **fields}
    return driver.opportunity(name, "Germany", **values)


async def fetch_queue(client: httpx.AsyncClient, keys: Keys) -> int:
    status = await client.get("/v1/salesforce/status", headers=keys.headers("integration"))
    queued: int = status.json()["fetch_queue"]
    return queued


async def test_a_message_queues_a_fetch_that_reads_the_org_not_the_message(
    client: httpx.AsyncClient,
    keys: Keys,
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
) -> None:
    named = fake.add_opportunity(opportunity("Named", Discount__c=12))
    fake.add_opportunity(opportunity("Unnamed"))  # not in the message: not fetched

    # The message claims 45% (blocked); the org says 12%.
    message = envelope(notification(named, "04l5g00000AbCdEAAV", Discount__c="45.0"))
    answer = await client.post(URL, content=message, headers=XML)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/xml")
    root = ElementTree.fromstring(answer.content)
    ack = root.find(f"{{{SOAPENV}}}Body/{{{OUTBOUND}}}notificationsResponse/{{{OUTBOUND}}}Ack")
    assert ack is not None
    assert ack.text == "true"
    assert await fetch_queue(client, keys) == 1

    # Salesforce delivers a message more than once at times: the opportunity is queued once.
    again = await client.post(URL, content=message, headers=XML)
    assert again.status_code == 200
    assert await fetch_queue(client, keys) == 1

    # Nothing about the opportunity was taken from the message itself.
    missing = await client.get(f"/v1/deals/{named}", headers=keys.headers("admin"))
    assert missing.status_code == 404

    passed = worker.run_once(db, registry, settings, salesforce=sf_client)
    assert passed.sync_error is None
    assert passed.fetched == 1
    assert await fetch_queue(client, keys) == 0

    deal = await client.get(f"/v1/deals/{named}", headers=keys.headers("admin"))
    assert deal.status_code == 200
    assert deal.json()["terms"]["discount_pct"] == "12"  # the org's value, not the message's
    assert deal.json()["name"] == "Named"
    assert deal.json()["last_check"]["verdict"] == "auto_approved"  # 45% would be blocked
    listed = await client.get("/v1/deals", headers=keys.headers("admin"))
    assert [d["external_id"] for d in listed.json()["items"]] == [named]
    # The same pass pushed the result back onto the opportunity.
    assert fake.get(named)["Governance_Status__c"] == "auto_approved"


async def test_a_message_naming_several_opportunities_fetches_them_in_one_query(
    client: httpx.AsyncClient,
    keys: Keys,
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
) -> None:
    first, second = fake.add_opportunities([opportunity("One"), opportunity("Two")])
    fake.delete_opportunity(second)  # deleted since the message was queued
    message = envelope(
        notification(first[:15], "04l5g00000AbCdEAAV"),  # 15-character Ids are accepted too
        notification(second, "04l5g00000AbCdFAAV"),
    )
    assert (await client.post(URL, content=message, headers=XML)).status_code == 200
    assert await fetch_queue(client, keys) == 2
    fake.reset_stats()

    report = inbound.fetch(db, sf_client, registry, settings, mapping)
    assert (report.read, report.created, report.failed) == (2, 1, 0)
    assert fake.calls["query"] == 1
    assert (await client.get(f"/v1/deals/{first}", headers=keys.headers("admin"))).status_code == (
        200
    )
    assert (await client.get(f"/v1/deals/{second}", headers=keys.headers("admin"))).status_code == (
        404
    )
    assert await fetch_queue(client, keys) == 0


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def test_a_message_without_the_shared_secret_is_refused(
    client: httpx.AsyncClient, keys: Keys, fake: FakeSalesforce
) -> None:
    named = fake.add_opportunity(opportunity("Named"))
    message = envelope(notification(named, "04l5g00000AbCdEAAV"))
    path = "/v1/salesforce/outbound-messages"
    problem(await client.post(path, content=message, headers=XML), 403)
    problem(await client.post(f"{path}?secret=guess", content=message, headers=XML), 403)
    problem(await client.post(f"{path}?secret=", content=message, headers=XML), 403)
    problem(await client.post(f"{path}?secret=s%C3%A9same", content=message, headers=XML), 403)
    # An API key is no substitute for the secret.
    problem(await client.post(path, content=message, headers={**XML, **keys.headers("admin")}), 403)
    assert await fetch_queue(client, keys) == 0


async def test_a_message_from_another_org_is_refused(
    client: httpx.AsyncClient, keys: Keys, fake: FakeSalesforce
) -> None:
    named = fake.add_opportunity(opportunity("Named"))
    other = envelope(notification(named, "04l5g00000AbCdEAAV"), org="00D000000000001EAA")
    body = problem(await client.post(URL, content=other, headers=XML), 403)
    assert "00D000000000001EAA" in body["detail"]
    assert await fetch_queue(client, keys) == 0


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(b"<soapenv:Envelope><unclosed>", "not well-formed XML", id="truncated"),
        pytest.param(b"", "not well-formed XML", id="empty"),
        pytest.param(b'{"Id": "006Fk0000000001AAA"}', "not well-formed XML", id="json"),
        pytest.param(
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
            b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
            b"<soapenv:Body>&lol2;</soapenv:Body></soapenv:Envelope>",
            "document type declarations are not accepted",
            id="entities",
        ),
        pytest.param(
            b'<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            b"<foo>&xxe;</foo>",
            "document type declarations are not accepted",
            id="external-entity",
        ),
        pytest.param(
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'.encode(
                "utf-16"
            ),
            "document type declarations are not accepted",
            id="entities-in-utf-16",
        ),
        pytest.param(
            f'<soapenv:Envelope xmlns:soapenv="{SOAPENV}"><soapenv:Body/></soapenv:Envelope>'.encode(),
            "no <notifications> element",
            id="no-notifications",
        ),
        pytest.param(
            envelope(
                "<Notification><Id>04l5g00000AbCdEAAV</Id>"
                '<sObject xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
                "<sf:Name>No Id</sf:Name></sObject></Notification>"
            ),
            "no valid sObject Id",
            id="no-sobject-id",
        ),
        pytest.param(
            envelope(notification("006'; DELETE--", "04l5g00000AbCdEAAV")),
            "no valid sObject Id",
            id="bad-sobject-id",
        ),
        pytest.param(envelope(), "names no opportunity", id="no-notification"),
    ],
)
async def test_a_malformed_message_gets_a_clear_400(
    client: httpx.AsyncClient, keys: Keys, payload: bytes, reason: str
) -> None:
    body = problem(await client.post(URL, content=payload, headers=XML), 400)
    assert reason in body["detail"]
    assert body["title"] == "Malformed Outbound Message"
    assert await fetch_queue(client, keys) == 0


VALID_15 = "006Fk00000Ab1Cd"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param("006Fk00000Ab1C\u0661", "non-ASCII digit", id="arabic-indic-digit"),
        pytest.param("006Fk00000Ab1C\uff44", "full-width letter", id="full-width"),
        pytest.param(VALID_15 + "X", "16 characters", id="sixteen"),
        pytest.param(VALID_15 + "ZZZ", "wrong case checksum", id="bad-checksum"),
    ],
)
async def test_an_id_that_is_no_salesforce_id_is_refused_naming_it(
    client: httpx.AsyncClient, keys: Keys, fake: FakeSalesforce, raw: str, reason: str
) -> None:
    named = fake.add_opportunity(opportunity("Named"))
    message = envelope(notification(named, "04l5g00000AbCdEAAV"), notification(raw, "04l2"))
    body = problem(await client.post(URL, content=message, headers=XML), 400)
    assert body["title"] == "Malformed Outbound Message", reason
    assert [e["loc"] for e in body["errors"]] == [
        ["body", "notifications", "Notification", 1, "sObject", "Id"]
    ]
    assert "15- or 18-character Salesforce Id" in body["detail"]
    assert await fetch_queue(client, keys) == 0  # nothing of the message is queued


async def test_ids_of_either_length_are_accepted(
    client: httpx.AsyncClient, keys: Keys, fake: FakeSalesforce
) -> None:
    named = fake.add_opportunity(opportunity("Named"))
    message = envelope(notification(named, "04l1"), notification(named[:15], "04l2"))
    response = await client.post(URL, content=message, headers=XML)
    assert response.status_code == 200, response.text
    assert await fetch_queue(client, keys) == 1  # one opportunity, named twice


async def test_more_than_100_notifications_are_refused(
    client: httpx.AsyncClient, keys: Keys, fake: FakeSalesforce
) -> None:
    ids = fake.add_opportunities([opportunity(f"Deal {n}") for n in range(101)])
    notes = [notification(i, f"04l{n:03d}") for n, i in enumerate(ids)]
    body = problem(await client.post(URL, content=envelope(*notes), headers=XML), 400)
    assert [e["loc"] for e in body["errors"]] == [["body", "notifications", "Notification"]]
    assert "at most 100 notifications" in body["detail"]
    assert await fetch_queue(client, keys) == 0
    accepted = await client.post(URL, content=envelope(*notes[:100]), headers=XML)
    assert accepted.status_code == 200, accepted.text
    assert await fetch_queue(client, keys) == 100
