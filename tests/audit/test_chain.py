"""The audit log's hash chain: every entry is chained to the one before, and `governance audit
verify` finds the first link someone rewrote, removed or reordered behind the service's back."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx
import pytest
from sqlalchemy import text
from tests.conftest import Keys
from typer.testing import CliRunner

from governance.audit import chain
from governance.audit import service as audit_service
from governance.auth.principal import SYSTEM
from governance.cli import app
from governance.db import Database
from governance.settings import get_settings

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("GOVERNANCE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def verify() -> tuple[int, str]:
    result = runner.invoke(app, ["audit", "verify"])
    return result.exit_code, result.output.strip()


def tamper(db: Database, *statements: str) -> None:
    """What a database owner could do: set the append-only triggers aside and rewrite."""
    with db.unit_of_work() as session:
        if db.is_sqlite:
            for verb in ("update", "delete"):
                session.execute(text(f"DROP TRIGGER audit_log_no_{verb}"))
        else:
            session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        for statement in statements:
            session.execute(text(statement))


async def some_history(client: httpx.AsyncClient, keys: Keys, demo_yaml: str) -> int:
    """A few entries through the API; how many the log holds."""
    imported = await client.post(
        "/v1/playbooks/import?publish=true",
        content=demo_yaml,
        headers={**keys.headers("admin"), "Content-Type": "application/yaml"},
    )
    assert imported.status_code == 201, imported.text
    for group in ("deal_desk", "cfo"):
        await client.put(
            f"/v1/approval-groups/{group}", json={"sla_hours": 4}, headers=keys.headers("admin")
        )
    listed = await client.get("/v1/audit", params={"limit": 500}, headers=keys.headers("admin"))
    count = len(listed.json()["items"])
    assert count > 20
    return count


async def test_entries_are_chained_and_verify(
    client: httpx.AsyncClient, keys: Keys, demo_yaml: str, env: str
) -> None:
    count = await some_history(client, keys, demo_yaml)
    listed = await client.get("/v1/audit", params={"limit": 500}, headers=keys.headers("admin"))
    entries = list(reversed(listed.json()["items"]))
    assert [e["id"] for e in entries] == list(range(1, count + 1))
    previous = chain.GENESIS
    for entry in entries:
        assert entry["prev_hash"] == previous
        # Anyone with the log can recompute it: the content, the time parsed.
        content = entry | {"occurred_at": datetime.fromisoformat(entry["occurred_at"])}
        assert entry["entry_hash"] == chain.link(previous, content)
        previous = entry["entry_hash"]
    assert verify() == (0, f"ok, {count} entries")


async def test_verify_names_the_first_rewritten_entry(
    client: httpx.AsyncClient, keys: Keys, demo_yaml: str, env: str, db: Database
) -> None:
    count = await some_history(client, keys, demo_yaml)
    tamper(db, "UPDATE audit_log SET actor = 'someone-else' WHERE id = 7")
    code, output = verify()
    assert code == 1
    assert output.startswith("broken at entry 7: its content does not match its hash")
    assert f"{count}" not in output


async def test_verify_names_the_link_after_a_removed_entry(
    client: httpx.AsyncClient, keys: Keys, demo_yaml: str, env: str, db: Database
) -> None:
    await some_history(client, keys, demo_yaml)
    tamper(db, "DELETE FROM audit_log WHERE id = 5")
    code, output = verify()
    assert code == 1
    assert output.startswith("broken at entry 6: its prev_hash is not the hash of the entry")


async def test_verify_notices_the_last_entries_removed(
    client: httpx.AsyncClient, keys: Keys, demo_yaml: str, env: str, db: Database
) -> None:
    count = await some_history(client, keys, demo_yaml)
    tamper(db, f"DELETE FROM audit_log WHERE id > {count - 2}")
    code, output = verify()
    assert code == 1
    assert f"the log ends at entry {count - 2}" in output


def test_concurrent_writers_extend_one_chain(db: Database, env: str) -> None:
    """Entries from transactions committing at once join the chain one after another."""

    def write(n: int) -> None:
        for i in range(5):
            with db.unit_of_work() as session:
                audit_service.record(session, SYSTEM, "test.wrote", "test", f"{n}-{i}")
                audit_service.record(session, SYSTEM, "test.wrote", "test", f"{n}-{i}-b")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))
    assert verify() == (0, "ok, 80 entries")
    with db.unit_of_work() as session:
        report = audit_service.verify(session)
        ids = session.execute(text("SELECT id FROM audit_log ORDER BY id")).scalars().all()
    assert report == audit_service.ChainReport(80)
    assert ids == list(range(1, 81))


def test_a_rolled_back_transaction_leaves_no_entry(db: Database, env: str) -> None:
    def failing_change() -> None:
        with db.unit_of_work() as session:
            audit_service.record(session, SYSTEM, "test.wrote", "test", "lost")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    with db.unit_of_work() as session:
        audit_service.record(session, SYSTEM, "test.wrote", "test", "kept")
    assert verify() == (0, "ok, 1 entries")
