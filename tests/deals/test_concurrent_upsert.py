"""Concurrent first PUTs of one new deal over real HTTP: every caller succeeds, one creates it.

The app runs under uvicorn on a loopback port; the callers fire from threads released by one
barrier, each on its own connection (so each request has its own session). The run that counts
is on PostgreSQL, where the transactions really overlap; on SQLite the writes serialise and the
same must hold.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from tests.conftest import Keys

ROUNDS = 6
CALLERS = 6


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, in a thread of this process."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(3000):
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_concurrent_first_puts_of_one_deal_all_succeed_and_one_creates_it(
    base_url: str, keys: Keys
) -> None:
    for round_ in range(ROUNDS):
        path = f"/v1/deals/0065g00000Race{round_:04d}"
        barrier = threading.Barrier(CALLERS)

        def put(
            caller: int, path: str = path, barrier: threading.Barrier = barrier
        ) -> httpx.Response:
            with httpx.Client(base_url=base_url, timeout=60) as client:
                assert client.get("/healthz").status_code == 200  # connected before the start
                barrier.wait(timeout=30)
                return client.put(
                    path,
                    json={"name": f"caller {caller}", "attributes": {"region": "EMEA"}},
                    headers=keys.headers("rep"),
                )

        with ThreadPoolExecutor(CALLERS) as pool:
            responses = list(pool.map(put, range(CALLERS)))

        codes = sorted(r.status_code for r in responses)
        assert codes == [200] * (CALLERS - 1) + [201], [r.text for r in responses]
        with httpx.Client(base_url=base_url, timeout=30) as client:
            deal = client.get(path, headers=keys.headers("rep")).json()
            assert deal["name"] in {f"caller {i}" for i in range(CALLERS)}
            audit = client.get(
                "/v1/audit",
                params={"entity_type": "deal", "entity_id": deal["external_id"], "limit": 100},
                headers=keys.headers("admin"),
            ).json()["items"]
        actions = sorted(entry["action"] for entry in audit)
        assert actions == ["deal.created"] + ["deal.updated"] * (CALLERS - 1)
