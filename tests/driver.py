"""Test data and API steps shared by the test files: people, playbook terms, deals, approval
queues, webhook posts and Salesforce opportunities.

Each helper asserts the status the step needs, so a test reads as the story it tells. A file
with a deal or a cast of its own binds it in a small wrapper around these. Decisions on approval
requests are not here: each test file makes them itself, with the `If-Match` it means to send.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import event, select, update
from sqlalchemy.orm import ORMExecuteState
from tests.conftest import Keys

from governance.auth.schemas import Role
from governance.db import Database, utcnow
from governance.deals.models import Deal
from governance.notifications.models import Notification
from governance.settings import Settings

# --- people -------------------------------------------------------------------------------------


CAST: dict[str, tuple[Role, list[str]]] = {
    "sam_sales_director": (Role.approver, ["sales_director"]),
    "fiona_finance": (Role.approver, ["finance"]),
    "lee_legal": (Role.approver, ["legal"]),
    "lou_legal": (Role.approver, ["legal"]),
    "dana_deal_desk": (Role.approver, ["sales_director", "finance"]),
    "rita_rep": (Role.rep, []),
}
"""People who appear in several files, by name: their role and groups."""


def add_people(keys: Keys, *cast: str, **approvers: list[str]) -> Keys:
    """Add keys for people of the `CAST`, by name, and for other approvers (name=[groups])."""
    for name in cast:
        role, groups = CAST[name]
        keys.create(name, role, groups)
    for name, groups in approvers.items():
        keys.create(name, Role.approver, groups)
    return keys


def fields(response: httpx.Response) -> list[str]:
    """The fields a problem+json body's `errors` name, in order (none if it names none)."""
    return [e["field"] for e in response.json().get("errors") or []]


def invalid_fields(response: httpx.Response) -> list[str]:
    """The fields a 422 names (and that it is a 422)."""
    assert response.status_code == 422, response.text
    return fields(response)


# --- playbook terms (the demo playbook's shapes, with what a test changes) ---------------------


def discount_term(**overrides: Any) -> dict[str, Any]:
    """Lower is better: band 0–15, sales director to 25, finance to the bottom line at 35."""
    term: dict[str, Any] = {
        "key": "discount_pct",
        "kind": "number",
        "unit": "%",
        "direction": "lower_is_better",
        "owner": "finance",
        "priority": 1,
        "walk_away": 35,
        "band": {"low": 0, "high": 15},
        "tiers": [
            {"limit": 25, "approver": "sales_director"},
            {"limit": 35, "approver": "finance"},
        ],
    }
    term.update(overrides)
    return term


def contract_term(**overrides: Any) -> dict[str, Any]:
    """Higher is better: band 12–36 months, sales director down to 6, CFO down to 1."""
    term: dict[str, Any] = {
        "key": "contract_months",
        "kind": "number",
        "unit": "months",
        "direction": "higher_is_better",
        "owner": "sales",
        "priority": 2,
        "walk_away": 1,
        "band": {"low": 12, "high": 36},
        "tiers": [
            {"limit": 6, "approver": "sales_director"},
            {"limit": 1, "approver": "cfo"},
        ],
    }
    term.update(overrides)
    return term


def liability_term(**overrides: Any) -> dict[str, Any]:
    """A flag, preferably off: legal approves it, then the general counsel."""
    term: dict[str, Any] = {
        "key": "uncapped_liability",
        "kind": "flag",
        "preferred": False,
        "owner": "legal",
        "priority": 2,
        "tiers": [{"approver": "legal"}, {"approver": "general_counsel"}],
    }
    term.update(overrides)
    return term


# --- deals --------------------------------------------------------------------------------------

EMEA_ENTERPRISE = {"region": "EMEA", "segment": "enterprise", "amount": "120000"}
SAMPLE_DEAL = "0065g00000WorkerA1"
"""The sample deal `submit_sample` stores: Initech's platform, 120,000 EMEA enterprise."""


def deal_path(external_id: str, number: int | None = None) -> str:
    """A deal's URL; with a number, of the 18-character Opportunity id `0065g00000{tag}{nn}`."""
    if number is not None:
        external_id = f"0065g00000{external_id}{number:02d}"
        assert len(external_id) == 18
    return f"/v1/deals/{external_id}"


def deal_body(
    name: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    terms: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A deal as `PUT /v1/deals/{id}` takes it, with the parts given."""
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if attributes is not None:
        body["attributes"] = dict(attributes)
    if terms is not None:
        body["terms"] = dict(terms)
    return body


async def put_deal(
    client: httpx.AsyncClient,
    keys: Keys,
    external_id: str,
    body: Mapping[str, Any],
    *,
    who: str = "rep",
    expect: Collection[int] = (200, 201),
) -> dict[str, Any]:
    """Store the deal as `who` (201 created, 200 replaced; `expect` says which will do)."""
    response = await client.put(deal_path(external_id), json=body, headers=keys.headers(who))
    assert response.status_code in expect, response.text
    stored: dict[str, Any] = response.json()
    return stored


async def patch_terms(
    client: httpx.AsyncClient, keys: Keys, external_id: str, *, who: str = "rep", **terms: object
) -> dict[str, Any]:
    response = await client.patch(
        deal_path(external_id), json={"terms": terms}, headers=keys.headers(who)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def deal_status(
    client: httpx.AsyncClient, keys: Keys, external_id: str, *, who: str = "rep"
) -> str:
    response = await client.get(deal_path(external_id), headers=keys.headers(who))
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


async def submit(
    client: httpx.AsyncClient, keys: Keys, external_id: str, *, who: str = "rep"
) -> httpx.Response:
    """Submit the deal for approval, whatever the answer."""
    return await client.post(f"{deal_path(external_id)}/submit", headers=keys.headers(who))


async def submitted(
    client: httpx.AsyncClient, keys: Keys, external_id: str, *, who: str = "rep"
) -> dict[str, Any]:
    """Submit the deal for approval: the submission (deal status, check, requests)."""
    response = await submit(client, keys, external_id, who=who)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_and_submit(
    client: httpx.AsyncClient,
    keys: Keys,
    external_id: str,
    body: Mapping[str, Any],
    *,
    who: str = "rep",
) -> dict[str, Any]:
    """Create the deal (a 201) and submit it: the submission."""
    await put_deal(client, keys, external_id, body, who=who, expect=(201,))
    return await submitted(client, keys, external_id, who=who)


async def submit_sample(
    client: httpx.AsyncClient, keys: Keys, external_id: str = SAMPLE_DEAL, **terms: object
) -> list[dict[str, Any]]:
    """The sample deal with a 12-month contract and `terms`, created and submitted: the
    approval requests it opened."""
    body = deal_body("Initech platform", EMEA_ENTERPRISE, {"contract_months": 12, **terms})
    requests: list[dict[str, Any]] = (await create_and_submit(client, keys, external_id, body))[
        "requests"
    ]
    return requests


# --- approval requests and groups -----------------------------------------------------------------


async def queue(
    client: httpx.AsyncClient, keys: Keys, who: str, **params: str | int
) -> dict[str, Any]:
    """A page of `who`'s approval queue."""
    response = await client.get("/v1/approvals", params=params, headers=keys.headers(who))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def queue_ids(
    client: httpx.AsyncClient, keys: Keys, who: str, **params: str | int
) -> list[int]:
    return [r["id"] for r in (await queue(client, keys, who, **params))["items"]]


async def read_request(
    client: httpx.AsyncClient, keys: Keys, request_id: int, *, who: str = "admin"
) -> dict[str, Any]:
    response = await client.get(f"/v1/approvals/{request_id}", headers=keys.headers(who))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def configure_group(
    client: httpx.AsyncClient, keys: Keys, group: str, **body: object
) -> httpx.Response:
    """Save an approval group's settings (SLA, webhook, escalation group) as the admin."""
    response = await client.put(
        f"/v1/approval-groups/{group}", json=body, headers=keys.headers("admin")
    )
    assert response.status_code in (200, 201), response.text
    return response


# --- webhook posts ------------------------------------------------------------------------------

HOOK = "https://hooks.example.com/T000/B000/XXXX"
FINANCE_HOOK = "https://hooks.example.com/T000/B111/YYYY"
SECRET_PARTS = ("T000", "B000", "XXXX", "B111", "YYYY")
"""The path of a webhook URL is its secret: these parts must show nowhere."""


def make_due(db: Database) -> None:
    """Time passes until every pending notification may be tried again."""
    with db.unit_of_work() as session:
        session.execute(
            update(Notification)
            .where(Notification.status == "pending")
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


def notifications(db: Database) -> list[dict[str, Any]]:
    """The webhook outbox, oldest first."""
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


def posted(route: respx.Route) -> list[dict[str, Any]]:
    """The JSON bodies posted to a mocked webhook, in order."""
    return [json.loads(call.request.content) for call in route.calls]


# --- Salesforce ---------------------------------------------------------------------------------


def opportunity(name: str, country: str = "France", **values: Any) -> dict[str, Any]:
    """An open Opportunity for the fake org, as tests/salesforce/conftest.py maps it: 120,000,
    10 % off, 30 days to pay, 12 months, unless `values` say otherwise."""
    return {
        "Name": name,
        "StageName": "Negotiation/Review",
        "Amount": 120000,
        "Account": {"Name": f"{name} Inc", "BillingCountry": country},
        "Discount__c": 10,
        "Payment_Terms_Days__c": 30,
        "Contract_Months__c": 12,
        **values,
    }


@pytest.fixture(name="settings")
def example_hooks_settings(database_url: str) -> Settings:
    """The suite's settings, where the operator allows the example webhook host (it does not
    resolve, and respx answers for it). A test module takes it by importing it."""
    return Settings(
        database_url=database_url, db_pool_size=5, webhook_allowed_hosts=["hooks.example.com"]
    )


@contextmanager
def killed_at_deal(db: Database, nth: int) -> Iterator[None]:
    """Kill the process (KeyboardInterrupt, as Ctrl-C or a dying worker) while the `nth` new
    deal is being written: its page's (or bulk set's) transaction never commits, nor its
    checkpoint. A page's new deals go out in one INSERT … ON CONFLICT: many parameter sets, or
    on PostgreSQL one array per column."""
    created = 0

    def before_insert(state: ORMExecuteState) -> None:
        nonlocal created
        mapper = state.bind_mapper
        if created < nth and state.is_insert and mapper is not None and mapper.class_ is Deal:
            created += _rows_in(state)
            if created >= nth:
                raise KeyboardInterrupt

    event.listen(db.sessionmaker, "do_orm_execute", before_insert)
    try:
        yield
    finally:
        event.remove(db.sessionmaker, "do_orm_execute", before_insert)


def _rows_in(state: ORMExecuteState) -> int:
    if isinstance(state.parameters, list):
        return len(state.parameters)
    arrays = [v for v in state.statement.compile().params.values() if isinstance(v, list)]
    return len(arrays[0]) if arrays else 1
