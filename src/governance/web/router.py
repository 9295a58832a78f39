"""The console's routes: sign-in and sign-out, the home redirect, the API docs pages, and the
pages of `inbox`, `deals`, `simulator`, `delegation`, `dashboards` (analytics) and `audit`.
None is in the OpenAPI contract."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse

from governance.auth.schemas import Role
from governance.db import DbSession
from governance.http import AppSettings
from governance.web import (
    audit,
    dashboards,
    deals,
    delegation,
    inbox,
    playbook_editor,
    playbooks,
    simulator,
)
from governance.web.dependencies import (
    CheckedForm,
    MaybeViewer,
    PageRoute,
    safe_next,
    sessions_of,
    text_field,
)
from governance.web.rendering import DECIDERS, render_page, static_url
from governance.web.security import docs_policy
from governance.web.sessions import COOKIE, SIGN_IN_COOKIE

router = APIRouter(route_class=PageRoute)
for pages in (inbox.router, deals.router, simulator.router, delegation.router, playbooks.router):
    router.include_router(pages)
for pages in (playbook_editor.router, dashboards.router, audit.router):
    router.include_router(pages)

SIGN_IN_MAX_AGE = 3600


def _home_for(role: Role) -> str:
    return "/inbox" if role in DECIDERS else "/simulator"


@router.get("/")
def home(viewer: MaybeViewer) -> Response:
    if viewer is None:
        return RedirectResponse("/sign-in", status_code=303)
    return RedirectResponse(_home_for(viewer.principal.role), status_code=303)


def _secure(request: Request, settings: AppSettings) -> bool:
    if settings.session_cookie_secure is not None:
        return settings.session_cookie_secure
    return request.url.scheme == "https" or settings.public_url.startswith("https://")


def _sign_in_page(
    request: Request,
    settings: AppSettings,
    next_path: str,
    *,
    status_code: int = 200,
    error: str | None = None,
    notice: str | None = None,
) -> Response:
    sessions = sessions_of(request)
    nonce, token = sessions.new_sign_in_nonce()
    response = render_page(
        request,
        "sign_in.html",
        status_code=status_code,
        title="Sign in",
        next_path=next_path,
        sign_in_token=token,
        error=error,
        notice=notice,
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        nonce,
        max_age=SIGN_IN_MAX_AGE,
        path="/sign-in",
        httponly=True,
        samesite="lax",
        secure=_secure(request, settings),
    )
    return response


@router.get("/sign-in")
def sign_in_form(
    request: Request,
    viewer: MaybeViewer,
    settings: AppSettings,
    next: Annotated[str | None, Query(max_length=2000)] = None,
    signed_out: Annotated[str | None, Query(max_length=5)] = None,
) -> Response:
    target = safe_next(next)
    if viewer is not None:
        return RedirectResponse(
            target if target != "/" else _home_for(viewer.principal.role), status_code=303
        )
    notice = "You are signed out." if signed_out else None
    return _sign_in_page(request, settings, target, notice=notice)


@router.post("/sign-in")
async def sign_in(request: Request, settings: AppSettings) -> Response:
    form = await request.form()
    sessions = sessions_of(request)
    target = safe_next(text_field(form, "next"))
    if not sessions.sign_in_token_ok(
        request.cookies.get(SIGN_IN_COOKIE), text_field(form, "csrf_token")
    ):
        return _sign_in_page(
            request,
            settings,
            target,
            status_code=403,
            error="The sign-in form expired. Enter your key again.",
        )
    key = text_field(form, "api_key")
    if not key:
        return _sign_in_page(
            request, settings, target, status_code=422, error="Enter your API key."
        )
    db = request.app.state.db

    previous = request.cookies.get(COOKIE)

    def start() -> tuple[str, Role] | None:
        with db.unit_of_work() as session:
            before = sessions.current(session, previous)
            started = sessions.start(session, key)
            if started is not None and before is not None:
                # Signing in again (as someone else, say) ends the sign-in this browser had.
                sessions.end(session, before)
        return None if started is None else (started[0], started[1].principal.role)

    started = await run_in_threadpool(start)
    if started is None:
        return _sign_in_page(
            request,
            settings,
            target,
            status_code=401,
            error="That key is unknown or has been revoked.",
        )
    cookie, role = started
    response = RedirectResponse(target if target != "/" else _home_for(role), status_code=303)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(sessions.hours * 3600),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request, settings),
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    return response


@router.post("/sign-out")
def sign_out(
    request: Request, viewer: MaybeViewer, form: CheckedForm, session: DbSession
) -> Response:
    if viewer is not None:
        sessions_of(request).end(session, viewer)
    response: Response = RedirectResponse("/sign-in?signed_out=1", status_code=303)
    if request.headers.get("hx-request") == "true":
        response = Response(status_code=200, headers={"HX-Redirect": "/sign-in?signed_out=1"})
    response.delete_cookie(COOKIE, path="/")
    return response


# --- the API's docs, served with the app's own copies of Swagger UI and ReDoc -------------------


@router.get("/docs")
def swagger_ui(settings: AppSettings) -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Deal Governance Service · API",
        swagger_js_url=static_url("vendor/swagger-ui-bundle.js"),
        swagger_css_url=static_url("vendor/swagger-ui.css"),
        swagger_favicon_url=static_url("vendor/favicon-32x32.png"),
        # No validator badge: it would load an image from validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
    return _docs(page, settings)


@router.get("/redoc")
def redoc(settings: AppSettings) -> HTMLResponse:
    page = get_redoc_html(
        openapi_url="/openapi.json",
        title="Deal Governance Service · API",
        redoc_js_url=static_url("vendor/redoc.standalone.js"),
        redoc_favicon_url=static_url("vendor/favicon-32x32.png"),
        with_google_fonts=False,
    )
    return _docs(page, settings)


def _docs(page: HTMLResponse, settings: AppSettings) -> HTMLResponse:
    html = bytes(page.body).decode()
    page.headers["Content-Security-Policy"] = docs_policy(html, settings.frame_ancestors)
    return page
