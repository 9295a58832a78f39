"""The worker: webhook posts from the outbox, reminders at half the SLA, escalation when overdue.

Requests are made through the HTTP API; the worker is run one pass at a time with
`worker.run_once`, and the SLA sweep with an explicit `now` to travel in time. Webhooks are
mocked with respx; nothing sleeps.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import select, update
from tests.conftest import DEMO, Keys, request_etag

from governance.app import create_app
from governance.approvals import service as approval_service
from governance.approvals.models import ApprovalRequest
from governance.auth.schemas import Role
from governance.db import Database, utcnow
from governance.notifications.models import Notification
from governance.playbooks.registry import PlaybookRegistry
from governance.settings import Settings
from governance.worker import PassReport, run_once

HOOK = "https://hooks.example.com/T000/B000/XXXX"
FINANCE_HOOK = "https://hooks.example.com/T000/B111/YYYY"
SECRET_PARTS = ("T000", "B000", "XXXX", "B111", "YYYY")
DEAL = "0065g00000WorkerA1"


@pytest.fixture
def registry(db: Database) -> PlaybookRegistry:
    return PlaybookRegistry(db, 0)


@pytest.fixture
def people(keys: Keys, demo_published: None) -> Keys:
    """The demo playbook published, and Sam for the sales directors."""
    keys.create("sam", Role.approver, ["sales_director"])
    return keys


@pytest.fixture
def webhook() -> Iterator[respx.MockRouter]:
    """Every outbound httpx request is mocked; an unexpected one fails the test."""
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def http(webhook: respx.MockRouter) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


async def configure(
    client: httpx.AsyncClient, keys: Keys, group: str, **body: object
) -> httpx.Response:
    response = await client.put(
        f"/v1/approval-groups/{group}", json=body, headers=keys.headers("admin")
    )
    assert response.status_code in (200, 201), response.text
    return response


async def submit(
    client: httpx.AsyncClient, keys: Keys, external_id: str = DEAL, **terms: object
) -> list[dict[str, Any]]:
    created = await client.put(
        f"/v1/deals/{external_id}",
        json={
            "name": "Initech platform",
            "attributes": {"region": "EMEA", "segment": "enterprise", "amount": "120000"},
            "terms": {"contract_months": 12, **terms},
        },
        headers=keys.headers("rep"),
    )
    assert created.status_code == 201, created.text
    submitted = await client.post(f"/v1/deals/{external_id}/submit", headers=keys.headers("rep"))
    assert submitted.status_code == 200, submitted.text
    requests: list[dict[str, Any]] = submitted.json()["requests"]
    return requests


async def read(client: httpx.AsyncClient, keys: Keys, request_id: int) -> dict[str, Any]:
    response = await client.get(f"/v1/approvals/{request_id}", headers=keys.headers("admin"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def queue_ids(client: httpx.AsyncClient, keys: Keys, who: str) -> list[int]:
    response = await client.get("/v1/approvals", headers=keys.headers(who))
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["items"]]


async def audit(
    client: httpx.AsyncClient, keys: Keys, action: str, request_id: int
) -> list[dict[str, Any]]:
    response = await client.get(
        "/v1/audit",
        params={"action": action, "entity_id": str(request_id)},
        headers=keys.headers("admin"),
    )
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def outbox(db: Database) -> list[dict[str, Any]]:
    with db.unit_of_work() as session:
        rows = session.scalars(select(Notification).order_by(Notification.id)).all()
        return [
            {
                "id": r.id,
                "event": r.event,
                "group": r.group,
                "status": r.status,
                "attempts": r.attempts,
                "next_attempt_at": r.next_attempt_at,
                "last_error": r.last_error,
            }
            for r in rows
        ]


def make_due(db: Database) -> None:
    """Time passes until every pending notification may be tried again."""
    with db.unit_of_work() as session:
        session.execute(
            update(Notification)
            .where(Notification.status == "pending")
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


def sweep(
    db: Database, registry: PlaybookRegistry, settings: Settings, now: datetime
) -> approval_service.SweepReport:
    with db.unit_of_work() as session:
        return approval_service.sweep(session, registry, settings, now=now)


def opened_at(request: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(request["opened_at"])


def posted(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


# --- posting ---------------------------------------------------------------------------------


async def test_a_new_request_is_posted_by_the_worker_not_during_the_request(
    client: httpx.AsyncClient,
    people: Keys,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    webhook: respx.MockRouter,
    http: httpx.Client,
) -> None:
    route = webhook.post(HOOK).respond(200, text="ok")
    await configure(client, people, "sales_director", webhook_url=HOOK, sla_hours=4)
    # Legal has no webhook: its request is queued for no one.
    requests = await submit(client, people, discount_pct=20, liability_cap_multiple="1.5")
    (sd,) = [r for r in requests if r["group"] == "sales_director"]
    assert not webhook.calls
    assert [(n["event"], n["group"], n["status"]) for n in outbox(db)] == [
        ("approval.requested", "sales_director", "pending")
    ]

    report = run_once(db, registry, settings, client=http)
    assert report == PassReport(sent=1)
    (body,) = posted(route)
    assert route.calls[0].request.headers["content-type"] == "application/json"
    link = f"{settings.public_url}/v1/approvals/{sd['id']}"
    assert body["event"] == "approval.requested"
    assert body["text"].startswith("Approval requested for sales_director (step 1): Initech")
    assert "Discount off list price: 20 %" in body["text"]
    assert link in body["text"]
    assert [b["type"] for b in body["blocks"]] == ["section", "section", "context"]
    assert link in body["blocks"][-1]["elements"][0]["text"]
    assert body["deal"] == {"external_id": DEAL, "name": "Initech platform", "status": "in_review"}
    assert body["request"]["terms"] == [{"key": "discount_pct", "value": "20"}]
    assert body["request"]["id"] == sd["id"]
    assert body["link"] == link
    (sent,) = outbox(db)
    assert (sent["status"], sent["attempts"], sent["last_error"]) == ("sent", 1, None)

    # Sent once: the next pass posts nothing.
    assert run_once(db, registry, settings, client=http) == PassReport()
    assert route.call_count == 1


async def test_decisions_are_posted_too(
    client: httpx.AsyncClient,
    people: Keys,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    webhook: respx.MockRouter,
    http: httpx.Client,
) -> None:
    route = webhook.post(HOOK).respond(200)
    await configure(client, people, "sales_director", webhook_url=HOOK)
    (request,) = await submit(client, people, discount_pct=20)
    decided = await client.post(
        f"/v1/approvals/{request['id']}/decision",
        json={"decision": "reject", "reason": "Margin too thin"},
        headers={**people.headers("sam"), "If-Match": f'"{request["version"]}"'},
    )
    assert decided.status_code == 200, decided.text
    assert not webhook.calls
    assert run_once(db, registry, settings, client=http).sent == 2
    requested, rejected = posted(route)
    assert requested["event"] == "approval.requested"
    assert rejected["event"] == "approval.decided"
    assert rejected["text"].startswith("Approval rejected for sales_director")
    assert "Margin too thin" in rejected["text"]
    assert rejected["deal"]["status"] == "rejected"


async def test_a_failing_webhook_is_retried_with_backoff_then_parked_as_dead(
    client: httpx.AsyncClient,
    people: Keys,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    webhook: respx.MockRouter,
    http: httpx.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)  # what `governance worker` logs by default
    settings = settings.model_copy(update={"notify_max_attempts": 3})
    route = webhook.post(HOOK).respond(500, text="invalid_payload")
    await configure(client, people, "sales_director", webhook_url=HOOK)
    await submit(client, people, discount_pct=20)

    before = utcnow()
    assert run_once(db, registry, settings, client=http) == PassReport(retried=1)
    (row,) = outbox(db)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert row["last_error"] == "HTTP 500: invalid_payload"
    # Tried again later, not at once, and not on the next pass.
    assert row["next_attempt_at"] >= before + timedelta(seconds=15)
    assert run_once(db, registry, settings, client=http) == PassReport()
    assert route.call_count == 1

    route.side_effect = httpx.ReadTimeout("timed out")
    make_due(db)
    before = utcnow()
    assert run_once(db, registry, settings, client=http) == PassReport(retried=1)
    (row,) = outbox(db)
    assert (row["status"], row["attempts"], row["last_error"]) == ("pending", 2, "timed out")
    assert row["next_attempt_at"] >= before + timedelta(seconds=30)  # backing off further

    route.side_effect = httpx.ConnectError("connection refused")
    make_due(db)
    assert run_once(db, registry, settings, client=http) == PassReport(dead=1)
    (row,) = outbox(db)
    assert (row["status"], row["attempts"], row["last_error"]) == ("dead", 3, "ConnectError")

    make_due(db)
    assert run_once(db, registry, settings, client=http) == PassReport()
    assert route.call_count == 3
    # The webhook URL is a secret: it appears in no stored error and no log line.
    for secret in SECRET_PARTS[:3]:
        assert secret not in caplog.text
    assert "hooks.example.com" not in caplog.text


async def test_a_failing_webhook_never_blocks_or_undoes_a_decision(
    client: httpx.AsyncClient,
    people: Keys,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    webhook: respx.MockRouter,
    http: httpx.Client,
) -> None:
    route = webhook.post(HOOK).mock(side_effect=httpx.ReadTimeout("timed out"))
    await configure(client, people, "sales_director", webhook_url=HOOK)
    (request,) = await submit(client, people, discount_pct=20)
    decided = await client.post(
        f"/v1/approvals/{request['id']}/decision",
        json={"decision": "approve"},
        headers={**people.headers("sam"), "If-Match": f'"{request["version"]}"'},
    )
    assert decided.status_code == 200, decided.text
    assert not webhook.calls

    assert run_once(db, registry, settings, client=http) == PassReport(retried=2)
    assert route.call_count == 2
    assert (await read(client, people, request["id"]))["status"] == "approved"
    deal = await client.get(f"/v1/deals/{DEAL}", headers=people.headers("rep"))
    assert deal.json()["status"] == "approved"


# --- reminders and escalation ----------------------------------------------------------------


async def test_a_reminder_at_half_the_sla_once(
    client: httpx.AsyncClient,
    people: Keys,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    webhook: respx.MockRouter,
    http: httpx.Client,
) -> None:
    route = webhook.post(HOOK).respond(200)
    await configure(client, people, "sales_director", webhook_url=HOOK, sla_hours=4)
    (request,) = await submit(client, people, discount_pct=20)
    opened = opened_at(request)
    assert datetime.fromisoformat(request["due_at"]) == opened + timedelta(hours=4)

    assert sweep(db, registry, settings, opened + timedelta(hours=1.5)).reminded == 0
    assert sweep(db, registry, settings, opened + timedelta(hours=2.5)).reminded == 1
    assert sweep(db, registry, settings, opened + timedelta(hours=3)).reminded == 0
    read_back = await read(client, people, request["id"])
    assert datetime.fromisoformat(read_back["reminded_at"]) == opened + timedelta(hours=2.5)
    assert read_back["status"] == "pending"
    assert read_back["group"] == "sales_director"
    (entry,) = await audit(client, people, "approval.reminded", request["id"])
    assert entry["after"]["group"] == "sales_director"
    assert [n["event"] for n in outbox(db)] == ["approval.requested", "approval.reminder"]

    assert run_once(db, registry, settings, client=http).sent == 2
    reminder = posted(route)[-1]
    assert reminder["event"] == "approval.reminder"
    assert reminder["text"].startswith("Reminder: approval waiting for sales_director")
    assert reminder["link"].endswith(f"/v1/approvals/{request['id']}")


async def test_a_playbooks_sla_comes_before_the_groups(
    client: httpx.AsyncClient,
    people: Keys,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    demo_yaml: str,
) -> None:
    await configure(client, people, "sales_director", sla_hours=4)
    stricter = await client.post(
        "/v1/playbooks/import?publish=true",
        content=demo_yaml + "approval_sla_hours: {sales_director: 2}\n",
        headers={**people.headers("admin"), "Content-Type": "application/yaml"},
    )
    assert stricter.status_code == 200, stricter.text
    (request,) = await submit(client, people, discount_pct=20)
    opened = opened_at(request)
    assert datetime.fromisoformat(request["due_at"]) == opened + timedelta(hours=2)
    assert sweep(db, registry, settings, opened + timedelta(hours=1.5)).reminded == 1
    assert sweep(db, registry, settings, opened + timedelta(hours=2.5)).escalated == 1
    assert (await read(client, people, request["id"]))["group"] == "finance"


async def test_an_overdue_request_escalates_to_the_next_tier(
    client: httpx.AsyncClient,
    people: Keys,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    webhook: respx.MockRouter,
    http: httpx.Client,
) -> None:
    sd_route = webhook.post(HOOK).respond(200)
    finance_route = webhook.post(FINANCE_HOOK).respond(200)
    await configure(client, people, "sales_director", webhook_url=HOOK, sla_hours=4)
    await configure(client, people, "finance", webhook_url=FINANCE_HOOK, sla_hours=8)
    # 20% needs only the sales director; finance holds the discount ladder's next tier.
    (request,) = await submit(client, people, discount_pct=20)
    opened = opened_at(request)
    assert await queue_ids(client, people, "approver_finance") == []

    late = opened + timedelta(hours=5)
    report = sweep(db, registry, settings, late)
    assert (report.escalated, report.reminded) == (1, 0)
    assert sweep(db, registry, settings, late + timedelta(hours=1)).escalated == 0

    moved = await read(client, people, request["id"])
    assert (moved["group"], moved["chain_group"], moved["status"]) == (
        "finance",
        "sales_director",
        "pending",
    )
    assert moved["escalation_level"] == 1
    assert datetime.fromisoformat(moved["due_at"]) == late + timedelta(hours=8)  # finance's SLA
    (entry,) = await audit(client, people, "approval.escalated", request["id"])
    assert entry["after"]["from"] == "sales_director"
    assert entry["after"]["group"] == "finance"
    assert await queue_ids(client, people, "approver_finance") == [request["id"]]
    assert await queue_ids(client, people, "sam") == []
    refused = await client.post(
        f"/v1/approvals/{request['id']}/decision",
        json={"decision": "approve"},
        headers={
            **people.headers("sam"),
            "If-Match": await request_etag(client, people, "sam", request["id"]),
        },
    )
    assert refused.status_code == 403

    assert run_once(db, registry, settings, client=http).sent == 2
    assert [b["event"] for b in posted(sd_route)] == ["approval.requested"]
    (escalated,) = posted(finance_route)
    assert escalated["event"] == "approval.escalated"
    assert "Escalated from sales_director" in escalated["text"]

    decided = await client.post(
        f"/v1/approvals/{request['id']}/decision",
        json={"decision": "approve"},
        headers={
            **people.headers("approver_finance"),
            "If-Match": await request_etag(client, people, "approver_finance", request["id"]),
        },
    )
    assert decided.status_code == 200, decided.text
    deal = await client.get(f"/v1/deals/{DEAL}", headers=people.headers("rep"))
    assert deal.json()["status"] == "approved"


async def test_escalation_follows_the_deals_own_ladder(
    client: httpx.AsyncClient,
    people: Keys,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
) -> None:
    people.create("carla_cfo", Role.approver, ["cfo"])
    # On a deal of a million or more the CFO owns the discount's second tier, not finance.
    created = await client.put(
        f"/v1/deals/{DEAL}",
        json={
            "attributes": {"region": "EMEA", "amount": "2000000"},
            "terms": {"contract_months": 12, "discount_pct": 20},
        },
        headers=people.headers("rep"),
    )
    assert created.status_code == 201, created.text
    submitted = await client.post(f"/v1/deals/{DEAL}/submit", headers=people.headers("rep"))
    (request,) = submitted.json()["requests"]
    assert request["group"] == "sales_director"
    checked = await client.post(
        "/v1/checks",
        json={"attributes": {"amount": "2000000"}, "terms": {"discount_pct": 30}},
        headers=people.headers("rep"),
    )
    (discount,) = [t for t in checked.json()["terms"] if t["key"] == "discount_pct"]
    assert discount["approvers"] == ["sales_director", "cfo"]

    report = sweep(db, registry, settings, opened_at(request) + timedelta(hours=25))
    assert report.escalated == 1
    assert (await read(client, people, request["id"]))["group"] == "cfo"
    assert await queue_ids(client, people, "carla_cfo") == [request["id"]]
    assert await queue_ids(client, people, "approver_finance") == []


async def test_without_a_next_tier_the_configured_escalation_group_takes_over(
    client: httpx.AsyncClient,
    people: Keys,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
) -> None:
    people.create("gina_counsel", Role.approver, ["general_counsel"])
    people.create("dora_desk", Role.approver, ["deal_desk"])
    await configure(client, people, "legal", sla_hours=2, escalation_group="general_counsel")
    # Termination for convenience has one tier (legal); platinum support one (product).
    requests = await submit(
        client, people, termination_for_convenience=True, support_level="platinum"
    )
    by_group = {r["group"]: r for r in requests}
    assert set(by_group) == {"legal", "product"}
    legal, product = by_group["legal"], by_group["product"]

    # Legal's SLA is 2 hours, product's the service default of 24.
    report = sweep(db, registry, settings, opened_at(legal) + timedelta(hours=3))
    assert (report.escalated, report.overdue_without_target) == (1, 0)
    assert (await read(client, people, legal["id"]))["group"] == "general_counsel"
    assert await queue_ids(client, people, "gina_counsel") == [legal["id"]]

    # No tier and no group setting: the service-wide escalation group.
    desk = settings.model_copy(update={"escalation_group": "deal_desk"})
    report = sweep(db, registry, desk, opened_at(product) + timedelta(hours=25))
    assert report.escalated == 1
    assert (await read(client, people, product["id"]))["group"] == "deal_desk"
    assert await queue_ids(client, people, "dora_desk") == [product["id"]]
    (entry,) = await audit(client, people, "approval.escalated", product["id"])
    assert entry["after"]["from"] == "product"


async def test_with_nowhere_to_escalate_an_overdue_request_stays_and_is_flagged_once(
    client: httpx.AsyncClient,
    people: Keys,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
) -> None:
    (request,) = await submit(client, people, support_level="platinum")
    late = opened_at(request) + timedelta(hours=25)
    report = sweep(db, registry, settings, late)
    assert (report.escalated, report.overdue_without_target) == (0, 1)
    assert sweep(db, registry, settings, late + timedelta(hours=1)).overdue_without_target == 0
    still = await read(client, people, request["id"])
    assert (still["group"], still["status"], still["escalation_level"]) == ("product", "pending", 0)
    assert await queue_ids(client, people, "approver_product") == [request["id"]]
    (entry,) = await audit(client, people, "approval.overdue", request["id"])
    assert entry["after"]["escalated_to"] is None


# --- group settings --------------------------------------------------------------------------


async def test_group_settings_never_show_the_webhook_url(
    client: httpx.AsyncClient, people: Keys
) -> None:
    refused = await client.put(
        "/v1/approval-groups/sales_director",
        json={"webhook_url": HOOK},
        headers=people.headers("approver_finance"),
    )
    assert refused.status_code == 403
    created = await configure(client, people, "sales_director", webhook_url=HOOK, sla_hours=4)
    assert created.status_code == 201
    changed = await configure(client, people, "sales_director", webhook_url=HOOK, sla_hours=6)
    assert changed.status_code == 200
    listed = await client.get("/v1/approval-groups", headers=people.headers("sam"))
    assert listed.status_code == 200
    groups = {g["name"]: g for g in listed.json()}
    assert groups["sales_director"] == {
        "name": "sales_director",
        "sla_hours": 6,
        "sla_hours_set": True,
        "webhook_configured": True,
        "webhook_host": "hooks.example.com",
        "escalation_group": None,
    }
    # Groups that only exist through their members' keys are listed with the defaults.
    assert groups["legal"]["webhook_configured"] is False
    assert groups["legal"]["sla_hours"] == 24
    entries = await client.get(
        "/v1/audit", params={"action": "approval_group.saved"}, headers=people.headers("admin")
    )
    for text in (created.text, changed.text, listed.text, entries.text):
        for secret in SECRET_PARTS[:3]:
            assert secret not in text
    not_a_url = await client.put(
        "/v1/approval-groups/legal",
        json={"webhook_url": "javascript:alert(1)"},
        headers=people.headers("admin"),
    )
    assert not_a_url.status_code == 422
    assert not_a_url.json()["errors"][0]["field"] == "webhook_url"


# --- the command -----------------------------------------------------------------------------


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
    env.update(GOVERNANCE_DATABASE_URL=database_url, GOVERNANCE_LOG_LEVEL="INFO")
    governance = str(Path(sys.executable).with_name("governance"))
    subprocess.run([governance, "migrate"], env=env, check=True, capture_output=True)

    # A request whose reminder is due, for a group with a webhook.
    app = create_app(Settings(database_url=database_url))
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
        assert imported.status_code == 200, imported.text
        await configure(client, keys, "sales_director", webhook_url=url, sla_hours=4)
        (request,) = await submit(client, keys, discount_pct=20)
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


async def test_a_withdrawal_tells_the_groups_whose_requests_closed(
    client: httpx.AsyncClient,
    people: Keys,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    webhook: respx.MockRouter,
    http: httpx.Client,
) -> None:
    route = webhook.post(HOOK).respond(200, text="ok")
    await configure(client, people, "sales_director", webhook_url=HOOK)
    await submit(client, people, discount_pct=20)
    withdrawn = await client.post(f"/v1/deals/{DEAL}/withdraw", headers=people.headers("rep"))
    assert withdrawn.status_code == 200, withdrawn.text
    assert run_once(db, registry, settings, client=http) == PassReport(sent=2)
    events = [body["event"] for body in posted(route)]
    assert events == ["approval.requested", "approval.withdrawn"]
    assert posted(route)[-1]["request"]["status"] == "withdrawn"


async def test_leaving_out_the_webhook_keeps_it_and_null_removes_it(
    client: httpx.AsyncClient, people: Keys
) -> None:
    await configure(client, people, "finance", webhook_url=FINANCE_HOOK, sla_hours=8)
    kept = await configure(client, people, "finance", sla_hours=12)
    assert kept.json()["webhook_configured"] is True
    assert kept.json()["sla_hours"] == 12
    removed = await configure(client, people, "finance", webhook_url=None, sla_hours=12)
    assert removed.json()["webhook_configured"] is False
