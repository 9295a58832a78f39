"""`governance serve` against clients that misbehave on the wire: slow or endless headers, a body
that never comes, uploads without a key. Raw sockets against a real server process."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.served import Served, serve

HEADER_TIMEOUT = 1.5
BODY_TIMEOUT = 1.5
# Generous: the deadline plus a loaded machine's scheduling, far below "held for a minute".
PROMPTLY = 6.0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(
        tmp_path_factory.mktemp("server"),
        GOVERNANCE_SERVER__HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
        GOVERNANCE_SERVER__BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
        GOVERNANCE_SERVER__MAX_HEADER_BYTES="4096",
    ) as running:
        yield running


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return received, time.monotonic() - started


def read_response(sock: socket.socket) -> bytes:
    """One whole response (a Content-Length body) from a kept-alive connection."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_partial_headers_are_cut_off_after_the_header_timeout(served: Served) -> None:
    with served.connect(timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        received, waited = read_until_closed(sock)
    assert waited < PROMPTLY, waited
    assert received.startswith(b"HTTP/1.1 408 "), received


def test_a_connection_that_sends_nothing_is_closed(served: Served) -> None:
    with served.connect(timeout=30) as sock:
        received, waited = read_until_closed(sock)
    assert waited < PROMPTLY, waited
    assert received.startswith(b"HTTP/1.1 408 "), received


def test_headers_trickled_in_a_line_at_a_time_still_meet_the_deadline(served: Served) -> None:
    # Every line arrives well within the timeout; together they take longer than it.
    with served.connect(timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        try:
            for n in range(40):
                sock.sendall(f"X-Line-{n}: 1\r\n".encode())
                time.sleep(0.25)
        except (BrokenPipeError, ConnectionResetError):
            pass
        received, _ = read_until_closed(sock)
    assert time.monotonic() - started < PROMPTLY + 1
    assert received.startswith(b"HTTP/1.1 408 "), received


def test_a_body_that_never_arrives_is_cut_off_after_the_body_timeout(served: Served) -> None:
    head = (
        f"POST /v1/checks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {served.key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    with served.connect(timeout=30) as sock:
        sock.sendall(head.encode())
        received, waited = read_until_closed(sock)
    assert waited < PROMPTLY, waited
    assert received.startswith(b"HTTP/1.1 408 "), received


def test_oversized_headers_are_431(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 8000)
        sock.sendall(b"\r\n\r\n")
        received, _ = read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 431 "), received


def test_a_prompt_client_on_a_kept_alive_connection_is_served(served: Served) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with served.connect() as sock:
        for _ in range(3):
            sock.sendall(request)
            answer = read_response(sock)
            assert answer.startswith(b"HTTP/1.1 200 "), answer
            time.sleep(HEADER_TIMEOUT * 0.6)  # idle between requests is the keep-alive's


def test_an_upload_without_a_key_is_answered_before_it_is_sent(served: Served) -> None:
    # Only the headers of a 100 MB upload: the 401 comes without waiting for a byte of the body.
    head = (
        "PUT /v1/deals/0065g00000AbCdEAAZ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
    )
    with served.connect() as sock:
        sock.sendall(head.encode())
        received, waited = read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 401 "), received
    assert waited < BODY_TIMEOUT  # answered at once, not when the body timeout ran out
    assert b"connection: close" in received.lower()
    # With a key, the declared size alone earns the 413.
    head = head.replace("Host:", f"Authorization: Bearer {served.key}\r\nHost:")
    with served.connect() as sock:
        sock.sendall(head.encode())
        received, waited = read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 413 "), received
    assert waited < BODY_TIMEOUT


def test_the_server_does_not_name_itself(served: Served) -> None:
    request = urllib.request.Request(
        f"{served.base}/v1/checks",
        data=json.dumps({"terms": {"discount_pct": "18"}}).encode(),
        headers={"Authorization": f"Bearer {served.key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
        headers = response.headers
    assert headers.get("server") is None
    assert headers.get("date")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"


def test_the_slow_clients_did_not_stop_the_server(served: Served, tmp_path: Path) -> None:
    with urllib.request.urlopen(f"{served.base}/healthz", timeout=5) as response:
        assert response.status == 200
    assert served.process.poll() is None
