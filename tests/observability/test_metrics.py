"""`/metrics`: who may read it, and every figure an operator watches moves with the work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import Keys
from tests.driver import HOOK, configure_group, create_and_submit, deal_body, opportunity
from tests.salesforce.conftest import (  # noqa: F401  (the fake org's fixtures)
    fake,
    mapping,
    mapping_file,
    settings,
    sf_client,
)

from fake_salesforce import FakeSalesforce
from governance.app import create_app
from governance.approvals import service as approval_service
from governance.auth.schemas import Role
from governance.db import Database, utcnow
from governance.heartbeats.models import WorkerLoop
from governance.heartbeats.repository import HeartbeatRepository
from governance.playbooks.registry import PlaybookRegistry
from governance.salesforce import inbound, outbound
from governance.salesforce.client import SimpleSalesforceClient
from governance.salesforce.mapping import SyncMapping
from governance.settings import MetricsSettings, Settings

Sample = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Sample:
    """Every sample of an exposition, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Sample, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def metered(settings: Settings) -> Settings:  # noqa: F811
    """The sync's settings, with figures read afresh at every scrape."""
    return settings.model_copy(update={"metrics": MetricsSettings(cache_seconds=0)})


@pytest.fixture
async def api(metered: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application: FastAPI = create_app(metered)
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    application.state.db.dispose()


async def scrape(api: httpx.AsyncClient, keys: Keys) -> Sample:
    response = await api.get("/metrics", headers=keys.headers("admin"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


@pytest.mark.usefixtures("demo_published")
async def test_each_figure_moves_after_a_check_a_decision_and_a_sync(
    api: httpx.AsyncClient,
    keys: Keys,
    fake: FakeSalesforce,  # noqa: F811
    db: Database,
    registry: PlaybookRegistry,
    metered: Settings,
    mapping: SyncMapping,  # noqa: F811
    sf_client: SimpleSalesforceClient,  # noqa: F811
) -> None:
    keys.create("sam", Role.approver, ["sales_director"])
    await configure_group(api, keys, "sales_director", webhook_url=HOOK)
    before = await scrape(api, keys)

    # A check, two deals submitted (one decided, one left to the SLA sweep).
    check = await api.post(
        "/v1/checks",
        json={"terms": {"discount_pct": 20, "contract_months": 12}},
        headers=keys.headers("rep"),
    )
    assert check.status_code == 200, check.text
    assert check.json()["verdict"] == "needs_approval"
    requests = []
    for external_id in ("0065g00000MetricAA", "0065g00000MetricBB"):
        body = deal_body(terms={"discount_pct": 20, "contract_months": 12})
        submitted = await create_and_submit(api, keys, external_id, body)
        requests.append(next(r for r in submitted["requests"] if r["group"] == "sales_director"))
    decided = await api.post(
        f"/v1/approvals/{requests[0]['id']}/decision",
        json={"decision": "approve"},
        headers={**keys.headers("sam"), "If-Match": f'"{requests[0]["version"]}"'},
    )
    assert decided.status_code == 200, decided.text
    with db.unit_of_work() as session:  # half the SLA later: a reminder
        swept = approval_service.sweep(
            session, registry, metered, now=utcnow() + timedelta(hours=13)
        )
    assert swept.reminded == 1

    # A sync run: one opportunity pulled and pushed back; the deals made through the API are
    # not in the org, so their pushes fail and wait for a retry.
    fake.add_opportunities([opportunity("Metered")])
    pulled, _run = inbound.pull(db, sf_client, registry, metered, mapping)
    assert pulled.read == 1
    pushed = outbound.push(db, sf_client, mapping, metered.salesforce, metered.public_url)
    assert (pushed.pushed, pushed.failed) == (1, 2)

    after = await scrape(api, keys)

    def moved(name: str, by: float | None = None, **labels: str) -> None:
        change = value(after, name, **labels) - value(before, name, **labels)
        assert change == by if by is not None else change > 0, (name, labels, change)

    moved("governance_checks_total", 1, verdict="needs_approval")
    moved("governance_deals", 2, verdict="needs_approval")
    moved("governance_deals", 1, verdict="auto_approved")  # the pulled opportunity
    moved("governance_approval_decisions_total", 1, outcome="approved")
    moved("governance_approval_reminders_total", 1)
    moved("governance_approval_requests_open", 1, group="sales_director", age="lt_1h")
    moved("governance_webhook_outbox", status="pending")
    moved("governance_salesforce_records_total", 1, direction="pulled")
    moved("governance_salesforce_records_total", 1, direction="pushed")
    moved("governance_salesforce_watermark_age_seconds", sobject="Opportunity")
    moved("governance_salesforce_api_usage_ratio")
    moved("governance_salesforce_outbox", 2, status="pending")
    assert value(after, "governance_salesforce_paused", sobject="Opportunity") == 0
    for method, route in (
        ("POST", "/v1/checks"),
        ("PUT", "/v1/deals/{external_id}"),
        ("POST", "/v1/approvals/{request_id:int}/decision"),
    ):
        labels = {"method": method, "route": route, "status_class": "2xx"}
        moved("governance_http_requests_total", **labels)
        moved("governance_http_request_duration_seconds_count", **labels)


async def test_metrics_take_an_admin_key_unless_opened(
    api: httpx.AsyncClient, keys: Keys, metered: Settings
) -> None:
    assert (await api.get("/metrics")).status_code == 401
    assert (await api.get("/metrics", headers=keys.headers("rep"))).status_code == 403
    assert (await api.get("/metrics", headers=keys.headers("admin"))).status_code == 200

    opened = create_app(metered.model_copy(update={"metrics": MetricsSettings(public=True)}))
    transport = httpx.ASGITransport(app=opened)
    async with httpx.AsyncClient(transport=transport, base_url="http://scraper") as scraper:
        response = await scraper.get("/metrics")
    opened.state.db.dispose()
    assert response.status_code == 200
    assert "governance_http_requests_total" in response.text
    # Moved to its own port, it is not on the API's.
    apart = create_app(metered.model_copy(update={"metrics": MetricsSettings(port=9464)}))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=apart), base_url="http://scraper"
    ) as scraper:
        assert (await scraper.get("/metrics", headers=keys.headers("admin"))).status_code == 404
    apart.state.db.dispose()


async def test_each_worker_loops_heartbeat_age(
    api: httpx.AsyncClient, keys: Keys, db: Database
) -> None:
    """A stalled loop shows as an old heartbeat, whichever worker runs it; the freshest counts."""
    assert (
        "governance_worker_heartbeat_age_seconds{"
        not in (await api.get("/metrics", headers=keys.headers("admin"))).text
    )
    now = utcnow()
    with db.unit_of_work() as session:
        beats = HeartbeatRepository(session)
        beats.beat(WorkerLoop.pull, "host-a:1:all", now - timedelta(minutes=10))
        beats.beat(WorkerLoop.pull, "host-b:2:pull", now - timedelta(minutes=30))
        beats.beat(WorkerLoop.approvals, "host-a:1:all", now - timedelta(hours=2))
    samples = await scrape(api, keys)
    pull = value(samples, "governance_worker_heartbeat_age_seconds", loop="pull")
    approvals = value(samples, "governance_worker_heartbeat_age_seconds", loop="approvals")
    assert 600 <= pull < 1800  # the freshest of the two workers' beats
    assert approvals >= 7200
    assert ("governance_worker_heartbeat_age_seconds", frozenset({("loop", "push")})) not in samples
