"""The audit log: append-only in the database itself, and read through `GET /v1/audit`.

What each domain records there is tested with the domain (deals, playbooks, approvals, …)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import create_engine, text
from tests.conftest import Keys

from governance import migrate

INSERT_ENTRY = (
    "INSERT INTO audit_log (id, occurred_at, actor, actor_role, action, entity_type, entity_id,"
    " created_at, updated_at, prev_hash, entry_hash) VALUES (:id, CURRENT_TIMESTAMP, :actor,"
    " 'admin', 'x', 'y', 'z', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'p', 'h')"
)


def test_audit_log_refuses_updates_deletes_truncation_and_replacement(scratch_url: str) -> None:
    url = scratch_url
    migrate.upgrade(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(INSERT_ENTRY), {"id": 1, "actor": "a"})
    refused = ["UPDATE audit_log SET actor = 'b'", "DELETE FROM audit_log"]
    if engine.dialect.name == "postgresql":
        refused += ["TRUNCATE audit_log", "TRUNCATE audit_log CASCADE"]
    else:
        refused += [
            INSERT_ENTRY.replace("INSERT", "INSERT OR REPLACE"),
            "REPLACE" + INSERT_ENTRY[6:],
        ]
    for statement in refused:
        with pytest.raises(Exception, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement), {"id": 1, "actor": "rewritten"})
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id, actor FROM audit_log")).all() == [(1, "a")]
    engine.dispose()


@pytest.mark.usefixtures("demo_published")
async def test_dates_without_a_utc_equivalent_are_422(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    response = await client.get(
        "/v1/audit", params={"since": "0001-01-01T00:00:00+01:00"}, headers=keys.headers("admin")
    )
    assert response.status_code == 422
