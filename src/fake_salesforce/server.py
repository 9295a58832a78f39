"""The HTTP plumbing: a threaded server on loopback whose handler hands every request to
``FakeSalesforce``, and a ``requests`` session that sends everything to it."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import traceback
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from fake_salesforce.responses import error_response

if TYPE_CHECKING:
    import requests

    from fake_salesforce.org import FakeSalesforce


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fake: FakeSalesforce) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def track(self, connection: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # headers and body leave in one write (no Nagle / delayed-ACK stalls)
    server_version = "FakeSalesforce/1.0"
    sys_version = ""

    @property
    def fake(self) -> FakeSalesforce:
        return cast(Server, self.server).fake

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cast(Server, self.server).track(self.connection, True)

    def finish(self) -> None:
        cast(Server, self.server).track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def date_time_string(self, timestamp: float | None = None) -> str:
        return formatdate(self.fake.clock.now().timestamp(), usegmt=True)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_PATCH(self) -> None:
        self._answer("PATCH")

    def do_PUT(self) -> None:
        self._answer("PUT")

    def do_DELETE(self) -> None:
        self._answer("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, method: str) -> None:
        fake = self.fake
        body = self._read_body()
        headers = {key.lower(): value for key, value in self.headers.items()}
        try:
            response = fake._handle(method, self.path, headers, body)
        except Exception:
            detail = traceback.format_exc()
            with fake._lock:
                fake._internal_errors.append(detail)
            print(f"fake_salesforce: internal error\n{detail}", file=sys.stderr)
            response = error_response(
                500, "UNKNOWN_EXCEPTION", "fake Salesforce bug: " + detail[-300:]
            )
        if response.disconnect:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(response.body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True


def rewriting_session(base_url: str) -> requests.Session:
    import requests

    class RewritingSession(requests.Session):
        """Sends every request to the fake, whatever host or scheme simple-salesforce built."""

        def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            parts = urlsplit(request.url or "")
            request.url = base_url + parts.path + (f"?{parts.query}" if parts.query else "")
            kwargs["verify"] = False
            return super().send(request, **kwargs)

    session = RewritingSession()
    session.trust_env = False  # no proxies for loopback
    return session
