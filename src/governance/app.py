"""The FastAPI application: routers, error handlers and per-process state."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp

from governance import __version__
from governance.analytics.router import router as analytics_router
from governance.approvals import service as approval_service
from governance.approvals.deal_router import router as review_router
from governance.approvals.router import groups_router as approval_groups_router
from governance.approvals.router import me_router
from governance.approvals.router import router as approvals_router
from governance.audit.router import router as audit_router
from governance.auth.dependencies import SECURITY_SCHEME, KeyCache, require
from governance.auth.router import router as api_keys_router
from governance.auth.schemas import Role
from governance.db import Database
from governance.deals.router import checks_router, impact_router
from governance.deals.router import router as deals_router
from governance.deals.schemas import CheckRequest
from governance.errors import (
    ProblemDetails,
    install_error_handlers,
    problem_response,
    problem_responses,
)
from governance.gate import KEYLESS_API_PATHS, Gate
from governance.observability import metrics, tracing
from governance.observability.access import AccessLog
from governance.operation_ids import operation_id
from governance.outcomes.router import router as outcomes_router
from governance.playbooks.registry import PlaybookRegistry
from governance.playbooks.router import router as playbooks_router
from governance.playbooks.router import terms_router
from governance.reps.router import router as reps_router
from governance.salesforce.router import router as salesforce_router
from governance.settings import Settings, get_settings
from governance.web import install as install_console

DESCRIPTION = """
Stores a company's commercial terms library (playbooks), checks proposed deals against it,
and reports verdict, variance, approvers and suggested trades.

Every route except `/healthz` and `/readyz` needs `Authorization: Bearer <api key>`.
Errors are `application/problem+json` (RFC 9457); validation errors name each field.
Decimal values (money, percentages) travel as strings.
"""


class _GatedApp(FastAPI):
    """FastAPI with the request gate outside everything else, the 500 handler included, and
    the access log (request id, access line, HTTP metrics) outside the gate, so refusals are
    logged and counted too."""

    def build_middleware_stack(self) -> ASGIApp:
        settings: Settings = self.state.settings
        gate = Gate(
            super().build_middleware_stack(),
            key_cache=self.state.key_cache,
            db=self.state.db,
            max_body_bytes=settings.max_body_bytes,
            max_import_body_bytes=settings.max_import_body_bytes,
        )
        stack: ASGIApp = AccessLog(
            gate, self.router.routes, name_span=getattr(self.state, "name_span", None)
        )
        traced = getattr(self.state, "trace_wrapper", None)  # set by `tracing.instrument`
        return traced(stack) if traced is not None else stack


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for these settings (the environment's by default)."""
    settings = settings or get_settings()
    db = Database(settings.database_url, settings.db_pool_size)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Everything built so far (modules, the app, its schemas) lives as long as the process:
        # move it out of the collector's reach, so a full collection does not walk ~140,000
        # objects in the middle of a request (it set the queue's p99; see bench/RESULTS.md).
        gc.collect()
        gc.freeze()
        yield
        db.dispose()

    app = _GatedApp(
        title="Deal Governance Service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        separate_input_output_schemas=False,
        generate_unique_id_function=operation_id,
        # The console serves /docs and /redoc itself, with its own copies of their assets.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.registry = PlaybookRegistry(db, settings.playbook_cache_seconds)
    app.state.key_cache = KeyCache(settings.api_key_cache_seconds)
    # Approver groups are defined above auth; key creation asks the approvals domain.
    app.state.group_directory = approval_service.known_groups
    install_error_handlers(app)

    @app.get("/healthz", tags=["health"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Readiness: the database answers",
        responses={503: {"model": ProblemDetails, "description": "Database unreachable"}},
    )
    async def readyz() -> Any:
        try:
            await run_in_threadpool(db.ping)
        except Exception:  # any database failure means "not ready", never a 500
            return problem_response(503, "Database unavailable", "not-ready")
        return JSONResponse({"status": "ready"})

    if settings.metrics.enabled and settings.metrics.port is None:
        _serve_metrics(app, settings, db)

    # Routes match in order: the check, called on every opportunity page view, goes first.
    for router in (
        checks_router,
        deals_router,
        review_router,
        outcomes_router,
        approvals_router,
        me_router,
        approval_groups_router,
        playbooks_router,
        impact_router,
        terms_router,
        reps_router,
        api_keys_router,
        audit_router,
        salesforce_router,
        analytics_router,
    ):
        app.include_router(router)
    install_console(app, settings)  # the web console: pages, static files, /docs and /redoc
    _complete_openapi(app)
    if settings.tracing.enabled:
        tracing.instrument(app, db, settings.tracing)
    return app


def _serve_metrics(app: FastAPI, settings: Settings, db: Database) -> None:
    """`GET /metrics`: Prometheus's text format, for an admin key unless `metrics.public`.

    Left out of the OpenAPI contract: it is an operator's endpoint, not part of the API that
    clients are generated from (docs/operations.md describes it)."""
    exposition = metrics.Exposition(db, settings.metrics.cache_seconds)
    admin_only = require(Role.admin)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        if not settings.metrics.public:
            await admin_only(request)
        body = await run_in_threadpool(exposition.render)
        return Response(body, media_type=metrics.CONTENT_TYPE)


# Salesforce Outbound Messages cannot send a bearer key: they carry a shared secret instead.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz"}) | KEYLESS_API_PATHS


def _complete_openapi(app: FastAPI) -> None:
    """Declare the bearer scheme on every non-public operation, and the 400, 413 and 415 that
    any operation with a body gives when the body cannot be parsed at all, is too large, or is
    not the JSON it should be."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        # Bodies a route reads itself (the hot /v1/checks) are declared here.
        components = schema.setdefault("components", {})
        for model in (CheckRequest,):
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in model_schema.pop("$defs", {}).items():
                components["schemas"].setdefault(name, definition)
            components["schemas"][model.__name__] = model_schema
        components["securitySchemes"] = {
            SECURITY_SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key: `Authorization: Bearer gov_…`. An `integration` key "
                "may add `X-Acting-User: <Salesforce user Id>` to act for a rep: the audit log, "
                "submissions, withdrawals and accepted counters then name that user. Any other "
                "key sending it gets 403; a value that is not a Salesforce Id gets 400.",
            }
        }
        for path, operations in schema["paths"].items():
            for operation in operations.values():
                if path not in PUBLIC_PATHS:
                    operation["security"] = [{SECURITY_SCHEME: []}]
                if "requestBody" in operation:
                    # The gate answers 413 for any body over the cap, before the route runs; a
                    # JSON body sent as anything else is a 415.
                    json_body = "application/json" in operation["requestBody"]["content"]
                    statuses = (400, 413, 415) if json_body else (400, 413)
                    for status, response in problem_responses(*statuses).items():
                        operation["responses"].setdefault(str(status), response)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
