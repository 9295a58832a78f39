"""Shared fixtures: a migrated database per test (SQLite file copy, or truncated PostgreSQL),
the app over ASGI, one API key per role, and a clock for the worker side that a test moves."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import respx
from fastapi import FastAPI
from sqlalchemy import create_engine, make_url, text

from governance import migrate
from governance.app import create_app
from governance.approvals import service as approval_service
from governance.approvals.models import ApprovalGroup
from governance.approvals.repository import ApprovalRepository
from governance.auth import service as auth_service
from governance.auth.principal import SYSTEM
from governance.auth.schemas import ApiKeyCreate, Role
from governance.db import Base, Database, utcnow
from governance.playbooks.registry import PlaybookRegistry
from governance.settings import Settings


def _suite_database(url: str | None) -> str | None:
    """The PostgreSQL database this test process uses: the one named, or under pytest-xdist one
    per worker beside it (`test_gw0`, `test_gw1`), created on first use, so workers never
    truncate each other's rows."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    base = make_url(url)
    name = f"{base.database}_{worker}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        ).first()
        if exists is None:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


PG_URL = _suite_database(os.environ.get("GOVERNANCE_TEST_DATABASE_URL"))
DEMO = Path(__file__).resolve().parents[1] / "src" / "governance" / "demo" / "standard.yaml"


def pytest_report_header() -> str:
    return f"database: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite (per-test file)'}"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Run every migration once per session: on PostgreSQL from base, on SQLite into a template."""
    if PG_URL:
        engine = create_engine(PG_URL)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        migrate.upgrade(PG_URL)
        return PG_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return str(path)


def truncate_all(url: str) -> None:
    """Empty every table of a PostgreSQL test database.

    The audit log refuses TRUNCATE (it is evidence); a test database sets that trigger aside for
    this one transaction, as only the table's owner can.
    """
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_truncate"))
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        connection.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_truncate"))
    engine.dispose()


@pytest.fixture
def scratch_url(tmp_path: Path) -> Iterator[str]:
    """An empty database of the suite's kind, apart from the one other tests use."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path}/migrations.db"
        return
    # Named after the suite's database, so suites run at once on one server (each with its own
    # database) do not drop each other's scratch database.
    name = f"{make_url(PG_URL).database}_scratch"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def database_url(migrated_template: str, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database for one test."""
    if PG_URL:
        yield PG_URL
        truncate_all(PG_URL)
        return
    path = tmp_path / "test.db"
    shutil.copyfile(migrated_template, path)
    yield f"sqlite:///{path}"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, db_pool_size=5)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    yield database
    database.dispose()


@pytest.fixture
def registry(db: Database) -> PlaybookRegistry:
    """The playbook registry the worker and the sync use, without a cache."""
    return PlaybookRegistry(db, 0)


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    application = create_app(settings)
    yield application
    application.state.db.dispose()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


class Keys:
    """Secrets of keys created for a test, with helpers to build auth headers."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.secrets: dict[str, str] = {}

    def create(self, name: str, role: Role, groups: list[str] | None = None) -> str:
        """A key; its groups are created first when no playbook names them yet, as an admin
        would with `PUT /v1/approval-groups/{group}` (keys may only join existing groups)."""
        with self.db.unit_of_work() as session:
            known = approval_service.known_groups(session)
            repo = ApprovalRepository(session)
            for group in groups or []:
                if group not in known:
                    repo.add_group(ApprovalGroup(name=group))
            _key, secret = auth_service.create_key(
                session,
                SYSTEM,
                ApiKeyCreate(name=name, role=role, groups=groups or []),
                groups=approval_service.known_groups,
            )
        self.secrets[name] = secret
        return secret

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[name]}"}


@pytest.fixture
def keys(db: Database) -> Keys:
    """One key per role (named after it), plus approvers for the demo playbook's owner groups."""
    made = Keys(db)
    for role in Role:
        made.create(role.value, role, ["finance"] if role is Role.approver else None)
    for group in ("finance", "legal", "sales", "product", "security"):
        made.create(f"approver_{group}", Role.approver, [group])
    return made


async def request_etag(client: httpx.AsyncClient, keys: Keys, who: str, request_id: int) -> str:
    """The approval request's ETag, as a decider reads it before deciding (If-Match)."""
    response = await client.get(f"/v1/approvals/{request_id}", headers=keys.headers(who))
    assert response.status_code == 200, response.text
    return response.headers["ETag"]


@pytest.fixture
def people(keys: Keys, demo_published: None) -> Keys:
    """The demo playbook published, and Sam for the sales directors (the one group of its
    ladders the `keys` fixture has no approver for). A file with a cast of its own overrides it."""
    keys.create("sam", Role.approver, ["sales_director"])
    return keys


@pytest.fixture
def webhook() -> Iterator[respx.MockRouter]:
    """Every outbound httpx request is mocked; an unexpected one fails the test."""
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def http(webhook: respx.MockRouter) -> Iterator[httpx.Client]:
    """The client the worker posts webhooks with, into `webhook`'s mocks."""
    with httpx.Client(timeout=5) as client:
        yield client


@pytest.fixture
def demo_yaml() -> str:
    return DEMO.read_text(encoding="utf-8")


@pytest.fixture
async def demo_published(client: httpx.AsyncClient, keys: Keys, demo_yaml: str) -> None:
    """The demo playbook, imported and published by an admin."""
    response = await client.post(
        "/v1/playbooks/import?publish=true",
        content=demo_yaml,
        headers={**keys.headers("admin"), "Content-Type": "application/yaml"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "published"


class ManualClock:
    """A clock that stands still until the test moves it: pass it as `clock=` to the push, the
    pull or a worker pass instead of sleeping until a pause or a backoff runs out."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def move_to(self, moment: datetime) -> None:
        """Go forward to `moment` (a clock never goes back)."""
        self.now = max(self.now, moment)


@pytest.fixture
def clock() -> ManualClock:
    """The worker's clock, an hour after the wall clock: every row the app stamps (by the wall
    clock) while the test runs is due to it, and what it schedules stays in its own future."""
    return ManualClock(utcnow() + timedelta(hours=1))
