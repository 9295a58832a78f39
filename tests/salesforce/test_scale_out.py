"""Scale-out: two API processes and two workers on one PostgreSQL database run the round trip
(pull, edits, checks, submissions, decisions, push) while the org injects faults. Every change
reaches Salesforce once, every webhook is posted once, and nothing deadlocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from tests.conftest import PG_URL, Keys
from tests.driver import opportunity
from tests.salesforce.conftest import CONSUMER_KEY, CONSUMER_SECRET
from tests.served import free_port, wait_until_up

from fake_salesforce import FakeSalesforce
from governance.approvals.models import ApprovalRequest
from governance.auth.schemas import Role
from governance.db import Database
from governance.deals.models import Deal
from governance.notifications.models import Notification
from governance.salesforce.models import OutboxItem

pytestmark = [
    pytest.mark.usefixtures("demo_published"),
    pytest.mark.skipif(not PG_URL, reason="several processes on one database need PostgreSQL"),
]
GOVERNANCE = str(Path(sys.executable).with_name("governance"))
DEALS = 10


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on loopback that keeps every body posted to it."""
    received: list[dict[str, Any]] = []
    lock = threading.Lock()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                received.append(body)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/T000/B000/XXXX", received
    finally:
        server.shutdown()
        server.server_close()


def wait_for(
    condition: Callable[[], bool], what: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Poll until `condition` holds (a deadline against hanging, not a timing assertion)."""
    deadline = time.monotonic() + 90
    while not condition():
        assert all(p.poll() is None for p in processes), f"a process died waiting for {what}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


async def test_two_apis_and_two_workers_round_trip(
    database_url: str,
    db: Database,
    keys: Keys,
    fake: FakeSalesforce,
    mapping_file: Path,
    hook: tuple[str, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    hook_url, received = hook
    keys.create("sam", Role.approver, ["sales_director"])
    ids = fake.add_opportunities(
        [
            opportunity(f"Deal {n}", Discount__c=20, Submit_For_Approval__c=True)
            if n % 2
            else opportunity(f"Deal {n}")
            for n in range(DEALS)
        ]
    )
    # Faults: several pages, one dropped page, an expired session, a 503 on a push.
    fake.batch_size = 4
    fake.inject("query_more", "disconnect")
    fake.inject("query", "INVALID_SESSION_ID", after=2)
    fake.inject("collections", 503)

    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_")}
    env.update(
        GOVERNANCE_DATABASE_URL=database_url,
        GOVERNANCE_ENVIRONMENT="development",
        GOVERNANCE_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
        GOVERNANCE_WORKER_INTERVAL_SECONDS="0.1",
        GOVERNANCE_LOG_LEVEL="INFO",
        GOVERNANCE_SALESFORCE__LOGIN_URL=fake.url,
        GOVERNANCE_SALESFORCE__AUTH="client_credentials",
        GOVERNANCE_SALESFORCE__CONSUMER_KEY=CONSUMER_KEY,
        GOVERNANCE_SALESFORCE__CONSUMER_SECRET=CONSUMER_SECRET,
        GOVERNANCE_SALESFORCE__MAPPING_FILE=str(mapping_file),
        GOVERNANCE_SALESFORCE__PULL_INTERVAL_SECONDS="0.3",
        GOVERNANCE_SALESFORCE__OVERLAP_SECONDS="5",
        GOVERNANCE_SALESFORCE__RETRY_BASE_SECONDS="0.2",
        GOVERNANCE_SALESFORCE__RETRY_CAP_SECONDS="0.5",
        GOVERNANCE_SALESFORCE__TIMEOUT_SECONDS="10",
        PYTHONUNBUFFERED="1",
    )
    ports = [free_port(), free_port()]
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []

    def start(name: str, *args: str, **extra: str) -> None:
        log = tmp_path / f"{name}.log"
        logs.append(log)
        with log.open("wb") as sink:
            processes.append(
                subprocess.Popen(
                    [GOVERNANCE, *args],
                    env={**env, **extra},
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            )

    try:
        for n, port in enumerate(ports):
            start(f"api{n}", "serve", GOVERNANCE_PORT=str(port))
        for port in ports:
            wait_until_up(port)
        apis = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) for port in ports]
        configured = apis[0].put(
            "/v1/approval-groups/sales_director",
            json={"webhook_url": hook_url},
            headers=keys.headers("admin"),
        )
        assert configured.status_code in (200, 201), configured.text
        start("worker0", "worker")
        start("worker1", "worker")

        # 1. The pull: every opportunity a deal, the ticked ones submitted.
        def pulled() -> bool:
            with db.unit_of_work() as session:
                deals = session.scalar(select(func.count()).select_from(Deal)) or 0
                pending = session.scalar(
                    select(func.count())
                    .select_from(ApprovalRequest)
                    .where(ApprovalRequest.status == "pending")
                )
            return deals == DEALS and pending == DEALS // 2

        wait_for(pulled, "the first pull", processes)

        # 2. Reps edit three unsubmitted opportunities; approvers decide through both APIs.
        for opportunity_id in ids[0:6:2]:
            fake.update_opportunity(opportunity_id, {"Discount__c": 16})
        with db.unit_of_work() as session:
            requests = list(
                session.scalars(
                    select(ApprovalRequest.id).where(ApprovalRequest.status == "pending")
                )
            )
        for n, request_id in enumerate(requests):
            api = apis[n % 2]
            read = api.get(f"/v1/approvals/{request_id}", headers=keys.headers("sam"))
            assert read.status_code == 200, read.text
            decided = apis[(n + 1) % 2].post(
                f"/v1/approvals/{request_id}/decision",
                json={"decision": "approve"},
                headers={**keys.headers("sam"), "If-Match": read.headers["ETag"]},
            )
            assert decided.status_code == 200, decided.text

        # 3. Everything reaches Salesforce and the webhooks: the org shows the database.
        def settled() -> bool:
            with db.unit_of_work() as session:
                if session.scalar(select(func.count()).select_from(OutboxItem)):
                    return False
                if session.scalar(
                    select(func.count())
                    .select_from(Notification)
                    .where(Notification.status != "sent")
                ):
                    return False
                deals = list(session.scalars(select(Deal)))
            return all(
                fake.get(d.external_id).get("Governance_Approval_Status__c") == d.status
                and fake.get(d.external_id).get("Governance_Status__c") == d.last_verdict
                for d in deals
            ) and any(d.terms.get("discount_pct") == "16" for d in deals)

        wait_for(settled, "the org and the webhooks to show every change", processes)
        alive = [p.poll() is None for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    output = "\n".join(log.read_text(encoding="utf-8", errors="replace") for log in logs)
    assert alive == [True] * 4, output[-3000:]
    assert "deadlock" not in output.lower()

    # Every change pushed once: no record was written twice in a row with the same values.
    writes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record_id, values in fake.writes:
        writes[record_id].append(values)
    assert set(writes) == set(ids)
    repeated = {
        record_id: seq for record_id, seq in writes.items() if any(a == b for a, b in pairwise(seq))
    }
    assert repeated == {}
    assert sorted(f.fault for f in fake.fired) == ["503", "INVALID_SESSION_ID", "disconnect"]

    # Every webhook posted once: one post per notification, none twice.
    with db.unit_of_work() as session:
        notifications = session.scalar(select(func.count()).select_from(Notification))
    bodies = [json.dumps(body, sort_keys=True) for body in received]
    assert len(bodies) == len(set(bodies)) == notifications
    assert notifications is not None
    assert notifications >= DEALS // 2 * 2  # requested and decided
