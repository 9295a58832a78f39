"""The gate every request passes before routing: the API key is verified before any body is
read, bodies are capped while they stream in, and every response gets the security headers.

A pure ASGI middleware, outermost in the app (outside even the handler of unexpected errors), so
a refusal costs no body parsing and no routing, and no response leaves without its headers. A
request that is refused while its body is still on the way is answered with `Connection: close`,
so the server stops reading the rest.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from governance.auth.dependencies import PRINCIPAL_SCOPE_KEY, KeyCache, principal_for
from governance.db import Database
from governance.errors import ContentTooLarge, GovernanceError, error_response

API_PREFIX = "/v1/"
IMPORT_PATH = "/v1/playbooks/import"
# Salesforce Outbound Messages cannot send a bearer key; the route checks their shared secret
# before it reads the body.
KEYLESS_API_PATHS = frozenset({"/v1/salesforce/outbound-messages"})

CLOSE = {"Connection": "close"}
NOSNIFF = (b"x-content-type-options", b"nosniff")
# API answers carry secrets (a new key, once), deal terms and approvals: no cache keeps them.
NO_STORE = (b"cache-control", b"no-store")


class _BodyTooLarge(Exception):
    """Raised from `receive` once more bytes arrived than the route accepts."""


class Gate:
    """Verify the key, cap the body, add the security headers (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        key_cache: KeyCache,
        db: Database,
        max_body_bytes: int,
        max_import_body_bytes: int,
    ) -> None:
        self.app = app
        self.key_cache = key_cache
        self.db = db
        self.max_body_bytes = max_body_bytes
        self.max_import_body_bytes = max_import_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        api = path.startswith(API_PREFIX)
        send = _with_security_headers(send, no_store=api)
        authorization = ""
        declared: int | None = None
        has_body = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-length":
                declared = int(value) if value.isdigit() else None
                has_body = has_body or declared != 0
            elif name == b"transfer-encoding":
                has_body = True
        limit = self.max_import_body_bytes if path == IMPORT_PATH else self.max_body_bytes
        try:
            if api and path not in KEYLESS_API_PATHS:
                scope[PRINCIPAL_SCOPE_KEY] = await principal_for(
                    authorization, self.key_cache, self.db
                )
            if declared is not None and declared > limit:
                raise _too_large(limit)
        except GovernanceError as exc:
            await _refuse(exc, has_body, scope, receive, send)
            return
        await self._capped(limit, scope, receive, send)

    async def _capped(self, limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, counting body bytes as they arrive; past `limit`, answer 413 instead."""
        received = 0
        too_large = False
        started = False

        async def capped_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return  # the app's answer to _BodyTooLarge (a 400, a 500): the 413 replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, capped_receive, guarded_send)
        except Exception:
            if not too_large or started:
                raise
        if too_large and not started:
            await _refuse(_too_large(limit), True, scope, receive, send)


def _too_large(limit: int) -> ContentTooLarge:
    return ContentTooLarge(f"this route accepts bodies of at most {limit} bytes")


async def _refuse(
    exc: GovernanceError, body_pending: bool, scope: Scope, receive: Receive, send: Send
) -> None:
    if body_pending:
        exc.headers = {**(exc.headers or {}), **CLOSE}
    await error_response(exc)(scope, receive, send)


def _with_security_headers(send: Send, *, no_store: bool) -> Send:
    """`send`, adding nosniff to every response and no-store to API responses."""

    async def secured(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            if not any(name.lower() == NOSNIFF[0] for name, _ in headers):
                headers.append(NOSNIFF)  # once, even when an inner layer set it already
            if no_store and not any(name.lower() == b"cache-control" for name, _ in headers):
                headers.append(NO_STORE)
            message = {**message, "headers": headers}
        await send(message)

    return secured
