"""Security headers for everything the console serves (pages, static files, API docs).

Pages allow only the app's own origin: no inline script or style, no other host. The API docs
pages (Swagger UI, ReDoc) start their bundle with a short inline script, allowed by its hash,
and style themselves at run time, so they get their own, slightly wider policy.
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Paths the console does not own: the API and its probes keep their own headers.
API_PREFIX = "/v1/"
NOT_CONSOLE = frozenset({"/healthz", "/readyz", "/openapi.json"})


def is_console_path(path: str) -> bool:
    return not path.startswith(API_PREFIX) and path not in NOT_CONSOLE


def page_policy(frame_ancestors: str) -> str:
    """The Content-Security-Policy of console pages."""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
        f"object-src 'none'; frame-ancestors {frame_ancestors}"
    )


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_policy(html: str, frame_ancestors: str) -> str:
    """The policy of an API docs page: its own inline scripts by hash, run-time styles, and
    ReDoc's search worker (a blob: URL)."""
    sources = ["'self'"] + [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    ]
    return (
        f"default-src 'self'; script-src {' '.join(sources)}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
        "form-action 'self'; base-uri 'none'; object-src 'none'; "
        f"frame-ancestors {frame_ancestors}"
    )


class ConsoleHeaders:
    """ASGI middleware: the console's security headers on every console response.

    A response that set its own Content-Security-Policy (the docs pages) keeps it.
    """

    def __init__(self, app: ASGIApp, frame_ancestors: str) -> None:
        self.app = app
        self.headers = [
            ("Content-Security-Policy", page_policy(frame_ancestors)),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "same-origin"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if frame_ancestors.strip() == "'self'":
            # For browsers that predate frame-ancestors; omitted once other origins may embed.
            self.headers.append(("X-Frame-Options", "SAMEORIGIN"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_console_path(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    if name not in headers:
                        headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
