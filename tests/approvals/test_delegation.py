"""Delegation while away, and an admin moving requests whose group has no one left.

Through the HTTP API with real keys. Sam approves for the sales directors; Dana is his deputy
and approves for the deal desk in her own right; Carl is Dana's deputy.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from tests.conftest import Keys, request_etag
from tests.driver import (
    add_people,
    create_and_submit,
    deal_body,
    deal_status,
    fields,
    queue_ids,
)

from governance.approvals.models import Delegation
from governance.auth.schemas import Role
from governance.db import Database, utcnow

pytestmark = pytest.mark.usefixtures("demo_published")

DEAL = "0065g00000DelegA01"


@pytest.fixture
def people(keys: Keys) -> Keys:
    return add_people(keys, sam=["sales_director"], dana=["deal_desk"], carl=["cfo"])


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def window(start_hours: float = -1, end_hours: float = 48) -> dict[str, str]:
    now = utcnow()
    return {
        "starts_at": iso(now + timedelta(hours=start_hours)),
        "ends_at": iso(now + timedelta(hours=end_hours)),
    }


async def delegate(
    client: httpx.AsyncClient, keys: Keys, who: str, to: str, **times: str
) -> httpx.Response:
    return await client.put(
        "/v1/me/delegation",
        json={"delegate": to, **(times or window())},
        headers=keys.headers(who),
    )


async def sales_director_request(client: httpx.AsyncClient, keys: Keys) -> int:
    """A deal at 20% discount: one request for the sales directors."""
    body = deal_body(
        "Globex expansion",
        {"region": "NA", "segment": "enterprise", "amount": "90000"},
        {"discount_pct": 20, "contract_months": 12},
    )
    (request,) = (await create_and_submit(client, keys, DEAL, body))["requests"]
    assert request["group"] == "sales_director"
    request_id: int = request["id"]
    return request_id


async def approve(
    client: httpx.AsyncClient, keys: Keys, who: str, request_id: int
) -> httpx.Response:
    etag = await request_etag(client, keys, who, request_id)
    return await client.post(
        f"/v1/approvals/{request_id}/decision",
        json={"decision": "approve"},
        headers={**keys.headers(who), "If-Match": etag},
    )


async def test_a_delegate_sees_and_decides_for_the_delegator(
    client: httpx.AsyncClient, people: Keys
) -> None:
    request_id = await sales_director_request(client, people)
    assert await queue_ids(client, people, "dana") == []
    assert (await approve(client, people, "dana", request_id)).status_code == 403

    given = await delegate(client, people, "sam", "dana")
    assert given.status_code == 201, given.text
    body = given.json()
    assert (body["delegator"], body["delegate"], body["groups"], body["active"]) == (
        "sam",
        "dana",
        ["sales_director"],
        True,
    )
    changed = await delegate(client, people, "sam", "dana", **window(-2, 24))
    assert changed.status_code == 200, changed.text
    mine = (await client.get("/v1/me/delegation", headers=people.headers("sam"))).json()
    assert mine["given"]["delegate"] == "dana"
    held = (await client.get("/v1/me/delegation", headers=people.headers("dana"))).json()
    assert [(d["delegator"], d["groups"]) for d in held["held"]] == [("sam", ["sales_director"])]

    assert await queue_ids(client, people, "dana") == [request_id]
    by_group = await client.get(
        "/v1/approvals", params={"group": "sales_director"}, headers=people.headers("dana")
    )
    assert [r["id"] for r in by_group.json()["items"]] == [request_id]

    decided = await approve(client, people, "dana", request_id)
    assert decided.status_code == 200, decided.text
    decision = decided.json()["decision"]
    sam = await key_id(client, people, "sam")
    assert decision["decided_by"].endswith(":dana")
    # The delegator is named by key id, as the audit log names actors.
    assert decision["on_behalf_of"] == f"key:{sam}:sam"
    assert decision["admin_override"] is False
    assert await deal_status(client, people, DEAL) == "approved"
    listed = (await client.get(f"/v1/deals/{DEAL}/approvals", headers=people.headers("rep"))).json()
    assert listed[0]["decided_by"].endswith(":dana")

    audit = await client.get(
        "/v1/audit",
        params={"action": "approval.decided", "entity_id": str(request_id)},
        headers=people.headers("admin"),
    )
    (entry,) = audit.json()["items"]
    assert entry["actor"].endswith(":dana")
    assert entry["on_behalf_of"] == f"key:{sam}:sam"


async def test_a_delegation_cannot_be_passed_on(client: httpx.AsyncClient, people: Keys) -> None:
    request_id = await sales_director_request(client, people)
    assert (await delegate(client, people, "sam", "dana")).status_code == 201
    onward = await delegate(client, people, "dana", "carl")
    assert onward.status_code == 201, onward.text
    # Dana passes on only the group she holds herself.
    assert onward.json()["groups"] == ["deal_desk"]
    held = (await client.get("/v1/me/delegation", headers=people.headers("carl"))).json()
    assert [(d["delegator"], d["groups"]) for d in held["held"]] == [("dana", ["deal_desk"])]

    assert await queue_ids(client, people, "carl") == []
    refused = await approve(client, people, "carl", request_id)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    not_theirs = await client.get(
        "/v1/approvals", params={"group": "sales_director"}, headers=people.headers("carl")
    )
    assert not_theirs.status_code == 403
    assert await deal_status(client, people, DEAL) == "in_review"

    # Someone who holds no group of their own has nothing to delegate.
    people.create("gus", Role.approver, [])
    nothing = await delegate(client, people, "gus", "carl")
    assert nothing.status_code == 422
    assert fields(nothing) == ["delegate"]


async def test_a_delegation_gives_power_only_inside_its_window(
    client: httpx.AsyncClient, people: Keys, db: Database
) -> None:
    request_id = await sales_director_request(client, people)
    later = await delegate(client, people, "sam", "dana", **window(24, 48))
    assert later.status_code == 201, later.text
    assert later.json()["active"] is False
    assert await queue_ids(client, people, "dana") == []
    assert (await approve(client, people, "dana", request_id)).status_code == 403
    held = (await client.get("/v1/me/delegation", headers=people.headers("dana"))).json()
    assert held["held"] == []

    # Move the window into the past (a week away that is over).
    sam = await key_id(client, people, "sam")
    with db.unit_of_work() as session:
        session.execute(
            update(Delegation)
            .where(Delegation.delegator_key_id == sam)
            .values(starts_at=utcnow() - timedelta(days=8), ends_at=utcnow() - timedelta(days=1))
        )
    assert await queue_ids(client, people, "dana") == []
    assert (await approve(client, people, "dana", request_id)).status_code == 403
    mine = (await client.get("/v1/me/delegation", headers=people.headers("sam"))).json()
    assert mine["given"]["active"] is False
    assert await deal_status(client, people, DEAL) == "in_review"


@pytest.mark.parametrize(
    ("to", "times", "field"),
    [
        ("sam", None, "delegate"),
        ("nobody_by_that_name", None, "delegate"),
        ("dana", window(48, 24), "ends_at"),
        ("dana", window(-48, -24), "ends_at"),
        ("dana", {"starts_at": "tomorrow", "ends_at": "2030-01-01T00:00:00Z"}, "starts_at"),
    ],
    ids=["to-yourself", "unknown-name", "ends-before-it-starts", "already-over", "not-iso"],
)
async def test_a_bad_delegation_is_refused_naming_the_field(
    client: httpx.AsyncClient, people: Keys, to: str, times: dict[str, str] | None, field: str
) -> None:
    refused = await delegate(client, people, "sam", to, **(times or window()))
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert fields(refused) == [field]
    mine = (await client.get("/v1/me/delegation", headers=people.headers("sam"))).json()
    assert mine["given"] is None


async def test_a_revoked_key_cannot_be_a_delegate(client: httpx.AsyncClient, people: Keys) -> None:
    dana_id = await key_id(client, people, "dana")
    assert (
        await client.delete(f"/v1/api-keys/{dana_id}", headers=people.headers("admin"))
    ).status_code == 200
    refused = await delegate(client, people, "sam", "dana")
    assert refused.status_code == 422
    assert fields(refused) == ["delegate"]


async def test_times_without_a_zone_are_taken_as_utc(
    client: httpx.AsyncClient, people: Keys
) -> None:
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    given = await delegate(
        client, people, "sam", "dana",
        starts_at=(now - timedelta(hours=1)).isoformat(),
        ends_at=iso((now + timedelta(days=2)).replace(tzinfo=UTC)),
    )  # fmt: skip
    assert given.status_code == 201, given.text
    assert given.json()["active"] is True
    assert given.json()["starts_at"].startswith((now - timedelta(hours=1)).isoformat())
    ends_first = await delegate(
        client, people, "sam", "dana",
        starts_at=iso((now + timedelta(days=2)).replace(tzinfo=UTC)),
        ends_at=(now + timedelta(days=1)).isoformat(),
    )  # fmt: skip
    assert ends_first.status_code == 422, ends_first.text
    assert fields(ends_first) == ["ends_at"]


async def test_ending_a_delegation_takes_the_power_away(
    client: httpx.AsyncClient, people: Keys
) -> None:
    request_id = await sales_director_request(client, people)
    assert (await delegate(client, people, "sam", "dana")).status_code == 201
    assert await queue_ids(client, people, "dana") == [request_id]
    ended = await client.delete("/v1/me/delegation", headers=people.headers("sam"))
    assert ended.status_code == 204
    assert await queue_ids(client, people, "dana") == []
    assert (await approve(client, people, "dana", request_id)).status_code == 403
    again = await client.delete("/v1/me/delegation", headers=people.headers("sam"))
    assert again.status_code == 404
    audit = await client.get(
        "/v1/audit", params={"action": "delegation.removed"}, headers=people.headers("admin")
    )
    assert [e["entity_id"] for e in audit.json()["items"]] == [
        str(await key_id(client, people, "sam"))
    ]
    # Sam decides himself again.
    assert (await approve(client, people, "sam", request_id)).status_code == 200


async def key_id(
    client: httpx.AsyncClient, keys: Keys, name: str, *, active_only: bool = False
) -> int:
    listed = await client.get("/v1/api-keys", headers=keys.headers("admin"))
    assert listed.status_code == 200, listed.text
    (found,) = [
        k["id"]
        for k in listed.json()["items"]
        if k["name"] == name and not (active_only and k["revoked_at"])
    ]
    return int(found)


async def reassign(
    client: httpx.AsyncClient, keys: Keys, who: str, request_id: int, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/approvals/{request_id}/reassign",
        json={"group": "finance", "reason": "Sam left the company", **body},
        headers=keys.headers(who),
    )


async def test_admin_reassigns_only_when_the_group_has_no_one_left(
    client: httpx.AsyncClient, people: Keys
) -> None:
    request_id = await sales_director_request(client, people)
    assert (await reassign(client, people, "approver_finance", request_id)).status_code == 403
    busy = await reassign(client, people, "admin", request_id)
    assert busy.status_code == 409, busy.text
    assert busy.headers["content-type"] == "application/problem+json"

    sam_id = await key_id(client, people, "sam")
    revoked = await client.delete(f"/v1/api-keys/{sam_id}", headers=people.headers("admin"))
    assert revoked.status_code == 200, revoked.text
    assert (await client.get("/v1/approvals", headers=people.headers("sam"))).status_code == 401

    empty = await reassign(client, people, "admin", request_id, group="nobody_here")
    assert empty.status_code == 422
    assert fields(empty) == ["group"]
    assert await queue_ids(client, people, "approver_finance") == []

    moved = await reassign(client, people, "admin", request_id)
    assert moved.status_code == 200, moved.text
    assert moved.json()["group"] == "finance"
    assert moved.json()["chain_group"] == "sales_director"
    assert moved.json()["status"] == "pending"
    assert await queue_ids(client, people, "approver_finance") == [request_id]
    assert (await approve(client, people, "approver_finance", request_id)).status_code == 200
    assert await deal_status(client, people, DEAL) == "approved"
    audit = await client.get(
        "/v1/audit",
        params={"action": "approval.reassigned", "entity_id": str(request_id)},
        headers=people.headers("admin"),
    )
    (entry,) = audit.json()["items"]
    assert entry["after"]["reason"] == "Sam left the company"
    assert entry["before"]["group"] == "sales_director"


async def test_a_reassigned_later_step_opens_with_its_new_groups_sla(
    client: httpx.AsyncClient, people: Keys
) -> None:
    # Uncapped liability needs legal, then the general counsel, who has no key at all.
    created = await client.put(
        f"/v1/deals/{DEAL}",
        json={"attributes": {"region": "NA"}, "terms": {"uncapped_liability": True}},
        headers=people.headers("rep"),
    )
    assert created.status_code == 201, created.text
    submitted = await client.post(f"/v1/deals/{DEAL}/submit", headers=people.headers("rep"))
    steps = {(r["group"], r["step"]): r for r in submitted.json()["requests"]}
    assert steps[("general_counsel", 2)]["status"] == "waiting"
    counsel_id = steps[("general_counsel", 2)]["id"]
    desk = await client.put(
        "/v1/approval-groups/deal_desk", json={"sla_hours": 2}, headers=people.headers("admin")
    )
    assert desk.status_code == 200, desk.text  # created for Dana's key by the keys fixture

    moved = await reassign(client, people, "admin", counsel_id, group="deal_desk")
    assert moved.status_code == 200, moved.text
    assert (moved.json()["group"], moved.json()["status"]) == ("deal_desk", "waiting")
    assert await queue_ids(client, people, "dana") == []

    legal_id = steps[("legal", 1)]["id"]
    assert (await approve(client, people, "approver_legal", legal_id)).status_code == 200
    assert await queue_ids(client, people, "dana") == [counsel_id]
    opened = (
        await client.get(f"/v1/approvals/{counsel_id}", headers=people.headers("dana"))
    ).json()
    assert opened["status"] == "pending"
    due = datetime.fromisoformat(opened["due_at"]) - datetime.fromisoformat(opened["opened_at"])
    assert due == timedelta(hours=2)
    assert (await approve(client, people, "dana", counsel_id)).status_code == 200
    assert await deal_status(client, people, DEAL) == "approved"


async def test_a_reassigned_step_reopened_by_a_recheck_keeps_its_new_groups_sla(
    client: httpx.AsyncClient, people: Keys
) -> None:
    # A 2.5x liability cap needs legal, then the general counsel (who has no key).
    await client.put(
        f"/v1/deals/{DEAL}",
        json={"attributes": {"region": "NA"}, "terms": {"liability_cap_multiple": "2.5"}},
        headers=people.headers("rep"),
    )
    submitted = await client.post(f"/v1/deals/{DEAL}/submit", headers=people.headers("rep"))
    steps = {(r["group"], r["step"]): r["id"] for r in submitted.json()["requests"]}
    await client.put(
        "/v1/approval-groups/deal_desk", json={"sla_hours": 2}, headers=people.headers("admin")
    )
    assert (await approve(client, people, "approver_legal", steps[("legal", 1)])).status_code == 200
    # The rep asks for more: legal must look again, so the counsel's step waits once more.
    worse = await client.patch(
        f"/v1/deals/{DEAL}",
        json={"terms": {"liability_cap_multiple": "2.8"}},
        headers=people.headers("rep"),
    )
    assert worse.status_code == 200, worse.text
    counsel_id = steps[("general_counsel", 2)]
    moved = await reassign(client, people, "admin", counsel_id, group="deal_desk")
    assert (moved.json()["group"], moved.json()["status"]) == ("deal_desk", "waiting")
    # Back to what legal approved: the deal desk's step opens at once, on its own SLA.
    await client.patch(
        f"/v1/deals/{DEAL}",
        json={"terms": {"liability_cap_multiple": "2.5"}},
        headers=people.headers("rep"),
    )
    assert await queue_ids(client, people, "dana") == [counsel_id]
    opened = (
        await client.get(f"/v1/approvals/{counsel_id}", headers=people.headers("dana"))
    ).json()
    due = datetime.fromisoformat(opened["due_at"]) - datetime.fromisoformat(opened["opened_at"])
    assert due == timedelta(hours=2)


async def test_a_revoked_delegators_delegation_carries_nothing(
    client: httpx.AsyncClient, people: Keys
) -> None:
    request_id = await sales_director_request(client, people)
    assert (await delegate(client, people, "sam", "dana")).status_code == 201
    assert await queue_ids(client, people, "dana") == [request_id]

    sam_id = await key_id(client, people, "sam")
    revoked = await client.delete(f"/v1/api-keys/{sam_id}", headers=people.headers("admin"))
    assert revoked.status_code == 200, revoked.text
    # Sam is gone: Dana no longer acts for the sales directors, and the group has no one left,
    # so an admin may move the request.
    assert await queue_ids(client, people, "dana") == []
    assert (await approve(client, people, "dana", request_id)).status_code == 403
    moved = await reassign(client, people, "admin", request_id)
    assert moved.status_code == 200, moved.text


async def test_a_delegation_follows_the_key_not_its_name(
    client: httpx.AsyncClient, people: Keys
) -> None:
    """A key that merely carries the delegate's name gains nothing."""
    request_id = await sales_director_request(client, people)
    given = await delegate(client, people, "sam", "dana")
    assert given.status_code == 201, given.text
    dana = await key_id(client, people, "dana")
    assert given.json()["delegate_key_id"] == dana

    # While Dana's key is active, no other key may take her name.
    twin = await client.post(
        "/v1/api-keys",
        json={"name": "dana", "role": "approver", "groups": ["legal"]},
        headers=people.headers("admin"),
    )
    assert twin.status_code == 409, twin.text
    assert twin.headers["content-type"] == "application/problem+json"
    assert fields(twin) == ["name"]

    # Once her key is revoked the name is free again, but the new "dana" is someone else.
    revoked = await client.delete(f"/v1/api-keys/{dana}", headers=people.headers("admin"))
    assert revoked.status_code == 200, revoked.text
    people.create("dana", Role.approver, ["legal"])
    assert await key_id(client, people, "dana", active_only=True) != dana
    assert await queue_ids(client, people, "dana") == []
    assert (await approve(client, people, "dana", request_id)).status_code == 403
    held = (await client.get("/v1/me/delegation", headers=people.headers("dana"))).json()
    assert held["held"] == []
    mine = (await client.get("/v1/me/delegation", headers=people.headers("sam"))).json()
    assert (mine["given"]["delegate"], mine["given"]["delegate_key_id"]) == ("dana", dana)
    assert await deal_status(client, people, DEAL) == "in_review"


async def test_a_delegate_may_be_named_by_key_id(client: httpx.AsyncClient, people: Keys) -> None:
    request_id = await sales_director_request(client, people)
    dana = await key_id(client, people, "dana")
    given = await client.put(
        "/v1/me/delegation",
        json={"delegate_key_id": dana, **window()},
        headers=people.headers("sam"),
    )
    assert given.status_code == 201, given.text
    body = given.json()
    sam = await key_id(client, people, "sam")
    assert (body["delegator"], body["delegator_key_id"]) == ("sam", sam)
    assert (body["delegate"], body["delegate_key_id"]) == ("dana", dana)
    assert (await approve(client, people, "dana", request_id)).status_code == 200

    for payload, field in (
        ({"delegate_key_id": 2_000_000_000}, "delegate_key_id"),
        ({"delegate_key_id": sam}, "delegate_key_id"),
        ({"delegate": "dana", "delegate_key_id": dana}, "delegate"),
        ({}, "delegate"),
    ):
        refused = await client.put(
            "/v1/me/delegation", json={**payload, **window()}, headers=people.headers("sam")
        )
        assert refused.status_code == 422, (payload, refused.text)
        assert fields(refused) == [field], payload
