"""The outermost layer of the app: one request id per request, one access line, HTTP metrics.

The request id is the incoming `X-Request-ID` when it is sane, else a fresh one; it is echoed
in the response and set in the context every log line reads, so everything the request logs
(and every job it queues, which stores it) names it. The access line gives the method, the path
(secrets in its query string redacted by the log filter), the route template, the status, the
latency and the caller's key id and name; never the key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from governance.auth.dependencies import PRINCIPAL_SCOPE_KEY
from governance.auth.principal import Principal
from governance.observability import counters
from governance.observability.context import accepted_request_id, request_id_var

log = logging.getLogger("governance.access")
HEADER = b"x-request-id"
UNMATCHED = "unmatched"  # one label for every path no route serves, so scanners add no series


class AccessLog:
    """See the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Sequence[BaseRoute],
        name_span: Callable[[str, str], None] | None = None,
    ) -> None:
        self.app = app
        self.routes = routes
        self.name_span = name_span  # tracing's: names the request's span after its route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == HEADER), None)
        request_id = accepted_request_id(incoming.decode("latin-1") if incoming else None)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != HEADER]
                headers.append((HEADER, request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            self._record(scope, status, seconds)
            request_id_var.reset(token)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method: str = scope["method"]
        route = self._template(scope)
        counters.observe_request(method, route, status, seconds)
        if self.name_span is not None:
            self.name_span(method, route)
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope["path"] + (f"?{query}" if query else "")
        principal: Principal | None = scope.get(PRINCIPAL_SCOPE_KEY)
        log.info(
            "%s %s %s",
            method,
            path,
            status,
            extra={
                "method": method,
                "path": path,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "key_id": principal.key_id if principal else None,
                "key_name": principal.name if principal else None,
                "client": (scope.get("client") or ("-",))[0],
            },
        )

    def _template(self, scope: Scope) -> str:
        """The path template of the route that served the request (`/v1/deals/{external_id}`),
        found again for a request refused before routing."""
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path or "/"
        for candidate in self.routes:
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                found = getattr(candidate, "path", None)
                return found if isinstance(found, str) and found else UNMATCHED
        return UNMATCHED
