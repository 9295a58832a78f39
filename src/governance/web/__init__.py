"""The web console: server-rendered pages (Jinja2 + htmx) on the same services as the API.

`install(app, settings)` adds the pages, the static files (htmx, the stylesheet, the vendored
Swagger UI and ReDoc) and the console's security headers to the app.
"""

from __future__ import annotations

import inspect

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from governance.settings import Settings
from governance.web.rendering import STATIC, render_page
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


# Paths a program calls: their 404 stays problem+json whoever asks.
NOT_PAGES = ("/v1/", "/static/", "/metrics", "/healthz", "/readyz", "/openapi.json")


def _is_page_request(request: Request) -> bool:
    """A browser asking for a page: a mistyped or stale console address."""
    return (
        request.method in ("GET", "HEAD")
        and not request.url.path.startswith(NOT_PAGES)
        and "text/html" in request.headers.get("accept", "")
        and request.headers.get("hx-request") != "true"
    )


def _page_not_found(app: FastAPI) -> None:
    """A browser that asks for an address the console does not have gets a page that says so,
    with the way back, rather than the API's problem+json; programs keep the problem."""
    problem = app.exception_handlers[StarletteHTTPException]

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404 and _is_page_request(request):
            return render_page(
                request,
                "error.html",
                status_code=404,
                title="No such page",
                detail=f"The console has no page at {request.url.path}. The menu lists them all.",
            )
        answer = problem(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(StarletteHTTPException, handler)


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the console from `app`: pages, static files, session signer, security headers."""
    secret = settings.session_secret.get_secret_value() if settings.session_secret else None
    app.state.web_sessions = Sessions(app.state.db, secret, settings.session_hours)
    app.include_router(router)
    app.mount("/static", CachedStaticFiles(directory=STATIC), name="static")
    app.add_middleware(ConsoleHeaders, frame_ancestors=settings.frame_ancestors)
    _page_not_found(app)


__all__ = ["install"]
