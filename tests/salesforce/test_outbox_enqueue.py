"""What Salesforce must see is queued by the code that changes it, in its own transaction, in
every process: the served app, the worker and the CLI. No import-time hook decides it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests import driver
from tests.conftest import Keys
from tests.driver import EMEA_ENTERPRISE, deal_body
from tests.salesforce.conftest import CONSUMER_KEY, CONSUMER_SECRET
from typer.testing import CliRunner

from fake_salesforce import FakeSalesforce
from governance.cli import app as cli
from governance.db import Database, utcnow
from governance.deals.models import Deal
from governance.playbooks.registry import PlaybookRegistry
from governance.salesforce.models import OutboxItem
from governance.settings import Settings, get_settings
from governance.worker import run_once

pytestmark = pytest.mark.usefixtures("demo_published")

DEAL = "0065g00000OutBxAAA"
TERMS = {"contract_months": 12, "discount_pct": "20"}  # the sales director approves 20%


def versions(db: Database) -> dict[str, int]:
    """Each queued deal's outbox version (it grows by one per queued change)."""
    with db.unit_of_work() as session:
        rows = session.execute(
            select(Deal.external_id, OutboxItem.version).join(
                OutboxItem, OutboxItem.deal_id == Deal.id
            )
        ).all()
    return {str(external_id): int(version) for external_id, version in rows}


async def put_deal(client: httpx.AsyncClient, keys: Keys, **terms: object) -> None:
    body = deal_body("Outbox Corp", EMEA_ENTERPRISE, {**TERMS, **terms})
    await driver.put_deal(client, keys, DEAL, body)


async def test_the_served_app_queues_a_stored_check_a_status_and_an_outcome(
    client: httpx.AsyncClient, keys: Keys, db: Database
) -> None:
    await put_deal(client, keys)
    assert versions(db) == {}  # a stored draft with no check: Salesforce has nothing new

    checked = await client.post(f"/v1/deals/{DEAL}/checks", headers=keys.headers("rep"))
    assert checked.status_code == 201, checked.text
    assert versions(db) == {DEAL: 1}  # a stored check: verdict and variance

    again = await client.post(f"/v1/deals/{DEAL}/checks", headers=keys.headers("rep"))
    assert again.status_code == 201
    assert versions(db) == {DEAL: 1}  # the same verdict and variance: nothing new to show

    submitted = await client.post(f"/v1/deals/{DEAL}/submit", headers=keys.headers("rep"))
    assert submitted.status_code == 200, submitted.text
    assert versions(db)[DEAL] == 2  # in review, with its approvers

    (request,) = submitted.json()["requests"]
    decided = await client.post(
        f"/v1/approvals/{request['id']}/decision",
        json={"decision": "approve"},
        headers={**keys.headers("admin"), "If-Match": f'"{request["version"]}"'},
    )
    assert decided.status_code == 200, decided.text
    assert versions(db)[DEAL] == 3  # approved

    closed = await client.post(
        f"/v1/deals/{DEAL}/outcome",
        json={"won": True, "close_date": "2026-11-30"},
        headers=keys.headers("rep"),
    )
    assert closed.status_code == 201, closed.text
    assert versions(db)[DEAL] == 4  # won


async def test_the_worker_queues_an_escalation(
    client: httpx.AsyncClient,
    keys: Keys,
    db: Database,
    settings: Settings,
) -> None:
    await put_deal(client, keys)
    submitted = await client.post(f"/v1/deals/{DEAL}/submit", headers=keys.headers("rep"))
    assert submitted.status_code == 200, submitted.text
    (request,) = submitted.json()["requests"]
    queued = versions(db)[DEAL]

    # The SLA passed: the worker moves the request to the next tier's group, and Salesforce
    # must show who holds it now.
    from governance.approvals.models import ApprovalRequest

    with db.unit_of_work() as session:
        row = session.get(ApprovalRequest, request["id"])
        assert row is not None
        row.due_at = utcnow() - timedelta(minutes=1)
    report = run_once(db, PlaybookRegistry(db, 0), settings)
    assert report.escalated == 1
    assert versions(db)[DEAL] == queued + 1


@pytest.fixture
def cli_env(
    settings: Settings, fake: FakeSalesforce, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    sf = settings.salesforce
    assert sf.mapping_file is not None
    for name, value in {
        "DATABASE_URL": settings.database_url,
        "SALESFORCE__LOGIN_URL": sf.login_url,
        "SALESFORCE__AUTH": "password",
        "SALESFORCE__CONSUMER_KEY": CONSUMER_KEY,
        "SALESFORCE__CONSUMER_SECRET": CONSUMER_SECRET,
        "SALESFORCE__USERNAME": "sync@example.com",
        "SALESFORCE__PASSWORD": "pw",
        "SALESFORCE__SECURITY_TOKEN": "tok",
        "SALESFORCE__MAPPING_FILE": str(sf.mapping_file),
    }.items():
        monkeypatch.setenv(f"GOVERNANCE_{name}", value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("cli_env")
def test_the_cli_pull_queues_checks_and_deletions(fake: FakeSalesforce, db: Database) -> None:
    kept, deleted = fake.add_opportunities(
        [
            {
                "Name": name,
                "StageName": "Prospecting",
                "Amount": 50000,
                "Discount__c": 5,
                "Contract_Months__c": 12,
            }
            for name in ("Kept", "Deleted")
        ]
    )
    pulled = CliRunner().invoke(cli, ["sync", "pull"])
    assert pulled.exit_code == 0, pulled.output
    assert versions(db) == {kept: 1, deleted: 1}  # each pulled deal's first check

    fake.delete_opportunity(deleted)
    pulled = CliRunner().invoke(cli, ["sync", "pull"])
    assert pulled.exit_code == 0, pulled.output
    assert versions(db) == {kept: 1, deleted: 2}  # the deletion withdraws what Salesforce shows


def test_importing_the_app_installs_no_orm_event_listener() -> None:
    # The outbox used to depend on an `after_flush` listener installed on the global Session
    # class at import time; whether a change reached Salesforce depended on what was imported.
    probe = (
        "from sqlalchemy.orm import Session\n"
        "import governance.app, governance.cli, governance.worker\n"
        "from governance.salesforce import inbound, outbound\n"
        "names = ('after_flush', 'before_flush', 'after_commit', 'before_commit')\n"
        "print(sum(len(getattr(Session().dispatch, n)) for n in names))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "0"
