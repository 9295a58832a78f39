"""How `governance serve` runs uvicorn: its limits, and the deadlines uvicorn lacks.

uvicorn times out idle kept-alive connections only. A client that opens a connection and sends
its headers a byte at a time (or not at all), or trickles its body, holds a connection and a
task for as long as it likes, and uvicorn's fast parser (httptools) caps neither. The protocol
below adds three things to it: the request line and headers must arrive within
`header_timeout_seconds` and fit in `max_header_bytes`, and the body must arrive within
`body_timeout_seconds` of the headers. A client that misses a deadline gets 408, one whose
headers are too large 431, and the connection is closed.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from governance.logs import log_config
from governance.settings import ServerSettings, Settings, get_settings


class _HeadersTooLarge(Exception):
    """Raised from a parser callback to stop parsing; the parser reports it as a bad request."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines and a header size cap."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # Read here, in each worker process, as the app reads its own settings.
        limits: ServerSettings = get_settings().server
        self.header_timeout = limits.header_timeout_seconds
        self.body_timeout = limits.body_timeout_seconds
        self.max_header_bytes = limits.max_header_bytes
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._refusal: HTTPStatus | None = None

    # -- deadlines ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        if self._header_timer is None:  # a kept-alive connection's next request
            self._start_header_timer()

    def on_headers_complete(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if self._expects_body():
            self._body_timer = self.loop.call_later(
                self.body_timeout, self._expire, HTTPStatus.REQUEST_TIMEOUT, "request body"
            )
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    def _start_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(
            self.header_timeout, self._expire, HTTPStatus.REQUEST_TIMEOUT, "request headers"
        )

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = None

    def _expects_body(self) -> bool:
        for name, value in self.headers:
            if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
                return True
        return False

    def _expire(self, status: HTTPStatus, what: str) -> None:
        self._header_timer = self._body_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # The app, if it runs, sees a disconnect and its answer goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        self.logger.info("closing a connection: the %s did not arrive in time", what)
        self._answer_and_close(status, f"The {what} did not arrive in time.")

    # -- header size ----------------------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_header_bytes(self, count: int) -> None:
        self._header_bytes += count
        if self._header_bytes > self.max_header_bytes:
            self._refusal = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
            raise _HeadersTooLarge

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers any parser error 400; a callback's refusal answers for itself.
        if self._refusal is HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE:
            self._cancel_timers()
            self._answer_and_close(self._refusal, "The request headers are too large.")
            return
        super().send_400_response(msg)

    def _answer_and_close(self, status: HTTPStatus, text: str) -> None:
        body = text.encode("ascii")
        head = [f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode("ascii")]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(
            b"content-type: text/plain; charset=utf-8\r\n"
            b"x-content-type-options: nosniff\r\n"
            b"connection: close\r\n"
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n\r\n"
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options `governance serve` runs with (besides the app, host and port)."""
    server = settings.server
    return {
        "http": GuardedHttpToolsProtocol,
        "timeout_keep_alive": server.keep_alive_seconds,
        "limit_concurrency": server.limit_concurrency,
        "timeout_graceful_shutdown": server.graceful_shutdown_seconds,
        "proxy_headers": server.proxy_headers,
        "forwarded_allow_ips": server.forwarded_allow_ips,
        "server_header": False,  # what runs the service is nobody else's business
        "date_header": True,
        "log_level": settings.log_level.lower(),
        "log_config": log_config(settings),  # secrets redacted from every line
        "access_log": False,  # the app writes its own, with the request id (observability.access)
    }
