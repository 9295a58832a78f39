"""The worker's loops run apart: a pull held up by the org never delays an SLA reminder, and
every loop's heartbeat shows in the sync status."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import SecretStr
from sqlalchemy import select, update
from tests.conftest import Keys
from tests.driver import opportunity, submit_sample
from tests.salesforce.conftest import MAPPING
from typer.testing import CliRunner

from fake_salesforce import FakeSalesforce
from governance.approvals.models import ApprovalRequest
from governance.cli import app as cli
from governance.db import Database, utcnow
from governance.heartbeats.models import WorkerHeartbeat, WorkerLoop
from governance.salesforce.models import SyncRun
from governance.settings import SalesforceSettings, Settings, get_settings
from governance.worker import run_forever

pytestmark = pytest.mark.usefixtures("demo_published")


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    with FakeSalesforce("59.0") as org:
        yield org
        assert org.internal_errors == []


def worker_settings(settings: Settings, fake: FakeSalesforce, tmp_path: Path) -> Settings:
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(yaml.safe_dump(MAPPING), encoding="utf-8")
    return settings.model_copy(
        update={
            "worker_interval_seconds": 0.05,
            "salesforce": SalesforceSettings(
                login_url=fake.url,
                auth="client_credentials",
                consumer_key=SecretStr("3MVG9-worker"),
                consumer_secret=SecretStr("worker-secret"),
                mapping_file=mapping_file,
                timeout_seconds=120,  # the held query is released by the test, not a timeout
            ),
        }
    )


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll until `condition` holds (a deadline against hanging, not a timing assertion)."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


async def test_a_held_pull_does_not_delay_the_sla_sweep(
    client: httpx.AsyncClient,
    keys: Keys,
    db: Database,
    settings: Settings,
    fake: FakeSalesforce,
    tmp_path: Path,
) -> None:
    (request,) = await submit_sample(client, keys, discount_pct=20)
    with db.unit_of_work() as session:
        session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == request["id"])
            .values(remind_at=utcnow() - timedelta(minutes=1))
        )
    fake.add_opportunities([opportunity(f"Deal {n}") for n in range(3)])
    # The first load's query is held by the org (its delay fault) until the org stops.
    fake.timeout_sleep = 600
    fake.inject("query", "timeout")

    stop = threading.Event()
    worker = threading.Thread(
        target=run_forever,
        args=(db, worker_settings(settings, fake, tmp_path), stop),
        kwargs={"worker": "test-worker"},
    )
    worker.start()
    try:

        def reminded() -> bool:
            with db.unit_of_work() as session:
                found = session.get(ApprovalRequest, request["id"])
                return found is not None and found.reminded_at is not None

        def held() -> bool:
            return any(f.fault == "timeout" for f in fake.fired)

        wait_for(held, "the pull to reach the held query")
        wait_for(reminded, "the SLA reminder")
        # The reminder went out while the first pull was still waiting for its first page.
        with db.unit_of_work() as session:
            pulls = list(session.scalars(select(SyncRun).where(SyncRun.kind == "pull")))
            assert [run.status for run in pulls] == ["running"]
            assert not any(entry.kind == "query" for entry in fake.log)  # no query answered
            beats = {b.loop: b for b in session.scalars(select(WorkerHeartbeat))}
        assert set(beats) == set(WorkerLoop)
        assert beats[WorkerLoop.approvals].passes >= 1
        assert beats[WorkerLoop.pull].pass_at is None  # its first pass is still under way

        status = await client.get("/v1/salesforce/status", headers=keys.headers("integration"))
        assert status.status_code == 200, status.text
        loops = {w["loop"]: w for w in status.json()["workers"]}
        assert set(loops) == {"pull", "push", "approvals", "webhooks"}
        assert {w["worker_id"] for w in loops.values()} == {"test-worker"}
        assert not any(w["stale"] for w in loops.values())
    finally:
        fake.stop()  # releases the held query
        stop.set()
        worker.join(60)
    assert not worker.is_alive()  # every loop stopped, the pull's included


async def test_only_the_loops_asked_for_run(
    db: Database,
    settings: Settings,
    fake: FakeSalesforce,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stop = threading.Event()
    worker = threading.Thread(
        target=run_forever,
        args=(db, worker_settings(settings, fake, tmp_path), stop),
        kwargs={"worker": "approvals-only", "only": [WorkerLoop.approvals]},
    )
    worker.start()

    def beaten() -> bool:
        with db.unit_of_work() as session:
            row = session.get(WorkerHeartbeat, (WorkerLoop.approvals, "approvals-only"))
            return row is not None and row.passes >= 2

    try:
        wait_for(beaten, "two approvals passes")
    finally:
        stop.set()
        worker.join(60)
    with db.unit_of_work() as session:
        assert [b.loop for b in session.scalars(select(WorkerHeartbeat))] == ["approvals"]
    assert fake.calls["total"] == 0  # neither pull nor push ran

    monkeypatch.setenv("GOVERNANCE_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        shown = CliRunner().invoke(cli, ["sync", "status"])
        refused = CliRunner().invoke(cli, ["worker", "--only", "sweeps"])
    finally:
        get_settings.cache_clear()
    assert shown.exit_code == 0, shown.output
    assert "worker approvals-only approvals: beat " in shown.output
    assert refused.exit_code == 2
    assert "'sweeps' is not one of" in refused.output
