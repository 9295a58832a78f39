"""Playbook documents in YAML are read off the event loop, bounded, and strictly: an alias bomb,
a malformed scalar, a duplicate key, a NUL or a number YAML 1.1 reads leniently is a 422 naming
the field (or the line), never a 500, a frozen server or a silently different document."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import Keys
from typer.testing import CliRunner

from governance.cli import app as cli
from governance.errors import InvalidPlaybook
from governance.playbooks import formats
from governance.settings import get_settings

HEAD = "key: probe\nname: Probe\n"
LAUGHS = (
    "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "key: bomb\nname: Bomb\nterms: [*i]\n"
)


async def _import(client: httpx.AsyncClient, keys: Keys, text: str) -> httpx.Response:
    return await client.post(
        "/v1/playbooks/import",
        content=text.encode(),
        headers={**keys.headers("leadership"), "Content-Type": "application/yaml"},
    )


def _refused(response: httpx.Response, field: str | None, fragment: str) -> None:
    assert response.status_code == 422, response.text[:500]
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    if field is None:
        assert fragment in body["detail"], body
    else:
        assert [e["field"] for e in body["errors"]] == [field], body
        assert fragment in body["errors"][0]["message"], body


async def test_an_alias_bomb_is_refused_at_once(client: httpx.AsyncClient, keys: Keys) -> None:
    started = time.perf_counter()
    response = await _import(client, keys, LAUGHS)
    assert time.perf_counter() - started < 5  # it stands for 10^9 values
    _refused(response, None, "once aliases expand")


async def test_too_many_aliases_and_self_reference_are_refused(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    many = "x: &x v\n" + "".join(f"k{i}: *x\n" for i in range(300)) + HEAD
    _refused(await _import(client, keys, many), None, "more than 256 aliases")
    looped = HEAD + "terms: &t [*t]\n"
    _refused(await _import(client, keys, looped), None, "refers to a node that contains it")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2020-13-45", "not a valid date"),
        ("2020-02-30", "not a valid date"),
        ("!!float abc", "not a number"),
        ("!!int abc", "not an integer"),
        ("!!bool abc", "not true or false"),
        ("!!timestamp abc", "not a valid date"),
        ("9" * 5000, "out of range"),
        ("-" + "9" * 5000, "out of range"),
        ("!!int " + "9" * 5000, "out of range"),
        ("!unknown x", "unknown tag"),
        ('"a\\0b"', "NUL"),
    ],
    ids=["month-13", "feb-30", "float", "int", "bool", "timestamp", "big", "-big", "big-int",
         "tag", "nul"],
)  # fmt: skip
async def test_a_malformed_scalar_is_a_422_naming_its_field(
    client: httpx.AsyncClient, keys: Keys, demo_yaml: str, value: str, fragment: str
) -> None:
    _refused(await _import(client, keys, f"key: probe\nname: {value}\n"), "name", fragment)
    nested = demo_yaml.replace("band: {low: 0, high: 15}", f"band: {{low: 0, high: {value}}}", 1)
    assert nested != demo_yaml
    _refused(await _import(client, keys, nested), "terms[0].band.high", fragment)


@pytest.mark.parametrize("value", ["1_5", "0x10", "0o17", "1:30", ".inf", "-.inf", ".nan", "+15"])
async def test_yaml_1_1_numbers_are_not_numbers_here(
    client: httpx.AsyncClient, keys: Keys, demo_yaml: str, value: str
) -> None:
    document = demo_yaml.replace("band: {low: 0, high: 15}", f"band: {{low: 0, high: {value}}}")
    response = await _import(client, keys, document)
    if value == "+15":  # unambiguous, as number_text reads it
        assert response.status_code == 201, response.text
        return
    _refused(response, "terms[0].band.high", "number")


async def test_a_duplicate_key_is_a_422_naming_it(
    client: httpx.AsyncClient, keys: Keys, demo_yaml: str
) -> None:
    _refused(await _import(client, keys, "key: probe\nname: a\nname: b\n"), "name", "duplicate key")
    twice = demo_yaml.replace("band: {low: 0, high: 15}", "band: {low: 0, high: 15, high: 40}")
    _refused(await _import(client, keys, twice), "terms[0].band.high", "duplicate key 'high'")


async def test_anchors_and_merges_still_work(
    client: httpx.AsyncClient, keys: Keys, demo_yaml: str
) -> None:
    # A merge brings keys in and the mapping overrides some of them: not a duplicate.
    shared = demo_yaml.replace(
        "band: {low: 0, high: 15}", "band: {<<: &band {low: 0, high: 99}, high: 15}"
    )
    assert shared != demo_yaml
    response = await _import(client, keys, shared)
    assert response.status_code == 201, response.text
    exported = await client.get(
        "/v1/playbooks/standard/versions/1", headers=keys.headers("leadership")
    )
    assert exported.json()["document"]["terms"][0]["band"] == {"low": "0", "high": "15"}


async def test_a_large_import_does_not_hold_other_requests(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    # 300,000 values: composed (the slow part), then refused for its size. Parsed off the event
    # loop, the health probe keeps answering; parsed on it, one wait would last the whole parse.
    big = HEAD + "extra: [" + ", ".join(["1"] * 300_000) + "]\n"
    started = time.perf_counter()
    with pytest.raises(InvalidPlaybook, match="once aliases expand"):
        formats.parse_text(big, "application/yaml")
    parsing = time.perf_counter() - started
    importing = asyncio.create_task(_import(client, keys, big))
    last, longest_wait = time.perf_counter(), 0.0
    while not importing.done():
        assert (await client.get("/healthz")).status_code == 200
        now = time.perf_counter()
        longest_wait, last = max(longest_wait, now - last), now
        await asyncio.sleep(0.001)
    longest_wait = max(longest_wait, time.perf_counter() - last)
    _refused(await importing, None, "once aliases expand")
    # On the loop the longest wait is the whole parse (measured: 0.85 of `parsing` on a busy
    # machine); off it, the probe waits at most for its share of the interpreter.
    assert longest_wait < parsing * 0.6, (longest_wait, parsing)


def test_the_cli_refuses_them_too(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVERNANCE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        bomb = tmp_path / "bomb.yaml"
        bomb.write_text(LAUGHS)
        result = CliRunner().invoke(cli, ["playbook", "import", str(bomb)])
        assert result.exit_code == 2, result.output
        assert "once aliases expand" in result.output
        bad = tmp_path / "bad.yaml"
        bad.write_text("key: probe\nname: 2020-13-45\n")
        result = CliRunner().invoke(cli, ["playbook", "import", str(bad)])
        assert result.exit_code == 2, result.output
        assert "name: '2020-13-45' is not a valid date" in result.output
    finally:
        get_settings.cache_clear()
