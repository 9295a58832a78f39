"""`governance worker`: the command's pass sweeps the SLAs and posts the webhooks it queued."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from tests.conftest import DEMO, Keys
from tests.driver import configure_group, submit_sample

from governance.app import create_app
from governance.approvals.models import ApprovalRequest
from governance.auth.schemas import Role
from governance.db import utcnow
from governance.settings import Settings


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append((self.path, json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def loopback_hook() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    received: list[tuple[str, dict[str, Any]]] = []
    handler = type("Hook", (_Hook,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/T000/B000/XXXX", received
    finally:
        server.shutdown()
        server.server_close()


async def test_the_worker_command_runs_one_pass(
    tmp_path: Path, loopback_hook: tuple[str, list[tuple[str, dict[str, Any]]]]
) -> None:
    url, received = loopback_hook
    database_url = f"sqlite:///{tmp_path}/worker.db"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    # A receiver on loopback over plain http: allowed by name, in development only.
    env.update(
        GOVERNANCE_DATABASE_URL=database_url,
        GOVERNANCE_LOG_LEVEL="INFO",
        GOVERNANCE_ENVIRONMENT="development",
        GOVERNANCE_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
    )
    governance = str(Path(sys.executable).with_name("governance"))
    subprocess.run([governance, "migrate"], env=env, check=True, capture_output=True)

    # A request whose reminder is due, for a group with a webhook.
    app = create_app(
        Settings(
            database_url=database_url,
            environment="development",
            webhook_allowed_hosts=["127.0.0.1"],
        )
    )
    db = app.state.db
    keys = Keys(db)
    keys.create("admin", Role.admin)
    keys.create("rep", Role.rep)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        imported = await client.post(
            "/v1/playbooks/import?publish=true",
            content=DEMO.read_text(encoding="utf-8"),
            headers={**keys.headers("admin"), "Content-Type": "application/yaml"},
        )
        assert imported.status_code == 201, imported.text
        await configure_group(client, keys, "sales_director", webhook_url=url, sla_hours=4)
        (request,) = await submit_sample(client, keys, discount_pct=20)
    with db.unit_of_work() as session:
        session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == request["id"])
            .values(remind_at=utcnow() - timedelta(minutes=1))
        )
    db.dispose()

    done = subprocess.run(
        [governance, "worker", "--once"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "reminded 1, escalated 0" in done.stdout
    assert "sent 2, retried 0, dead 0" in done.stdout
    assert [(path, body["event"]) for path, body in received] == [
        ("/T000/B000/XXXX", "approval.requested"),
        ("/T000/B000/XXXX", "approval.reminder"),
    ]
    assert "XXXX" not in done.stdout + done.stderr
