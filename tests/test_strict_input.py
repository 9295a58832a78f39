"""What every route promises about its input: a duplicate key, a NUL character, a number JSON
does not allow or past the service's bounds, and a numeric parameter not written as a number
are each a 422 problem naming the field, the same on SQLite and PostgreSQL, and nothing is
stored. Bodies that are not JSON at all stay a 400."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.conftest import Keys

from governance import strict_json
from governance.errors import InvalidInput

pytestmark = pytest.mark.usefixtures("demo_published")

FILLERS = {
    "external_id": "0065g00000AbCdEAAV",
    "name": "finance",
    "request_id": "1",
    "key": "standard",
    "number": "1",
    "rule_key": "multi_year",
    "term_key": "discount_pct",
    "rep": "ana",
}
BIG = "9" * 5000


def _operations(app: FastAPI, method: str | None, with_json_body: bool) -> list[tuple[str, str]]:
    found = []
    for path, operations in app.openapi()["paths"].items():
        for verb, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {})
            if method is not None and verb != method:
                continue
            if with_json_body != ("application/json" in body):
                continue
            url = re.sub(r"\{(\w+)\}", lambda m: FILLERS[m.group(1)], path)
            found.append((verb.upper(), url))
    return found


def _refused(response: httpx.Response, field: str, fragment: str) -> None:
    assert response.status_code == 422, (response.request.url, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field], errors
    assert fragment in errors[0]["message"]


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ('{"zz": 1, "zz": 2}', "zz", "duplicate key 'zz'"),
        (
            '{"terms": {"discount_pct": "5", "discount_pct": "30"}}',
            "terms.discount_pct",
            "duplicate",
        ),
        ('{"zz": "a\\u0000b"}', "zz", "NUL"),
        ('{"zz": ["ok", {"a\\u0000": 1}]}', "zz[1].a\\u0000", "NUL"),
        ('{"zz": ' + BIG + "}", "zz", "out of range"),
        ('{"zz": -' + BIG + "}", "zz", "out of range"),
        ('{"zz": 1e999999999}', "zz", "out of range"),
        ('{"zz": NaN}', "zz", "not a number JSON allows"),
        ('{"zz": -Infinity}', "zz", "not a number JSON allows"),
    ],
    ids=["dup", "nested-dup", "nul", "nul-key", "big", "-big", "1e999999999", "nan", "-inf"],
)
async def test_every_json_route_refuses_what_json_readers_let_through(
    app: FastAPI, client: httpx.AsyncClient, keys: Keys, body: str, field: str, fragment: str
) -> None:
    operations = _operations(app, None, with_json_body=True)
    assert len(operations) >= 20
    for method, url in operations:
        response = await client.request(
            method,
            url,
            content=body.encode(),
            headers={**keys.headers("admin"), "Content-Type": "application/json"},
        )
        _refused(response, field, fragment)


async def test_a_duplicate_role_does_not_make_an_admin_key(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    response = await client.post(
        "/v1/api-keys",
        content=b'{"name": "sneaky", "role": "rep", "role": "admin"}',
        headers={**keys.headers("admin"), "Content-Type": "application/json"},
    )
    _refused(response, "role", "duplicate key 'role'")
    listed = await client.get("/v1/api-keys", headers=keys.headers("admin"))
    assert "sneaky" not in listed.text


async def test_a_nul_is_refused_in_any_body_string_and_nothing_is_stored(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    deal = "/v1/deals/0065g00000AbCdEAAV"
    for body, field in (
        ({"name": "a\x00b"}, "name"),
        ({"attributes": {"region": "EM\x00EA"}}, "attributes.region"),
        ({"attributes": {"notes": "\x00"}}, "attributes.notes"),
        ({"terms": {"support_level": "premium\x00"}}, "terms.support_level"),
    ):
        response = await client.put(deal, json=body, headers=keys.headers("rep"))
        _refused(response, field, "NUL")
    assert (await client.get(deal, headers=keys.headers("rep"))).status_code == 404


async def test_every_route_refuses_a_nul_in_the_query(
    app: FastAPI, client: httpx.AsyncClient, keys: Keys
) -> None:
    # The health probes take no parameters and read nothing.
    operations = [
        (method, url)
        for method, url in _operations(app, "get", with_json_body=False)
        if url not in ("/healthz", "/readyz")
    ]
    assert len(operations) >= 20
    for method, url in operations:
        response = await client.request(
            method, url, params={"region": "EM\x00EA"}, headers=keys.headers("admin")
        )
        _refused(response, "query.region", "NUL")


async def test_every_route_refuses_an_unknown_query_parameter(
    app: FastAPI, client: httpx.AsyncClient, keys: Keys
) -> None:
    # A misspelt filter (`actr` for `actor` on the audit log) must not answer for everything.
    operations = [
        (method, url)
        for method, url in _operations(app, "get", with_json_body=False)
        if url not in ("/healthz", "/readyz")
    ]
    assert len(operations) >= 20
    for method, url in operations:
        response = await client.request(
            method, url, params={"actr": "someone"}, headers=keys.headers("admin")
        )
        _refused(response, "query.actr", "not a parameter")
        assert response.json()["detail"] == "unknown query parameter"


@pytest.mark.parametrize("text", ["1_0", " 10", "10 ", "١٠", "１０", "0x10", "1e1", "NaN", "1.0"])
async def test_integer_parameters_are_read_strictly(
    client: httpx.AsyncClient, keys: Keys, text: str
) -> None:
    deals = await client.get("/v1/deals", params={"limit": text}, headers=keys.headers("rep"))
    _refused(deals, "query.limit", "not an integer")
    version = await client.get(
        f"/v1/playbooks/standard/versions/{text.strip() or text}", headers=keys.headers("rep")
    )
    if text.strip() == text:  # a path cannot end in a space
        _refused(version, "path.number", "not an integer")


@pytest.mark.parametrize("text", ["0_1", " 0.1", "NaN", "Infinity", "٠.١", ".1", "1e999999999"])
async def test_decimal_parameters_are_read_strictly(
    client: httpx.AsyncClient, keys: Keys, text: str
) -> None:
    response = await client.get(
        "/v1/analytics/consistency", params={"min_spread": text}, headers=keys.headers("admin")
    )
    _refused(response, "query.min_spread", "")


async def test_numbers_written_as_numbers_still_work(client: httpx.AsyncClient, keys: Keys) -> None:
    assert (await client.get("/v1/deals?limit=10", headers=keys.headers("rep"))).status_code == 200
    version = await client.get("/v1/playbooks/standard/versions/1", headers=keys.headers("rep"))
    assert version.status_code == 200
    spread = await client.get(
        "/v1/analytics/consistency", params={"min_spread": "0.25"}, headers=keys.headers("admin")
    )
    assert spread.status_code == 200


@pytest.mark.parametrize("body", [b"{", b'{"a": 1', b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000])
async def test_what_is_not_json_at_all_stays_a_400(
    client: httpx.AsyncClient, keys: Keys, body: bytes
) -> None:
    for method, path in (("POST", "/v1/checks"), ("PUT", "/v1/deals/0065g00000AbCdEAAV")):
        response = await client.request(
            method,
            path,
            content=body,
            headers={**keys.headers("rep"), "Content-Type": "application/json"},
        )
        assert response.status_code == 400, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"


# --- the reader itself --------------------------------------------------------------------------


def test_the_common_body_reads_as_json_does() -> None:
    text = '{"a": [1, 2.5, -0.0, "x", true, null], "b": {"c": "\\u00e9"}}'
    assert strict_json.loads(text.encode()) == json.loads(text)
    assert str(strict_json.loads("-0.0")) == "0.0"


def test_every_refusal_is_named_at_once() -> None:
    with pytest.raises(InvalidInput) as caught:
        strict_json.loads('{"a": 1, "a": 2, "b": [NaN, "\\u0000"], "c": {"d": 1e400}}')
    assert [(p.loc, p.message.split(":")[0]) for p in caught.value.errors] == [
        (("a",), "duplicate key 'a'"),
        (("b", 0), "NaN is not a number JSON allows"),
        (("b", 1), "must not contain the NUL character (\\u0000)"),
        (("c", "d"), "1e400 is out of range"),
    ]


def _nested(depth: int) -> Any:
    return "[" * depth + "]" * depth


def test_deep_nesting_is_not_json_here_rather_than_a_crash() -> None:
    with pytest.raises(json.JSONDecodeError):
        strict_json.loads(_nested(100_000))
