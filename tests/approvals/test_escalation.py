"""The SLA sweep: a reminder at half the SLA, escalation up the deal's own ladder when overdue.

Requests are made through the HTTP API; the sweep runs with an explicit `now` to travel in
time, and the worker (`worker.run_once`) posts what it queued to webhooks mocked with respx.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import respx
from tests.conftest import Keys, request_etag
from tests.driver import (  # noqa: F401  (example_hooks_settings: the fixture `settings`)
    FINANCE_HOOK,
    HOOK,
    SAMPLE_DEAL,
    configure_group,
    example_hooks_settings,
    notifications,
    posted,
    queue_ids,
    read_request,
    submit_sample,
)

from governance.approvals import service as approval_service
from governance.auth.schemas import Role
from governance.db import Database
from governance.playbooks.registry import PlaybookRegistry
from governance.settings import Settings
from governance.worker import run_once

DEAL = SAMPLE_DEAL


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


def sweep(
    db: Database, registry: PlaybookRegistry, settings: Settings, now: datetime
) -> approval_service.SweepReport:
    with db.unit_of_work() as session:
        return approval_service.sweep(session, registry, settings, now=now)


def opened_at(request: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(request["opened_at"])


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
    await configure_group(client, people, "sales_director", webhook_url=HOOK, sla_hours=4)
    (request,) = await submit_sample(client, people, discount_pct=20)
    opened = opened_at(request)
    assert datetime.fromisoformat(request["due_at"]) == opened + timedelta(hours=4)

    assert sweep(db, registry, settings, opened + timedelta(hours=1.5)).reminded == 0
    assert sweep(db, registry, settings, opened + timedelta(hours=2.5)).reminded == 1
    assert sweep(db, registry, settings, opened + timedelta(hours=3)).reminded == 0
    read_back = await read_request(client, people, request["id"])
    assert datetime.fromisoformat(read_back["reminded_at"]) == opened + timedelta(hours=2.5)
    assert read_back["status"] == "pending"
    assert read_back["group"] == "sales_director"
    (entry,) = await audit(client, people, "approval.reminded", request["id"])
    assert entry["after"]["group"] == "sales_director"
    assert [n["event"] for n in notifications(db)] == ["approval.requested", "approval.reminder"]

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
    await configure_group(client, people, "sales_director", sla_hours=4)
    stricter = await client.post(
        "/v1/playbooks/import?publish=true",
        content=demo_yaml + "approval_sla_hours: {sales_director: 2}\n",
        headers={**people.headers("admin"), "Content-Type": "application/yaml"},
    )
    assert stricter.status_code == 201, stricter.text
    (request,) = await submit_sample(client, people, discount_pct=20)
    opened = opened_at(request)
    assert datetime.fromisoformat(request["due_at"]) == opened + timedelta(hours=2)
    assert sweep(db, registry, settings, opened + timedelta(hours=1.5)).reminded == 1
    assert sweep(db, registry, settings, opened + timedelta(hours=2.5)).escalated == 1
    assert (await read_request(client, people, request["id"]))["group"] == "finance"


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
    await configure_group(client, people, "sales_director", webhook_url=HOOK, sla_hours=4)
    await configure_group(client, people, "finance", webhook_url=FINANCE_HOOK, sla_hours=8)
    # 20% needs only the sales director; finance holds the discount ladder's next tier.
    (request,) = await submit_sample(client, people, discount_pct=20)
    opened = opened_at(request)
    assert await queue_ids(client, people, "approver_finance") == []

    late = opened + timedelta(hours=5)
    report = sweep(db, registry, settings, late)
    assert (report.escalated, report.reminded) == (1, 0)
    assert sweep(db, registry, settings, late + timedelta(hours=1)).escalated == 0

    moved = await read_request(client, people, request["id"])
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
    assert (await read_request(client, people, request["id"]))["group"] == "cfo"
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
    await configure_group(client, people, "legal", sla_hours=2, escalation_group="general_counsel")
    # Termination for convenience has one tier (legal); platinum support one (product).
    requests = await submit_sample(
        client, people, termination_for_convenience=True, support_level="platinum"
    )
    by_group = {r["group"]: r for r in requests}
    assert set(by_group) == {"legal", "product"}
    legal, product = by_group["legal"], by_group["product"]

    # Legal's SLA is 2 hours, product's the service default of 24.
    report = sweep(db, registry, settings, opened_at(legal) + timedelta(hours=3))
    assert (report.escalated, report.overdue_without_target) == (1, 0)
    assert (await read_request(client, people, legal["id"]))["group"] == "general_counsel"
    assert await queue_ids(client, people, "gina_counsel") == [legal["id"]]

    # No tier and no group setting: the service-wide escalation group.
    desk = settings.model_copy(update={"escalation_group": "deal_desk"})
    report = sweep(db, registry, desk, opened_at(product) + timedelta(hours=25))
    assert report.escalated == 1
    assert (await read_request(client, people, product["id"]))["group"] == "deal_desk"
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
    (request,) = await submit_sample(client, people, support_level="platinum")
    late = opened_at(request) + timedelta(hours=25)
    report = sweep(db, registry, settings, late)
    assert (report.escalated, report.overdue_without_target) == (0, 1)
    assert sweep(db, registry, settings, late + timedelta(hours=1)).overdue_without_target == 0
    still = await read_request(client, people, request["id"])
    assert (still["group"], still["status"], still["escalation_level"]) == ("product", "pending", 0)
    assert await queue_ids(client, people, "approver_product") == [request["id"]]
    (entry,) = await audit(client, people, "approval.overdue", request["id"])
    assert entry["after"]["escalated_to"] is None
