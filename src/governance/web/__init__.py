"""The web console: server-rendered pages (Jinja2 + htmx) on the same services as the API.

`install(app, settings)` adds the pages, the static files (htmx, the stylesheet, the vendored
Swagger UI and ReDoc) and the console's security headers to the app.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from governance.settings import Settings
from governance.web.rendering import STATIC
from governance.web.router import router
from governance.web.security import ConsoleHeaders
from governance.web.sessions import Sessions


class CachedStaticFiles(StaticFiles):
    """Static files; a fingerprinted URL (`?v=`) never changes, so browsers keep it a year."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        fingerprinted = b"v=" in scope.get("query_string", b"")
        response.headers["Cache-Control"] = (
            "public, max-age=31536000, immutable" if fingerprinted else "public, max-age=300"
        )
        return response


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the console from `app`: pages, static files, session signer, security headers."""
    secret = settings.session_secret.get_secret_value() if settings.session_secret else None
    app.state.web_sessions = Sessions(app.state.db, secret, settings.session_hours)
    app.include_router(router)
    app.mount("/static", CachedStaticFiles(directory=STATIC), name="static")
    app.add_middleware(ConsoleHeaders, frame_ancestors=settings.frame_ancestors)


__all__ = ["install"]
