"""Approvers racing each other over real HTTP: one decision per request, no lost deal update.

The app runs under uvicorn on a loopback port and the deciders fire from two threads released
by one barrier, so both decisions are in flight together. Runs on both databases. The run that
counts is on PostgreSQL (GOVERNANCE_TEST_DATABASE_URL set), where the transactions really
overlap; on SQLite the app serialises writes and every assertion must hold all the same.
Each race is repeated on fresh deals so that an unlucky interleaving has many chances to show.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from tests.conftest import Keys
from tests.driver import add_people, deal_path

ROUNDS = 10
Call = tuple[str, int, str, dict[str, Any]]  # who, request id, If-Match, decision body


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, in a thread of this process."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(3000):
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def people(keys: Keys) -> Keys:
    return add_people(keys, "lee_legal", "lou_legal", "sam_sales_director", "rita_rep")


@pytest.fixture
def http(base_url: str, people: Keys, demo_yaml: str) -> Iterator[httpx.Client]:
    """A client of the live server, with the demo playbook published through it."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        published = client.post(
            "/v1/playbooks/import?publish=true",
            content=demo_yaml,
            headers={**people.headers("admin"), "Content-Type": "application/yaml"},
        )
        assert published.status_code == 201, published.text
        yield client


def submit(http: httpx.Client, keys: Keys, path: str, terms: dict[str, Any]) -> dict[str, Any]:
    """Create the deal as the rep and submit it; the submission's requests by chain group."""
    rep = keys.headers("rita_rep")
    created = http.put(path, json={"name": "Race", "terms": terms}, headers=rep)
    assert created.status_code == 201, created.text
    submitted = http.post(f"{path}/submit", headers=rep)
    assert submitted.status_code == 200, submitted.text
    body: dict[str, Any] = submitted.json()
    assert body["deal_status"] == "in_review"
    return {r["chain_group"]: r for r in body["requests"]}


def etag_of(http: httpx.Client, keys: Keys, who: str, request_id: int) -> str:
    response = http.get(f"/v1/approvals/{request_id}", headers=keys.headers(who))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "pending"
    return response.headers["ETag"]


def race(base_url: str, keys: Keys, calls: list[Call]) -> list[httpx.Response]:
    """POST every (who, request id, ETag, body) decision at the same moment, one thread each.

    Each thread opens its connection first and then waits at the barrier, so the requests
    leave together rather than one connection set-up apart.
    """
    barrier = threading.Barrier(len(calls))

    def decide(call: Call) -> httpx.Response:
        who, request_id, etag, body = call
        with httpx.Client(base_url=base_url, timeout=30) as client:
            assert client.get("/healthz").status_code == 200
            barrier.wait(timeout=30)
            return client.post(
                f"/v1/approvals/{request_id}/decision",
                json=body,
                headers={**keys.headers(who), "If-Match": etag},
            )

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(decide, calls))


def decided_entries(http: httpx.Client, keys: Keys, request_id: int) -> list[dict[str, Any]]:
    response = http.get(
        "/v1/audit",
        params={"entity_type": "approval_request", "entity_id": str(request_id), "limit": 500},
        headers=keys.headers("admin"),
    )
    assert response.status_code == 200, response.text
    return [e for e in response.json()["items"] if e["action"] == "approval.decided"]


def test_two_approvers_of_one_group_deciding_at_once_make_exactly_one_decision(
    http: httpx.Client, base_url: str, people: Keys
) -> None:
    keys = people
    for i in range(ROUNDS):
        path = deal_path("RaceAA", i)
        requests = submit(http, keys, path, {"liability_cap_multiple": "1.5"})
        assert set(requests) == {"legal"}
        request_id = requests["legal"]["id"]
        etag = etag_of(http, keys, "lee_legal", request_id)
        # Who approves and who rejects alternates, so neither side is always the first.
        approver, rejecter = ("lee_legal", "lou_legal") if i % 2 else ("lou_legal", "lee_legal")
        responses = race(
            base_url,
            keys,
            [
                (approver, request_id, etag, {"decision": "approve"}),
                (rejecter, request_id, etag, {"decision": "reject", "reason": "Cap too high"}),
            ],
        )

        codes = [r.status_code for r in responses]
        assert sorted(codes) in ([200, 409], [200, 412]), [r.text for r in responses]
        won = codes.index(200)
        winner = (approver, rejecter)[won]
        outcome = ("approved", "rejected")[won]
        loser = responses[1 - won]
        assert loser.headers["content-type"] == "application/problem+json"
        assert loser.json()["status"] == loser.status_code
        winning = responses[won].json()
        assert winning["status"] == outcome
        assert winning["decision"]["decided_by"].endswith(f":{winner}")

        # The request carries the winner's decision and nothing of the loser's.
        read = http.get(f"/v1/approvals/{request_id}", headers=keys.headers("lee_legal"))
        assert read.status_code == 200, read.text
        request = read.json()
        assert request["status"] == outcome
        assert request["decision"]["decided_by"].endswith(f":{winner}")
        assert read.headers["ETag"] == responses[won].headers["ETag"]
        assert request["version"] == requests["legal"]["version"] + 1
        summaries = http.get(f"{path}/approvals", headers=keys.headers("rita_rep")).json()
        assert [(s["id"], s["status"]) for s in summaries] == [(request_id, outcome)]

        # The deal followed the winner alone.
        deal = http.get(path, headers=keys.headers("rita_rep")).json()
        assert deal["status"] == outcome

        # One decision in the audit log, by the winner.
        decided = decided_entries(http, keys, request_id)
        assert len(decided) == 1, decided
        assert decided[0]["actor"].endswith(f":{winner}")
        assert decided[0]["after"]["status"] == outcome
        assert decided[0]["after"]["deal_status"] == outcome

        # The loser, reading again, is told the request is decided.
        again = http.post(
            f"/v1/approvals/{request_id}/decision",
            json={"decision": "approve"},
            headers={
                **keys.headers((approver, rejecter)[1 - won]),
                "If-Match": read.headers["ETag"],
            },
        )
        assert again.status_code == 409, again.text


def test_two_groups_approving_their_requests_of_one_deal_at_once_approve_the_deal(
    http: httpx.Client, base_url: str, people: Keys
) -> None:
    """Each decision sees the other's: the deal ends approved, never stuck in review."""
    keys = people
    for i in range(ROUNDS):
        path = deal_path("RaceBB", i)
        # 20% discount: over the band (15), within the sales director's tier (25); a 1.5x cap
        # needs legal. Both requests are open at once.
        requests = submit(http, keys, path, {"discount_pct": 20, "liability_cap_multiple": "1.5"})
        assert set(requests) == {"sales_director", "legal"}
        assert {r["status"] for r in requests.values()} == {"pending"}
        legal_id, sd_id = requests["legal"]["id"], requests["sales_director"]["id"]
        approve = {"decision": "approve"}
        calls: list[Call] = [
            ("lee_legal", legal_id, etag_of(http, keys, "lee_legal", legal_id), approve),
            (
                "sam_sales_director",
                sd_id,
                etag_of(http, keys, "sam_sales_director", sd_id),
                approve,
            ),
        ]
        if i % 2:  # neither side always goes first
            calls.reverse()
        responses = race(base_url, keys, calls)

        assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
        deal = http.get(path, headers=keys.headers("rita_rep")).json()
        assert deal["status"] == "approved"
        summaries = http.get(f"{path}/approvals", headers=keys.headers("rita_rep")).json()
        assert {s["id"]: s["status"] for s in summaries} == {
            legal_id: "approved",
            sd_id: "approved",
        }
        # Each request has one decision, and the later of the two saw the deal approved.
        decided = [decided_entries(http, keys, rid) for rid in (legal_id, sd_id)]
        assert [len(d) for d in decided] == [1, 1], decided
        later = max((d[0] for d in decided), key=lambda e: e["id"])
        assert later["after"]["deal_status"] == "approved"
        # Nothing is left in either approver's queue.
        for who in ("lee_legal", "sam_sales_director"):
            queue = http.get("/v1/approvals", headers=keys.headers(who))
            assert queue.status_code == 200, queue.text
            assert queue.json()["items"] == []
