"""What every page shares: who is signed in, the CSRF check on forms, and HTML errors.

`PageRoute` renders refusals as pages (or as an alert fragment for htmx) instead of the API's
problem+json, and sends a visitor without a session to the sign-in page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.datastructures import FormData

from governance.auth.schemas import Role
from governance.db import DbSession
from governance.errors import GovernanceError
from governance.web.rendering import render_page, render_partial, wants_fragment
from governance.web.sessions import COOKIE, Sessions, Viewer, same_token

log = logging.getLogger(__name__)

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


class SignInRequired(Exception):
    """No valid session: off to the sign-in page, then back."""


class PageError(Exception):
    """A refusal to show as a page: status, a title and what to do about it."""

    def __init__(self, status_code: int, title: str, detail: str | None = None) -> None:
        super().__init__(title)
        self.status_code = status_code
        self.title = title
        self.detail = detail


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.web_sessions
    return sessions


def safe_next(target: str | None) -> str:
    """Only a path on this site (never `//host` or a scheme) may follow sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def _sign_in_redirect(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if wants_fragment(request):
        here = request.headers.get("hx-current-url") or here
        here = urlsplit(here).path or "/"
    location = "/sign-in" if here == "/" else f"/sign-in?next={quote(safe_next(here), safe='/')}"
    if request.headers.get("hx-request") == "true":
        # htmx follows a redirect inside the swap; this makes it load the whole page instead.
        return Response(status_code=200, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def error_response(request: Request, status_code: int, title: str, detail: str | None) -> Response:
    """A refusal as HTML: a whole page, or an alert where htmx swaps."""
    if request.headers.get("hx-request") == "true":
        return render_partial(
            request, "partials/alert.html", status_code=status_code, title=title, detail=detail
        )
    return render_page(request, "error.html", status_code=status_code, title=title, detail=detail)


class PageRoute(APIRoute):
    """A page: HTML errors, sign-in redirects, and never in the OpenAPI contract."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["include_in_schema"] = False
        super().__init__(*args, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except SignInRequired:
                return _sign_in_redirect(request)
            except PageError as exc:
                return error_response(request, exc.status_code, exc.title, exc.detail)
            except GovernanceError as exc:
                return error_response(request, exc.status_code, exc.title, exc.detail)
            except RequestValidationError as exc:
                fields = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}"
                    for e in exc.errors()
                )
                return error_response(request, 422, "This address is not valid", fields)
            except Exception:
                log.exception("console page %s failed", request.url.path)
                return error_response(
                    request,
                    500,
                    "Something went wrong",
                    "This is a bug in the console; it has been logged. Nothing you did was lost "
                    "unless the page says so: reload to see the current state.",
                )

        return handler


# --- who is signed in --------------------------------------------------------------------------


def current_viewer(request: Request, session: DbSession) -> Viewer | None:
    """The signed-in viewer, or None; also kept on `request.state` for the layout."""
    viewer = sessions_of(request).current(session, request.cookies.get(COOKIE))
    request.state.viewer = viewer
    return viewer


MaybeViewer = Annotated[Viewer | None, Depends(current_viewer)]


def require(*roles: Role) -> Callable[[Viewer | None], Viewer]:
    """A dependency admitting signed-in viewers of these roles (the others get a 403 page)."""
    allowed = frozenset(roles)

    def dependency(viewer: MaybeViewer) -> Viewer:
        if viewer is None:
            raise SignInRequired()
        if viewer.principal.role not in allowed:
            raise PageError(
                403,
                "This page is not for your role",
                f"A {viewer.principal.role.value} key cannot use it. "
                "Sign in with another key, or use the pages in the menu.",
            )
        return viewer

    return dependency


AnyViewer = Annotated[Viewer, Depends(require(*Role))]
DeciderViewer = Annotated[Viewer, Depends(require(Role.admin, Role.leadership, Role.approver))]


# --- forms -------------------------------------------------------------------------------------


def same_origin(request: Request) -> bool:
    """A browser's own statement that the request comes from this site (when it makes one).

    The site is the Host the request was sent to, the host a proxy forwarded it for, or the
    configured public URL's.
    """
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    forwarded = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
    public = urlsplit(request.app.state.settings.public_url).netloc
    ours = {request.headers.get("host", ""), forwarded, public} - {""}
    return urlsplit(origin).netloc in ours


async def checked_form(request: Request, viewer: AnyViewer) -> FormData:
    """The posted form, once its CSRF token (a form field, or a header htmx sets) is the
    session's own and the request comes from this site; 403 otherwise."""
    form = await request.form()
    field = form.get(CSRF_FIELD)
    token = request.headers.get(CSRF_HEADER) or (field if isinstance(field, str) else None)
    if not same_origin(request) or not token or not same_token(token, viewer.csrf_token):
        log.info("refused a console form without a valid CSRF token: %s", request.url.path)
        raise PageError(
            403,
            "This form has expired",
            "It did not carry this session's security token. Reload the page and try again.",
        )
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def text_field(form: FormData, name: str) -> str:
    """A form field's text, stripped ("" when absent or a file)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
