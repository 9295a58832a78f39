"""Migrations run up and down, and leave the schema the models describe."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, make_url, text
from tests.conftest import PG_URL

from governance import migrate
from governance.db import Base


@pytest.fixture
def scratch_url(tmp_path: Path) -> Iterator[str]:
    """An empty database of the suite's kind, apart from the one other tests use."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path}/migrations.db"
        return
    name = "governance_migration_test"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def test_up_down_up(scratch_url: str) -> None:
    url = scratch_url
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    migrate.upgrade(url)
    engine = create_engine(url)
    assert {"playbooks", "deals", "audit_log"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_models_match_migrations(scratch_url: str) -> None:
    url = scratch_url
    migrate.upgrade(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    # Server defaults and type spellings differ harmlessly; tables, columns, indexes must not.
    structural = [
        d
        for d in diff
        if d[0]
        in ("add_table", "remove_table", "add_column", "remove_column", "add_index", "remove_index")
    ]
    assert structural == []


def test_audit_log_refuses_updates_and_deletes(scratch_url: str) -> None:
    url = scratch_url
    migrate.upgrade(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_log (occurred_at, actor, actor_role, action, entity_type, entity_id,"
                " created_at, updated_at) VALUES (CURRENT_TIMESTAMP, 'a', 'admin', 'x', 'y', 'z',"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    for statement in ("UPDATE audit_log SET actor = 'b'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    engine.dispose()
