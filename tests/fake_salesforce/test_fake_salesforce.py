"""The local fake Salesforce org (src/fake_salesforce), driven with plain httpx and with
simple-salesforce: OAuth and SOAP login, query / queryAll paging, describe, sObject Collections,
API limits and every injectable fault."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce.api import Salesforce, SFType
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
)

from fake_salesforce import (
    DEFAULT_CUSTOM_FIELDS,
    INTEGRATION_USER_ID,
    FakeClock,
    FakeSalesforce,
    FiredFault,
    format_datetime,
    id18,
    parse_datetime,
    sample_opportunities,
)

V = "59.0"
DATA = f"/services/data/v{V}"
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
LIMIT_RE = re.compile(r"^api-usage=(\d+)/(\d+)$")
T0 = datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)


@pytest.fixture
def sf() -> Iterator[FakeSalesforce]:
    with FakeSalesforce(api_version=V, clock=FakeClock(T0)) as fake:
        yield fake
        assert fake.internal_errors == []


@pytest.fixture
def http(sf: FakeSalesforce) -> Iterator[httpx.Client]:
    """An httpx client for the fake, without a token (TLS off: loading CA files is slow)."""
    with httpx.Client(base_url=sf.url, timeout=5, verify=False) as client:
        yield client


@pytest.fixture
def api(sf: FakeSalesforce) -> Iterator[httpx.Client]:
    """An httpx client with a live token."""
    headers = {"Authorization": f"Bearer {sf.issue_token()}"}
    with httpx.Client(base_url=sf.url, headers=headers, timeout=5, verify=False) as client:
        yield client


def soql(client: httpx.Client, query: str, *, all_rows: bool = False) -> httpx.Response:
    return client.get(f"{DATA}/{'queryAll' if all_rows else 'query'}", params={"q": query})


def ids_of(response: httpx.Response) -> list[str]:
    return [r["Id"] for r in response.json()["records"]]


def collection(*records: dict[str, Any], all_or_none: bool = False) -> dict[str, Any]:
    return {
        "allOrNone": all_or_none,
        "records": [{"attributes": {"type": "Opportunity"}, **r} for r in records],
    }


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert isinstance(body, list)
    assert set(body[0]) == {"message", "errorCode"}
    code: str = body[0]["errorCode"]
    return code


# ------------------------------------------------------------------------------ ids and clock


def test_ids_are_18_char_with_checksums_and_sort_in_creation_order(sf: FakeSalesforce) -> None:
    ids = sf.add_opportunities([{"Name": f"Deal {i}"} for i in range(70)])
    assert all(len(i) == 18 and i.startswith("006") for i in ids)
    assert all(id18(i[:15]) == i for i in ids)
    assert ids == sorted(ids)
    assert id18("001D000000IRFma") == "001D000000IRFmaIAH"  # the documented example


def test_datetimes_and_the_logical_clock(sf: FakeSalesforce) -> None:
    assert format_datetime(T0) == "2024-05-01T12:34:56.000+0000"
    assert parse_datetime("2024-05-01T14:34:56.5+02:00") == T0 + timedelta(milliseconds=500)
    assert parse_datetime("2024-05-01T12:34:56Z") == T0
    # Frozen clock: several changes in the same millisecond still get increasing stamps.
    first, second = sf.add_opportunities([{"Name": "A"}, {"Name": "B"}])
    stamps = [sf.get(first)["SystemModstamp"], sf.get(second)["SystemModstamp"]]
    assert stamps == [T0, T0 + timedelta(milliseconds=1)]
    updated = sf.update_opportunity(first, {"Amount": 10})
    assert updated["SystemModstamp"] == T0 + timedelta(milliseconds=2)
    assert updated["LastModifiedDate"] == updated["SystemModstamp"]
    assert sf.get(first)["CreatedDate"] == T0
    sf.clock.advance(60)
    assert sf.update_opportunity(first, {"Amount": 11})["SystemModstamp"] == T0 + timedelta(
        seconds=60
    )
    sf.clock.set("2024-01-01T00:00:00Z")  # backwards: stamps still never go back
    assert sf.update_opportunity(first, {"Amount": 12})["SystemModstamp"] > T0
    running = FakeClock()
    assert not running.frozen
    assert abs(running.now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_relationship_fields_and_defaults(sf: FakeSalesforce) -> None:
    first, second, third = sf.add_opportunities(
        [
            {"Name": "A", "Account.BillingCountry": "FR", "StageName": "Closed Won"},
            {"Name": "B", "Account": {"Name": "Acme", "BillingCountry": "DE"}},
            {"Name": "C", "Account": {"Name": "Acme"}},
        ]
    )
    a, b, c = sf.get(first), sf.get(second), sf.get(third)
    assert a["Account"]["BillingCountry"] == "FR"
    assert a["AccountId"].startswith("001")
    assert (a["IsClosed"], a["IsWon"], a["IsDeleted"]) == (True, True, False)
    assert (b["IsClosed"], b["IsWon"]) == (False, False)
    assert b["AccountId"] == c["AccountId"]  # one Id per account name
    assert b["Uncapped_Liability__c"] is False
    assert b["LastModifiedById"] == sf.default_user_id
    assert isinstance(b["CloseDate"], date)
    assert sf.update_opportunity(second, {"StageName": "Closed Lost"})["IsClosed"] is True
    with pytest.raises(ValueError, match="No such column 'Foo__c'"):
        sf.add_opportunities([{"Foo__c": 1}])
    with pytest.raises(KeyError):
        sf.get("006Fk0000000zzzAAA")


# ------------------------------------------------------------------------------ authentication


def test_oauth_token_grants(sf: FakeSalesforce, http: httpx.Client) -> None:
    token_url = "/services/oauth2/token"
    header = base64.urlsafe_b64encode(b'{"alg":"RS256"}').rstrip(b"=").decode()
    claims = base64.urlsafe_b64encode(b'{"iss":"key","sub":"int@example.com"}').rstrip(b"=")
    forms: list[tuple[dict[str, str], dict[str, str]]] = [
        ({"grant_type": "password", "username": "u", "password": "pw" + "tok"}, {}),
        ({"grant_type": "client_credentials"}, {"Authorization": "Basic a2V5OnNlY3JldA=="}),
        ({"grant_type": "client_credentials", "client_id": "k", "client_secret": "s"}, {}),
        (
            {
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": f"{header}.{claims.decode()}.c2lnbmF0dXJl",
            },
            {},
        ),
    ]
    for form, headers in forms:
        response = http.post(token_url, data=form, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert {
            "access_token",
            "instance_url",
            "id",
            "token_type",
            "issued_at",
            "signature",
        } <= set(body)
        assert body["instance_url"] == sf.url
        assert body["token_type"] == "Bearer"
        assert body["id"].endswith(f"/{sf.org_id}/{INTEGRATION_USER_ID}")
        assert sf.is_live(body["access_token"])
    assert [t.grant_type for t in sf.issued_tokens] == [
        "password",
        "client_credentials",
        "client_credentials",
        "jwt-bearer",
    ]
    bad = [
        {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "not-a-jwt"},
        {"grant_type": "authorization_code", "code": "x"},
        {"grant_type": "client_credentials"},
    ]
    for form in bad:
        response = http.post(token_url, data=form)
        assert response.status_code == 400
        assert set(response.json()) == {"error", "error_description"}
    sf.username, sf.password, sf.security_token = "u", "pw", "tok"
    response = http.post(
        token_url, data={"grant_type": "password", "username": "u", "password": "pw"}
    )
    assert response.json()["error"] == "invalid_grant"
    assert sf.calls["token"] == 8
    assert sf.api_usage == 0  # logins do not count against the API limit


def test_api_calls_need_a_live_token(
    sf: FakeSalesforce, api: httpx.Client, http: httpx.Client
) -> None:
    query = "SELECT Id FROM Opportunity"
    assert soql(api, query).status_code == 200
    anonymous = soql(http, query)
    wrong = http.get(f"{DATA}/query", params={"q": query}, headers={"Authorization": "Bearer x"})
    sf.expire_sessions()
    expired = soql(api, query)
    for response in (anonymous, wrong, expired):
        assert response.status_code == 401
        assert response.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]
    assert sf.api_usage == 1


def test_simple_salesforce_soap_login_and_password_login(sf: FakeSalesforce) -> None:
    sf.username, sf.password, sf.security_token = "int@example.com", "secret", "TOKEN"
    sf.add_opportunities([{"Name": "A"}])
    client = Salesforce(
        username="int@example.com",
        password="secret",
        security_token="TOKEN",
        version=V,
        session=sf.requests_session(),
    )
    assert sf.is_live(client.session_id)
    assert client.query("SELECT Id FROM Opportunity")["totalSize"] == 1
    assert sf.issued_tokens[-1].grant_type == "soap"
    with pytest.raises(SalesforceAuthenticationFailed, match="INVALID_LOGIN"):
        Salesforce(
            username="int@example.com",
            password="wrong",
            security_token="TOKEN",
            version=V,
            session=sf.requests_session(),
        )
    oauth = Salesforce(
        username="int@example.com",
        password="secretTOKEN",
        consumer_key="key",
        consumer_secret="shh",
        version=V,
        session=sf.requests_session(),
    )
    assert oauth.query("SELECT Id FROM Opportunity")["totalSize"] == 1


def test_simple_salesforce_jwt_login(sf: FakeSalesforce, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "key.pem").write_bytes(pem)
    client = Salesforce(
        username="int@example.com",
        consumer_key="key",
        privatekey_file=str(tmp_path / "key.pem"),
        version=V,
        session=sf.requests_session(),
    )
    assert client.query("SELECT COUNT() FROM Opportunity")["totalSize"] == 0
    assert sf.issued_tokens[-1].grant_type == "jwt-bearer"
    assert sf.issued_tokens[-1].username == "int@example.com"
    # Any syntactically valid JWT will do (the signature is not checked).
    assertion = jwt.encode({"iss": "key", "sub": "x", "aud": "y", "exp": 1}, "k" * 32, "HS256")
    response = httpx.post(
        f"{sf.url}/services/oauth2/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
        verify=False,
    )
    assert response.status_code == 200


# ------------------------------------------------------------------------------ query


def test_paging_at_2000_over_4500_records(sf: FakeSalesforce, api: httpx.Client) -> None:
    created = sf.add_opportunities(sample_opportunities(4500))
    query = (
        "SELECT Id, Name, SystemModstamp, Account.BillingCountry FROM Opportunity "
        "ORDER BY SystemModstamp, Id"
    )
    response = soql(api, query)
    body = response.json()
    assert (body["totalSize"], body["done"], len(body["records"])) == (4500, False, 2000)
    assert re.fullmatch(rf"{DATA}/query/01g[A-Za-z0-9]{{15}}-2000", body["nextRecordsUrl"])
    record = body["records"][0]
    assert list(record) == ["attributes", "Id", "Name", "SystemModstamp", "Account"]
    assert record["attributes"] == {
        "type": "Opportunity",
        "url": f"{DATA}/sobjects/Opportunity/{record['Id']}",
    }
    account = record["Account"]
    assert account["attributes"]["type"] == "Account"
    assert set(account) == {"attributes", "BillingCountry"}
    assert DATETIME_RE.match(record["SystemModstamp"])
    seen = ids_of(response)
    sizes = [len(seen)]
    while not body["done"]:
        page = api.get(body["nextRecordsUrl"])
        assert page.status_code == 200
        body = page.json()
        assert body["totalSize"] == 4500
        sizes.append(len(body["records"]))
        seen += ids_of(page)
    assert sizes == [2000, 2000, 500]
    assert "nextRecordsUrl" not in body
    assert seen == created
    assert sf.calls["query"] == 1
    assert sf.calls["query_more"] == 2
    assert sf.api_usage == 3


def test_cursor_pages_are_a_snapshot(sf: FakeSalesforce, api: httpx.Client) -> None:
    sf.batch_size = 3
    ids = sf.add_opportunities([{"Name": f"Deal {i}"} for i in range(6)])
    first = soql(api, "SELECT Id, Name FROM Opportunity ORDER BY SystemModstamp, Id").json()
    sf.update_opportunity(ids[4], {"Name": "Renamed"})  # moves to the end of the order
    sf.delete_opportunity(ids[5])
    sf.add_opportunities([{"Name": "Late"}])
    second = api.get(first["nextRecordsUrl"]).json()
    assert [r["Name"] for r in second["records"]] == ["Deal 3", "Deal 4", "Deal 5"]
    assert second["done"] is True
    # The same page can be fetched again (a client retrying after a timeout).
    assert api.get(first["nextRecordsUrl"]).json() == second
    # A new query sees the changes.
    sf.batch_size = 2000
    names = [r["Name"] for r in soql(api, "SELECT Name FROM Opportunity").json()["records"]]
    assert "Renamed" in names
    assert "Late" in names
    assert "Deal 5" not in names
    # The documented batchSize header (200..2,000) lowers the page size.
    sf.add_opportunities([{"Name": f"More {i}"} for i in range(300)])
    paged = api.get(
        f"{DATA}/query",
        params={"q": "SELECT Id FROM Opportunity"},
        headers={"Sforce-Query-Options": "batchSize=200"},
    ).json()
    assert len(paged["records"]) == 200
    assert paged["nextRecordsUrl"].endswith("-200")
    # Released cursors answer INVALID_QUERY_LOCATOR.
    sf.expire_cursors()
    stale = api.get(paged["nextRecordsUrl"])
    assert stale.status_code == 400
    assert error_code(stale) == "INVALID_QUERY_LOCATOR"


def test_query_all_shows_deleted_records(sf: FakeSalesforce, api: httpx.Client) -> None:
    keep, gone, purged = sf.add_opportunities([{"Name": "Keep"}, {"Name": "Gone"}, {}])
    before = sf.get(gone)["SystemModstamp"]
    sf.delete_opportunity(gone)
    sf.delete_opportunity(purged, hard=True)
    assert sf.get(gone)["SystemModstamp"] > before
    query = "SELECT Id, IsDeleted FROM Opportunity ORDER BY SystemModstamp, Id"
    assert ids_of(soql(api, query)) == [keep]
    everything = soql(api, query, all_rows=True).json()["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in everything] == [(keep, False), (gone, True)]
    assert ids_of(soql(api, "SELECT Id FROM Opportunity WHERE IsDeleted = true")) == []
    assert ids_of(
        soql(api, "SELECT Id FROM Opportunity WHERE IsDeleted = true", all_rows=True)
    ) == [gone]
    with pytest.raises(ValueError, match="deleted"):
        sf.update_opportunity(gone, {"Name": "x"})
    # Deleted records stay readable in the store.
    assert sf.get(gone)["IsDeleted"] is True
    assert len(sf.records(include_deleted=False)) == 1


def test_order_by_system_modstamp_then_id_and_the_keyset_condition(
    sf: FakeSalesforce, api: httpx.Client
) -> None:
    tied = sf.add_opportunities([{"Name": f"Tied {i}"} for i in range(5)], same_stamp=True)
    later = sf.add_opportunities([{"Name": "Later"}])
    sf.clock.advance(1)
    edited = tied[1]
    sf.update_opportunity(edited, {"Amount": 1})
    stamp = sf.get(tied[0])["SystemModstamp"]
    assert all(sf.get(i)["SystemModstamp"] == stamp for i in tied if i != edited)
    query = "SELECT Id FROM Opportunity ORDER BY SystemModstamp, Id"
    expected = [tied[0], *tied[2:], *later, edited]
    assert ids_of(soql(api, query)) == expected
    assert (
        ids_of(soql(api, "SELECT Id FROM Opportunity ORDER BY SystemModstamp DESC, Id DESC"))
        == (expected[::-1])
    )
    # Resume after tied[2] with the (SystemModstamp, Id) keyset, as the pull does.
    keyset = (
        "SELECT Id FROM Opportunity WHERE (StageName != 'Closed Lost') AND "
        f"(SystemModstamp > {format_datetime(stamp)} OR "
        f"(SystemModstamp = {format_datetime(stamp)} AND Id > '{tied[2]}')) "
        "ORDER BY SystemModstamp, Id LIMIT 10"
    )
    assert ids_of(soql(api, keyset)) == [*tied[3:], *later, edited]
    z_form = format_datetime(stamp).replace(".000+0000", "Z")
    assert ids_of(
        soql(api, f"SELECT Id FROM Opportunity WHERE SystemModstamp > {z_form} ORDER BY Id DESC")
    ) == [
        *later,
        edited,
    ]
    fifteen = tied[2][:15]  # 15-character Ids work in filters too
    assert ids_of(soql(api, f"SELECT Id FROM Opportunity WHERE Id = '{fifteen}'")) == [tied[2]]


def test_where_clause_subset(sf: FakeSalesforce, api: httpx.Client) -> None:
    a, b, c, d = sf.add_opportunities(
        [
            {
                "Name": "Alpha",
                "Amount": 100,
                "StageName": "Closed Won",
                "Account.BillingCountry": "FR",
            },
            {"Name": "Beta", "Amount": 250.5, "Discount__c": 12.5, "Account.BillingCountry": "DE"},
            {"Name": "O'Brien", "Uncapped_Liability__c": True, "CloseDate": "2024-06-30"},
            {"Name": "Delta", "Amount": None, "Region__c": "EMEA"},
        ]
    )

    def where(condition: str) -> list[str]:
        response = soql(api, f"SELECT Id FROM Opportunity WHERE {condition} ORDER BY Id")
        assert response.status_code == 200, response.text
        return ids_of(response)

    assert where("Amount > 100") == [b]
    assert where("Amount >= 100 AND Amount <= 250.5") == [a, b]
    assert where("Amount = null") == [c, d]
    assert where("Amount != null") == [a, b]
    assert where("Name != 'alpha'") == [b, c, d]  # text comparisons ignore case
    assert where("Name IN ('Alpha', 'Delta')") == [a, d]
    assert where("Name NOT IN ('Alpha', 'Delta')") == [b, c]
    assert where("Name = 'O\\'Brien'") == [c]
    assert where("Name LIKE '%ta'") == [b, d]
    assert where("Uncapped_Liability__c = true") == [c]
    assert where("IsWon = TRUE OR Discount__c > 10") == [a, b]
    assert where("Account.BillingCountry IN ('FR', 'DE')") == [a, b]
    assert where("Account.BillingCountry = null") == [c, d]
    assert where("CloseDate = 2024-06-30") == [c]
    assert where("NOT (Region__c = 'EMEA')") == [a, b, c]
    assert where(f"Id IN ('{a}', '{d}') AND (Amount > 1 OR Region__c = 'EMEA')") == [a, d]
    assert where("Id > '006'") == [a, b, c, d]
    limited = soql(api, "SELECT Id FROM Opportunity ORDER BY Name DESC LIMIT 2")
    assert (limited.json()["totalSize"], ids_of(limited)) == (2, [c, d])
    counted = soql(api, "SELECT COUNT() FROM Opportunity WHERE Amount > 0").json()
    assert counted == {"totalSize": 2, "done": True, "records": []}
    nulls = soql(api, "SELECT Id FROM Opportunity ORDER BY Amount DESC NULLS FIRST, Id")
    assert ids_of(nulls) == [c, d, b, a]


@pytest.mark.parametrize(
    ("query", "code", "fragment"),
    [
        ("SELECT Id, Foo__c FROM Opportunity", "INVALID_FIELD", "No such column 'Foo__c'"),
        ("SELECT Account.Foo FROM Opportunity", "INVALID_FIELD", "entity 'Account'"),
        ("SELECT Owner.Name FROM Opportunity", "INVALID_FIELD", "relationship 'Owner'"),
        ("SELECT Id FROM Opportunity WHERE Bar__c = 1", "INVALID_FIELD", "'Bar__c'"),
        ("SELECT Id FROM Lead", "INVALID_TYPE", "sObject type 'Lead'"),
        ("SELECT FROM Opportunity", "MALFORMED_QUERY", "unexpected token: 'FROM'"),
        ("SELECT Id FROM Opportunity WHERE", "MALFORMED_QUERY", "unexpected token: <EOF>"),
        ("SELECT Id FROM Opportunity WHERE Name = 'x", "MALFORMED_QUERY", "ERROR at Row:1"),
        ("SELECT Id FROM Opportunity ORDER Id", "MALFORMED_QUERY", "unexpected token: 'Id'"),
        (
            "SELECT Id FROM Opportunity WHERE Amount > 1 AND Name = 'x' OR Name = 'y'",
            "MALFORMED_QUERY",
            "unexpected token: 'OR'",
        ),
        (
            "SELECT Id FROM Opportunity WHERE SystemModstamp > '2024-05-01T12:34:56.000+0000'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "must be of type dateTime",
        ),
        (
            "SELECT Id FROM Opportunity WHERE Amount > '5'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "must be of type currency",
        ),
        ("SELECT Id, Id FROM Opportunity", "MALFORMED_QUERY", "duplicate field selected: Id"),
    ],
)
def test_query_errors(api: httpx.Client, query: str, code: str, fragment: str) -> None:
    response = soql(api, query)
    assert response.status_code == 400
    assert error_code(response) == code
    assert fragment in response.json()[0]["message"]


def test_retrieve_one_record(sf: FakeSalesforce, api: httpx.Client) -> None:
    (opportunity,) = sf.add_opportunities([{"Name": "A", "Amount": 5}])
    body = api.get(f"{DATA}/sobjects/Opportunity/{opportunity}", params={"fields": "Name,Amount"})
    assert body.json() == {
        "attributes": {"type": "Opportunity", "url": f"{DATA}/sobjects/Opportunity/{opportunity}"},
        "Name": "A",
        "Amount": 5.0,
    }
    full = api.get(f"{DATA}/sobjects/Opportunity/{opportunity}").json()
    assert DATETIME_RE.match(full["CreatedDate"])
    sf.delete_opportunity(opportunity)
    gone = api.get(f"{DATA}/sobjects/Opportunity/{opportunity}")
    assert (gone.status_code, error_code(gone)) == (404, "ENTITY_IS_DELETED")


# ------------------------------------------------------------------------------ describe


def test_describe_opportunity_and_account(sf: FakeSalesforce, api: httpx.Client) -> None:
    body = api.get(f"{DATA}/sobjects/Opportunity/describe").json()
    assert body["name"] == "Opportunity"
    fields = {f["name"]: f for f in body["fields"]}
    expected_types = {
        "Id": "id",
        "Name": "string",
        "StageName": "picklist",
        "Amount": "currency",
        "CloseDate": "date",
        "IsClosed": "boolean",
        "IsWon": "boolean",
        "IsDeleted": "boolean",
        "SystemModstamp": "datetime",
        "LastModifiedDate": "datetime",
        "LastModifiedById": "reference",
        "OwnerId": "reference",
        "CurrencyIsoCode": "picklist",
        "AccountId": "reference",
        "Discount__c": "percent",
        "Payment_Terms_Days__c": "double",
        "Support_Level__c": "picklist",
        "Uncapped_Liability__c": "boolean",
        "Governance_Check_URL__c": "url",
        "Governance_Concession_Cost__c": "currency",
        "Region__c": "string",
    }
    assert {name: fields[name]["type"] for name in expected_types} == expected_types
    assert set(DEFAULT_CUSTOM_FIELDS) <= set(fields)
    for name in ("Id", "IsClosed", "IsWon", "IsDeleted", "SystemModstamp", "LastModifiedById"):
        assert fields[name]["updateable"] is False
    assert fields["Governance_Status__c"]["updateable"] is True
    assert fields["Governance_Status__c"]["nillable"] is True
    assert fields["Governance_Status__c"]["length"] == 255
    assert fields["Governance_Status__c"]["custom"] is True
    assert fields["AccountId"]["relationshipName"] == "Account"
    assert [v["value"] for v in fields["Support_Level__c"]["picklistValues"]] == [
        "Standard",
        "Premium",
        "Platinum",
    ]
    account = api.get(f"{DATA}/sobjects/Account/describe").json()
    assert {f["name"] for f in account["fields"]} >= {"Id", "Name", "BillingCountry"}
    missing = api.get(f"{DATA}/sobjects/Quote/describe")
    assert (missing.status_code, error_code(missing)) == (404, "NOT_FOUND")
    newer = api.get("/services/data/v99.0/sobjects/Opportunity/describe")
    assert newer.status_code == 404


def test_custom_fields_are_configurable() -> None:
    custom: dict[str, str | dict[str, Any]] = {
        "Discount__c": "percent",
        "Tier__c": {"type": "picklist", "picklistValues": ["A"]},
    }
    with FakeSalesforce(api_version=V, custom_fields=custom) as sf:
        assert sf.field_types()["Tier__c"] == "picklist"
        assert "Governance_Status__c" not in sf.field_types()
        client = Salesforce(
            instance_url=sf.url,
            session_id=sf.issue_token(),
            version=V,
            session=sf.requests_session(),
        )
        described = cast(SFType, client.Opportunity).describe()
        assert {f["name"] for f in described["fields"]} >= {"Discount__c", "Tier__c"}
        with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD"):
            client.query("SELECT Governance_Status__c FROM Opportunity")


# ------------------------------------------------------------------------------ collections


def test_collections_update_per_record_results(sf: FakeSalesforce, api: httpx.Client) -> None:
    ok, deleted, rejected, other = sf.add_opportunities([{"Name": n} for n in "ABCD"])
    sf.delete_opportunity(deleted)
    sf.reject_records(
        {
            rejected: (
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "Discount needs a reason",
                ["Discount__c"],
            )
        }
    )
    before = sf.get(ok)["SystemModstamp"]
    body = collection(
        {"id": ok, "Governance_Status__c": "Needs approval", "Governance_Variance__c": 12.5},
        {"id": deleted, "Governance_Status__c": "x"},
        {"id": rejected, "Governance_Status__c": "x"},
        {"id": "006Fk0000000zzzAAA", "Governance_Status__c": "x"},
        {"id": "001Fk0000000001IAA", "Governance_Status__c": "x"},
        {"Governance_Status__c": "x"},
        {"id": other, "IsWon": True},
        {"id": other, "Governance_Approvers__c": "x" * 256},
    )
    response = api.patch(f"{DATA}/composite/sobjects", json=body)
    assert response.status_code == 200
    assert LIMIT_RE.match(response.headers["Sforce-Limit-Info"])
    results = response.json()
    assert results[0] == {"id": ok, "success": True, "errors": []}
    codes = [[e["statusCode"] for e in r["errors"]] for r in results]
    assert codes == [
        [],
        ["ENTITY_IS_DELETED"],
        ["FIELD_CUSTOM_VALIDATION_EXCEPTION"],
        ["NOT_FOUND"],
        ["MALFORMED_ID"],
        ["MISSING_ARGUMENT"],
        ["INVALID_FIELD_FOR_INSERT_UPDATE"],
        ["DUPLICATE_VALUE"],
    ]
    assert results[2] == {
        "id": rejected,
        "success": False,
        "errors": [
            {
                "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "message": "Discount needs a reason",
                "fields": ["Discount__c"],
            }
        ],
    }
    assert "id" not in results[4]  # no usable Id: the position says which record failed
    assert results[6]["errors"][0]["fields"] == ["IsWon"]
    assert all(set(e) == {"statusCode", "message", "fields"} for r in results for e in r["errors"])
    record = sf.get(ok)
    assert record["Governance_Status__c"] == "Needs approval"
    assert record["Governance_Variance__c"] == 12.5
    assert record["LastModifiedById"] == sf.integration_user_id
    assert record["SystemModstamp"] > before
    assert sf.fired == [FiredFault("collections", "FIELD_CUSTOM_VALIDATION_EXCEPTION", rejected)]
    # Rejected once: the retry goes through. Too long a value fails on its own.
    retry = api.patch(
        f"{DATA}/composite/sobjects",
        json=collection(
            {"id": rejected, "Governance_Status__c": "ok"},
            {"id": other, "Governance_Approvers__c": "x" * 256},
        ),
    ).json()
    assert retry[0]["success"] is True
    assert retry[1]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert sf.get(rejected)["Governance_Status__c"] == "ok"


def test_collections_limits_and_whole_request_errors(sf: FakeSalesforce, api: httpx.Client) -> None:
    ids = sf.add_opportunities([{"Name": f"D{i}"} for i in range(201)])
    url = f"{DATA}/composite/sobjects"
    too_many = api.patch(url, json=collection(*({"id": i, "Region__c": "x"} for i in ids)))
    assert (too_many.status_code, error_code(too_many)) == (400, "EXCEEDED_ID_LIMIT")
    unknown = api.patch(url, json=collection({"id": ids[0], "Foo__c": 1}))
    assert (unknown.status_code, error_code(unknown)) == (400, "INVALID_FIELD")
    wrong_type = api.patch(url, json=collection({"id": ids[0], "Governance_Variance__c": "high"}))
    assert (wrong_type.status_code, error_code(wrong_type)) == (400, "JSON_PARSER_ERROR")
    assert all(sf.get(i)["Region__c"] is None for i in ids)
    batch = api.patch(url, json=collection(*({"id": i, "Region__c": "EMEA"} for i in ids[:200])))
    assert [r["success"] for r in batch.json()] == [True] * 200
    # One DML, one stamp (like Salesforce): the sync's (SystemModstamp, Id) order handles ties.
    assert len({sf.get(i)["SystemModstamp"] for i in ids[:200]}) == 1
    # allOrNone: one failure rolls everything back.
    sf.reject_records({ids[1]: ("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access")})
    rolled = api.patch(
        url,
        json=collection({"id": ids[0], "Region__c": "APAC"}, {"id": ids[1]}, all_or_none=True),
    ).json()
    assert [r["errors"][0]["statusCode"] for r in rolled] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "UNABLE_TO_LOCK_ROW",
    ]
    assert sf.get(ids[0])["Region__c"] == "EMEA"
    # Rejections can be permanent.
    sf.reject_records({ids[2]: ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "no", [])}, times=None)
    for _ in range(3):
        again = api.patch(url, json=collection({"id": ids[2], "Region__c": "x"})).json()
        assert again[0]["success"] is False


def test_concurrent_workers(sf: FakeSalesforce, api: httpx.Client) -> None:
    ids = sf.add_opportunities([{"Name": f"D{i}"} for i in range(400)])
    token = sf.issue_token()

    def push(chunk: list[str]) -> list[bool]:
        with httpx.Client(
            base_url=sf.url, headers={"Authorization": f"Bearer {token}"}, verify=False
        ) as client:
            body = collection(*({"id": i, "Region__c": chunk[0]} for i in chunk))
            return [
                r["success"] for r in client.patch(f"{DATA}/composite/sobjects", json=body).json()
            ]

    with ThreadPoolExecutor(max_workers=4) as pool:
        chunks = [ids[i : i + 100] for i in range(0, 400, 100)]
        queries = [pool.submit(soql, api, "SELECT Id FROM Opportunity") for _ in range(4)]
        results = list(pool.map(push, chunks))
    assert all(all(r) for r in results)
    assert all(q.result().json()["totalSize"] == 400 for q in queries)
    assert all(sf.get(i)["Region__c"] == ids[(n // 100) * 100] for n, i in enumerate(ids))
    assert sf.api_usage == 8


# ------------------------------------------------------------------------------ limits


def test_limit_info_header_and_request_limit_exceeded(
    sf: FakeSalesforce, api: httpx.Client, http: httpx.Client
) -> None:
    sf.daily_limit = 5
    (opportunity,) = sf.add_opportunities([{"Name": "A"}])
    responses = [
        soql(api, "SELECT Id FROM Opportunity"),
        api.get(f"{DATA}/sobjects/Opportunity/describe"),
        api.patch(f"{DATA}/composite/sobjects", json=collection({"id": opportunity})),
        api.get(f"{DATA}/sobjects/Opportunity/{opportunity}"),
        soql(api, "SELECT Id FROM Nope"),  # errors count too
    ]
    usage = [LIMIT_RE.match(r.headers["Sforce-Limit-Info"]) for r in responses]
    assert [m.groups() if m else None for m in usage] == [
        ("1", "5"),
        ("2", "5"),
        ("3", "5"),
        ("4", "5"),
        ("5", "5"),
    ]
    http.post("/services/oauth2/token", data={"grant_type": "client_credentials"})
    refused = soql(api, "SELECT Id FROM Opportunity")
    assert refused.status_code == 403
    assert refused.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=5/5"
    assert sf.api_usage == 5
    sf.api_usage = 0  # a new day
    assert soql(api, "SELECT Id FROM Opportunity").headers["Sforce-Limit-Info"] == "api-usage=1/5"
    calls = sf.calls
    assert (calls["query"], calls["describe"], calls["collections"], calls["retrieve"]) == (
        4,
        1,
        1,
        1,
    )
    assert calls["token"] == 1  # counted as a call, never against the API limit
    assert calls["total"] == 8


# ------------------------------------------------------------------------------ faults


@pytest.mark.parametrize(
    ("kind", "fault", "status", "code"),
    [
        ("query", "INVALID_SESSION_ID", 401, "INVALID_SESSION_ID"),
        ("query", "REQUEST_LIMIT_EXCEEDED", 403, "REQUEST_LIMIT_EXCEEDED"),
        ("query", "QUERY_TIMEOUT", 400, "QUERY_TIMEOUT"),
        ("query", 500, 500, "UNKNOWN_EXCEPTION"),
        ("query", 503, 503, "SERVER_UNAVAILABLE"),
        ("query_more", "QUERY_TIMEOUT", 400, "QUERY_TIMEOUT"),
        ("query_more", "INVALID_QUERY_LOCATOR", 400, "INVALID_QUERY_LOCATOR"),
        ("describe", 503, 503, "SERVER_UNAVAILABLE"),
        ("collections", "REQUEST_LIMIT_EXCEEDED", 403, "REQUEST_LIMIT_EXCEEDED"),
        ("collections", 500, 500, "UNKNOWN_EXCEPTION"),
    ],
)
def test_injected_api_faults_fire_once(
    sf: FakeSalesforce, api: httpx.Client, kind: str, fault: str | int, status: int, code: str
) -> None:
    sf.batch_size = 2
    (opportunity, *_) = sf.add_opportunities([{"Name": n} for n in "ABCDE"])
    first_page = soql(api, "SELECT Id FROM Opportunity").json()
    calls = {
        "query": lambda: soql(api, "SELECT Id FROM Opportunity"),
        "query_more": lambda: api.get(first_page["nextRecordsUrl"]),
        "describe": lambda: api.get(f"{DATA}/sobjects/Opportunity/describe"),
        "collections": lambda: api.patch(
            f"{DATA}/composite/sobjects", json=collection({"id": opportunity, "Region__c": "x"})
        ),
    }
    sf.inject(kind, fault)
    failed = calls[kind]()
    assert failed.status_code == status
    assert error_code(failed) == code
    assert "Sforce-Limit-Info" in failed.headers
    if code == "QUERY_TIMEOUT":
        assert failed.json()[0]["message"] == "Your query request was running for too long."
    if code == "INVALID_SESSION_ID":
        assert not sf.is_live(sf.issued_tokens[0].access_token)
        api.headers["Authorization"] = f"Bearer {sf.issue_token()}"
    retried = calls[kind]()
    assert retried.status_code == 200, retried.text
    assert sf.fired == [FiredFault(kind, str(fault))]
    assert sf.pending_faults() == []


def test_faults_after_n_calls_times_and_order(sf: FakeSalesforce, api: httpx.Client) -> None:
    sf.inject("query", 503, times=2, after=1)
    sf.inject("query", "QUERY_TIMEOUT")
    statuses = [soql(api, "SELECT Id FROM Opportunity").status_code for _ in range(5)]
    # The 503 waits for one call to pass; the timeout, injected second, takes that call.
    assert statuses == [400, 503, 503, 200, 200]
    assert [f.fault for f in sf.fired] == ["QUERY_TIMEOUT", "503", "503"]
    sf.inject("describe", 500, times=None)
    for _ in range(3):
        assert api.get(f"{DATA}/sobjects/Opportunity/describe").status_code == 500
    assert sf.pending_faults() == [("describe", "500", None)]
    sf.clear_faults()
    assert api.get(f"{DATA}/sobjects/Opportunity/describe").status_code == 200
    with pytest.raises(ValueError, match="unknown fault"):
        sf.inject("query", "SOMETHING")
    with pytest.raises(ValueError, match="kind"):
        sf.inject("search", 500)


def test_timeout_and_disconnect_faults(sf: FakeSalesforce, api: httpx.Client) -> None:
    sf.timeout_sleep = 0.4
    (opportunity,) = sf.add_opportunities([{"Name": "A"}])
    sf.inject("collections", "timeout")
    with pytest.raises(httpx.ReadTimeout):
        api.patch(
            f"{DATA}/composite/sobjects",
            json=collection({"id": opportunity, "Region__c": "late"}),
            timeout=0.1,
        )
    sf.inject("query", "disconnect")
    with pytest.raises(httpx.TransportError):
        soql(api, "SELECT Id FROM Opportunity")
    assert soql(api, "SELECT Id FROM Opportunity").status_code == 200
    assert [(f.kind, f.fault) for f in sf.fired] == [
        ("collections", "timeout"),
        ("query", "disconnect"),
    ]
    # The timed-out update still happens: the answer was merely late.
    deadline = time.monotonic() + 3
    while sf.get(opportunity)["Region__c"] != "late" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sf.get(opportunity)["Region__c"] == "late"


def test_token_faults(sf: FakeSalesforce, http: httpx.Client) -> None:
    url = "/services/oauth2/token"
    form = {"grant_type": "client_credentials", "client_id": "k", "client_secret": "s"}
    sf.inject("token", "INVALID_SESSION_ID")
    sf.inject("token", 503)
    first = http.post(url, data=form)
    assert (first.status_code, first.json()["error"]) == (400, "invalid_grant")
    second = http.post(url, data=form)
    assert (second.status_code, second.json()["error"]) == (503, "unknown_error")
    assert http.post(url, data=form).status_code == 200
    sf.inject("token", 500)
    with pytest.raises(SalesforceAuthenticationFailed):
        Salesforce(username="u", password="p", security_token="t", session=sf.requests_session())
    assert [f.fault for f in sf.fired] == ["INVALID_SESSION_ID", "503", "500"]


# ------------------------------------------------------------------------------ simple-salesforce


def test_simple_salesforce_round_trip(sf: FakeSalesforce) -> None:
    created = sf.add_opportunities(sample_opportunities(4500, seed=7))
    sf.delete_opportunity(created[0])
    client = Salesforce(
        instance_url=sf.url, session_id=sf.issue_token(), version=V, session=sf.requests_session()
    )
    query = "SELECT Id, Discount__c, Account.BillingCountry FROM Opportunity ORDER BY SystemModstamp, Id"
    first = client.query(query)
    assert (first["totalSize"], first["done"], len(first["records"])) == (4499, False, 2000)
    assert len(client.query_all(query)["records"]) == 4499
    everything = client.query_all(query, include_deleted=True)["records"]
    assert [r["Id"] for r in everything] == [*created[1:], created[0]]
    assert client.api_usage["api-usage"].used == sf.api_usage
    result = client.restful(
        "composite/sobjects",
        method="PATCH",
        json=collection(
            {"id": created[1], "Governance_Status__c": "Approved"},
            {"id": created[0], "Governance_Status__c": "Approved"},
        ),
    )
    assert result is not None
    assert [r["success"] for r in result] == [True, False]
    assert result[1]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert sf.get(created[1])["Governance_Status__c"] == "Approved"
    described = cast(SFType, client.Opportunity).describe()
    assert described["name"] == "Opportunity"
    sf.inject("query", "INVALID_SESSION_ID")
    with pytest.raises(SalesforceExpiredSession):
        client.query("SELECT Id FROM Opportunity LIMIT 1")


def test_simple_salesforce_logs_in_again_when_the_session_expires(sf: FakeSalesforce) -> None:
    client = Salesforce(
        username="int@example.com",
        password="secret",
        security_token="TOKEN",
        version=V,
        session=sf.requests_session(),
    )
    sf.add_opportunities([{"Name": "A"}])
    sf.expire_sessions()
    sf.inject("query", "INVALID_SESSION_ID", after=1)
    assert client.query("SELECT Id FROM Opportunity")["totalSize"] == 1
    assert client.query("SELECT Id FROM Opportunity")["totalSize"] == 1
    assert [t.grant_type for t in sf.issued_tokens] == ["soap", "soap", "soap"]
    assert sf.fired == [FiredFault("query", "INVALID_SESSION_ID")]


# ------------------------------------------------------------------------------ odds and ends


def test_stats_versions_and_log(sf: FakeSalesforce, api: httpx.Client, http: httpx.Client) -> None:
    sf.add_opportunities([{"Name": "A"}])
    soql(api, "SELECT Id FROM Opportunity")
    stats = http.get("/_fake/stats").json()
    assert stats["records"] == 1
    assert stats["api_usage"] == 1
    assert stats["calls"]["query"] == 1
    versions = http.get("/services/data").json()
    assert {"label", "url", "version"} == set(versions[-1])
    assert versions[-1]["version"] == V
    assert sf.soql_sent() == ["SELECT Id FROM Opportunity"]
    assert sf.log[-1].path == "/services/data"
    assert http.get("/services/oauth2/token").status_code == 405
    date_header = soql(api, "SELECT Id FROM Opportunity").headers["Date"]
    assert date_header == "Wed, 01 May 2024 12:34:56 GMT"  # the fake clock's time


def test_command_line_serves_sample_data() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "fake_salesforce", "--opportunities", "25"],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("FAKE_SALESFORCE_URL=http://127.0.0.1:")
        stats = httpx.get(f"{line.split('=', 1)[1]}/_fake/stats", verify=False).json()
        assert stats["records"] == 25
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


def test_stop_is_idempotent_and_frees_the_port() -> None:
    sf = FakeSalesforce()
    url = sf.url
    sf.stop()
    sf.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/services/data", timeout=1, verify=False)
    assert json.loads(json.dumps(sample_opportunities(3, today=date(2024, 5, 1)), default=str))


def test_bulk_query_jobs_have_the_documented_shapes(sf: FakeSalesforce, api: httpx.Client) -> None:
    """Bulk API 2.0: create, poll through UploadComplete → InProgress → JobComplete, then the
    CSV results by locator (quoted values, relationship columns, empty = null, `null` at the
    end); a job set to fail ends Failed with an errorMessage."""
    ids = [sf.add_opportunity(r) for r in sample_opportunities(5, seed=3)]
    sf.update_opportunity(ids[0], {"Discount__c": None})
    created = api.post(
        f"{DATA}/jobs/query",
        json={
            "operation": "queryAll",
            "query": "SELECT Id, Discount__c, IsClosed, Account.BillingCountry FROM Opportunity",
        },
    )
    assert created.status_code == 200
    job = created.json()
    assert job["state"] == "UploadComplete"
    assert {
        "id",
        "operation",
        "object",
        "createdById",
        "createdDate",
        "systemModstamp",
        "concurrencyMode",
        "contentType",
        "apiVersion",
        "lineEnding",
        "columnDelimiter",
    } <= set(job)
    assert (job["operation"], job["object"], job["contentType"]) == (
        "queryAll",
        "Opportunity",
        "CSV",
    )
    early = api.get(f"{DATA}/jobs/query/{job['id']}/results")
    assert early.status_code == 400  # not complete yet
    states = [api.get(f"{DATA}/jobs/query/{job['id']}").json()["state"] for _ in range(3)]
    assert states == ["InProgress", "JobComplete", "JobComplete"]
    assert api.get(f"{DATA}/jobs/query/{job['id']}").json()["numberRecordsProcessed"] == 5

    first = api.get(f"{DATA}/jobs/query/{job['id']}/results", params={"maxRecords": 3})
    assert first.headers["content-type"].startswith("text/csv")
    assert first.headers["Sforce-NumberOfRecords"] == "3"
    lines = first.text.splitlines()
    assert lines[0] == '"Id","Discount__c","IsClosed","Account.BillingCountry"'
    assert lines[1].startswith(f'"{ids[0]}","",')  # null: empty
    assert lines[1].split(",")[2] in ('"true"', '"false"')
    rest = api.get(
        f"{DATA}/jobs/query/{job['id']}/results",
        params={"maxRecords": 3, "locator": first.headers["Sforce-Locator"]},
    )
    assert rest.headers["Sforce-NumberOfRecords"] == "2"
    assert rest.headers["Sforce-Locator"] == "null"

    sf.fail_bulk_jobs = "Query timed out"
    failing = api.post(
        f"{DATA}/jobs/query", json={"operation": "query", "query": "SELECT Id FROM Opportunity"}
    ).json()
    for _ in range(3):
        info = api.get(f"{DATA}/jobs/query/{failing['id']}").json()
    assert (info["state"], info["errorMessage"]) == ("Failed", "Query timed out")
