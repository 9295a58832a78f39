"""What Salesforce documents, and the adapter accepts in every documented variant: SOQL datetime
literals, both datetime offset forms, Bulk API 2.0 CSV (CRLF, quotes, commas and newlines in a
value, an empty relationship), the API version the org lists, the token endpoint's outages, an
Outbound Message's sObject Id, and sObject Collections calls that fail whole."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import httpx
import pytest
import requests
from pydantic import SecretStr
from sqlalchemy import select
from tests import driver
from tests.conftest import Keys, ManualClock
from tests.salesforce.conftest import CONSUMER_KEY, CONSUMER_SECRET, SECRET

from fake_salesforce import ORG_ID, FakeSalesforce
from governance.db import Database
from governance.deals.models import Deal
from governance.playbooks.registry import PlaybookRegistry
from governance.salesforce import bulk, inbound, outbound
from governance.salesforce.client import (
    AuthenticationFailed,
    SimpleSalesforceClient,
    Unavailable,
    _invalid_session,
)
from governance.salesforce.mapping import SyncMapping
from governance.salesforce.models import OutboxItem
from governance.settings import SalesforceSettings, Settings

pytestmark = pytest.mark.usefixtures("demo_published")


def app_settings(url: str, **changes: object) -> SalesforceSettings:
    values: dict[str, object] = {
        "login_url": url,
        "auth": "client_credentials",
        "consumer_key": SecretStr(CONSUMER_KEY),
        "consumer_secret": SecretStr(CONSUMER_SECRET),
        **changes,
    }
    return SalesforceSettings.model_validate(values)


# --- SOQL and datetimes ------------------------------------------------------------------------


def test_the_watermark_goes_out_as_a_documented_soql_datetime_literal(
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
) -> None:
    fake.add_opportunity(driver.opportunity("First"))
    inbound.pull(db, sf_client, registry, settings, mapping)
    inbound.pull(db, sf_client, registry, settings, mapping)

    # YYYY-MM-DDThh:mm:ssZ, unquoted: the SOQL reference's form, without a fraction of a second.
    soql = fake.soql_sent()[-1]
    assert re.search(r"SystemModstamp >= \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z ", soql), soql


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-06T10:00:00.000+0000",  # REST JSON
        "2026-12-06T10:00:00.000Z",  # Bulk CSV
        "2026-12-06T10:00:00Z",
        "2026-12-06T11:00:00.000+01:00",
        "2026-12-06T10:00:00.000",  # no offset: UTC
    ],
)
def test_every_documented_datetime_form_is_read_as_the_same_moment(text: str) -> None:
    assert inbound.parse_datetime(text) == datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


# --- Bulk API 2.0 CSV --------------------------------------------------------------------------


def complete_job(client: SimpleSalesforceClient, job_id: str) -> None:
    for _ in range(50):
        if client.bulk_job(job_id).state == "JobComplete":
            return
        time.sleep(0.01)
    raise AssertionError("the job never completed")


def test_bulk_csv_with_crlf_and_quoted_commas_newlines_and_quotes_reads_as_rest_would(
    fake: FakeSalesforce, sf_client: SimpleSalesforceClient
) -> None:
    awkward = 'Acme, "Big"\nDeal'
    with_account = fake.add_opportunity(driver.opportunity(awkward, "Germany"))
    without_account = fake.add_opportunity(driver.opportunity("Solo"), Account=None)
    soql = "SELECT Id, Name, IsDeleted, SystemModstamp, Account.BillingCountry FROM Opportunity"
    # A job asking for CRLF line endings, as Salesforce allows (ours asks for LF).
    job = sf_client._sf.restful(
        "jobs/query",
        method="POST",
        json={"operation": "query", "query": soql, "lineEnding": "CRLF"},
    )
    complete_job(sf_client, job["id"])

    results = sf_client.bulk_results(job["id"], None, 100)

    assert results.locator is None  # Sforce-Locator: the string "null"
    records = {r["Id"]: r for r in results.records}
    assert records[with_account]["Name"] == awkward
    assert records[with_account]["Account"] == {"BillingCountry": "Germany"}
    assert records[without_account]["Account"] is None  # no account: null, as in REST
    stamp = inbound.parse_datetime(records[with_account]["SystemModstamp"])
    assert stamp == fake.get(with_account)["SystemModstamp"]


def test_a_bulk_load_reads_false_checkboxes_as_false_whatever_the_describe_lists(
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
) -> None:
    ids = fake.add_opportunities([driver.opportunity(f"Deal {n}") for n in range(5)])
    sf = settings.salesforce.model_copy(
        update={"bulk_threshold": 2, "bulk_page_records": 2, "bulk_poll_seconds": 0.01}
    )
    fake.batch_size = 2

    report, run = inbound.pull(
        db, sf_client, registry, settings.model_copy(update={"salesforce": sf}), mapping
    )

    assert run.status == "done"
    assert (report.created, report.deleted, report.closed, report.failed) == (5, 0, 0, 0)
    with db.unit_of_work() as session:
        deals = session.scalars(select(Deal).where(Deal.external_id.in_(ids))).all()
        assert len(deals) == 5
        assert all(d.deleted_at is None for d in deals)
    # The CSV's text, typed without a describe: "false" is no truthy string.
    assert bulk.typed({"IsDeleted": "false", "IsWon": "true"}, {}) == {
        "IsDeleted": False,
        "IsWon": True,
    }


# --- API version -------------------------------------------------------------------------------


@pytest.mark.parametrize(("org", "used"), [("61.0", "61.0"), ("70.0", "66.0")])
def test_the_client_calls_the_newest_version_the_org_lists(org: str, used: str) -> None:
    with FakeSalesforce(org) as fake:
        fake.consumer_key, fake.consumer_secret = CONSUMER_KEY, CONSUMER_SECRET
        fake.add_opportunity(driver.opportunity("One"))
        client = SimpleSalesforceClient(app_settings(fake.url))
        page = client.query("SELECT Id FROM Opportunity")
        assert page.total_size == 1
        assert [e.path.split("/")[3] for e in fake.log if e.kind == "query"] == [f"v{used}"]


def test_a_configured_api_version_is_used_as_is(fake: FakeSalesforce) -> None:
    client = SimpleSalesforceClient(app_settings(fake.url, api_version="58.0"))
    client.query("SELECT Id FROM Opportunity")
    assert [e.path.split("/")[3] for e in fake.log if e.kind == "query"] == ["v58.0"]


# --- OAuth token endpoint ----------------------------------------------------------------------


def test_a_token_endpoint_outage_is_retryable_not_a_refusal(fake: FakeSalesforce) -> None:
    fake.inject("token", 503)
    with pytest.raises(Unavailable) as outage:
        SimpleSalesforceClient(app_settings(fake.url))
    assert outage.value.retryable
    assert outage.value.status == 503

    # A refusal (400 invalid_client) stays a refusal, with the OAuth error's code.
    with pytest.raises(AuthenticationFailed) as refused:
        SimpleSalesforceClient(app_settings(fake.url, consumer_secret=SecretStr("wrong")))
    assert (refused.value.code, refused.value.status) == ("invalid_client", 400)
    assert not refused.value.retryable


# --- Outbound Messages -------------------------------------------------------------------------


async def test_an_outbound_message_whose_sobject_id_has_no_sf_prefix_is_accepted(
    client: httpx.AsyncClient, keys: Keys, fake: FakeSalesforce
) -> None:
    named = fake.add_opportunity(driver.opportunity("Named"))
    message = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{ORG_ID}</OrganizationId><ActionId>04k5g000000XyZaAAK</ActionId>"
        '<SessionId xsi:nil="true"/><EnterpriseUrl>x</EnterpriseUrl><PartnerUrl>x</PartnerUrl>'
        "<Notification><Id>04l5g00000AbCdEAAV</Id>"
        f'<sObject xsi:type="sf:Opportunity"><Id>{named}</Id></sObject></Notification>'
        "</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()
    answer = await client.post(
        f"/v1/salesforce/outbound-messages?secret={SECRET}",
        content=message,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
    )
    assert answer.status_code == 200, answer.text
    assert b"<Ack>true</Ack>" in answer.content
    status = await client.get("/v1/salesforce/status", headers=keys.headers("integration"))
    assert status.json()["fetch_queue"] == 1


# --- sObject Collections -----------------------------------------------------------------------


def test_collections_calls_failing_whole_are_retried_past_max_attempts_and_never_parked(
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
    clock: ManualClock,
) -> None:
    ids = fake.add_opportunities([driver.opportunity(f"Deal {n}") for n in range(3)])
    inbound.pull(db, sf_client, registry, settings, mapping)
    sf = settings.salesforce
    outages = sf.max_attempts + 2
    fake.inject("collections", 503, times=outages)

    for n in range(outages):
        report = outbound.push(db, sf_client, mapping, sf, settings.public_url, clock=clock)
        assert (report.pushed, report.dead) == (0, 0), n
        clock.advance(sf.retry_cap_seconds)  # past any backoff

    with db.unit_of_work() as session:
        rows = session.scalars(select(OutboxItem)).all()
        assert {(r.status, r.attempts) for r in rows} == {("pending", outages)}
        assert all((r.last_error or "").startswith("SERVER_UNAVAILABLE") for r in rows)

    # The org is back: everything goes out.
    report = outbound.push(db, sf_client, mapping, sf, settings.public_url, clock=clock)
    assert (report.pushed, report.dead) == (3, 0)
    assert all(fake.get(i)["Governance_Status__c"] is not None for i in ids)


@pytest.mark.parametrize(
    "body",
    [
        b'[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]',
        b'{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}',
    ],
)
def test_an_expired_session_is_recognised_in_the_documented_list_and_a_lone_object(
    body: bytes,
) -> None:
    response = requests.Response()
    response.status_code = 401
    response._content = body
    assert _invalid_session(response)


def test_a_fake_org_on_another_host_of_a_test_network_is_reached_over_plain_http() -> None:
    # 127.0.0.2 stands for a host such as http://salesforce-fake:8080: not "localhost", yet
    # the login URL says http://, and so does the instance URL its token endpoint answers.
    with FakeSalesforce("59.0", host="127.0.0.2") as fake:
        fake.consumer_key, fake.consumer_secret = CONSUMER_KEY, CONSUMER_SECRET
        fake.add_opportunity(driver.opportunity("One"))
        client = SimpleSalesforceClient(app_settings(fake.url))
        assert client.query("SELECT Id FROM Opportunity").total_size == 1
