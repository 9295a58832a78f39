"""Webhook notifications: queued with the change, posted by the worker from the outbox, retried
with backoff and parked as dead, never sent during the request nor blocking it.

Requests are made through the HTTP API; the worker is run one pass at a time with
`worker.run_once`. Webhooks are mocked with respx; nothing sleeps.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
import pytest
import respx
from tests.conftest import Keys
from tests.driver import (  # noqa: F401  (example_hooks_settings: the fixture `settings`)
    HOOK,
    SAMPLE_DEAL,
    SECRET_PARTS,
    configure_group,
    example_hooks_settings,
    make_due,
    notifications,
    posted,
    read_request,
    submit_sample,
)

from governance.db import Database, utcnow
from governance.playbooks.registry import PlaybookRegistry
from governance.settings import Settings
from governance.worker import PassReport, run_once

DEAL = SAMPLE_DEAL


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
    await configure_group(client, people, "sales_director", webhook_url=HOOK, sla_hours=4)
    # Legal has no webhook: its request is queued for no one.
    requests = await submit_sample(client, people, discount_pct=20, liability_cap_multiple="1.5")
    (sd,) = [r for r in requests if r["group"] == "sales_director"]
    assert not webhook.calls
    assert [(n["event"], n["group"], n["status"]) for n in notifications(db)] == [
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
    (sent,) = notifications(db)
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
    await configure_group(client, people, "sales_director", webhook_url=HOOK)
    (request,) = await submit_sample(client, people, discount_pct=20)
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
    await configure_group(client, people, "sales_director", webhook_url=HOOK)
    await submit_sample(client, people, discount_pct=20)

    before = utcnow()
    assert run_once(db, registry, settings, client=http) == PassReport(retried=1)
    (row,) = notifications(db)
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
    (row,) = notifications(db)
    assert (row["status"], row["attempts"], row["last_error"]) == ("pending", 2, "timed out")
    assert row["next_attempt_at"] >= before + timedelta(seconds=30)  # backing off further

    route.side_effect = httpx.ConnectError("connection refused")
    make_due(db)
    assert run_once(db, registry, settings, client=http) == PassReport(dead=1)
    (row,) = notifications(db)
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
    await configure_group(client, people, "sales_director", webhook_url=HOOK)
    (request,) = await submit_sample(client, people, discount_pct=20)
    decided = await client.post(
        f"/v1/approvals/{request['id']}/decision",
        json={"decision": "approve"},
        headers={**people.headers("sam"), "If-Match": f'"{request["version"]}"'},
    )
    assert decided.status_code == 200, decided.text
    assert not webhook.calls

    assert run_once(db, registry, settings, client=http) == PassReport(retried=2)
    assert route.call_count == 2
    assert (await read_request(client, people, request["id"]))["status"] == "approved"
    deal = await client.get(f"/v1/deals/{DEAL}", headers=people.headers("rep"))
    assert deal.json()["status"] == "approved"


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
    await configure_group(client, people, "sales_director", webhook_url=HOOK)
    await submit_sample(client, people, discount_pct=20)
    withdrawn = await client.post(f"/v1/deals/{DEAL}/withdraw", headers=people.headers("rep"))
    assert withdrawn.status_code == 200, withdrawn.text
    assert run_once(db, registry, settings, client=http) == PassReport(sent=2)
    events = [body["event"] for body in posted(route)]
    assert events == ["approval.requested", "approval.withdrawn"]
    assert posted(route)[-1]["request"]["status"] == "withdrawn"
