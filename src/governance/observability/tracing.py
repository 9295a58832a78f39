"""Optional OpenTelemetry traces: a span per request and per database statement, exported over
OTLP/HTTP. Off unless `tracing.enabled`; needs `pip install governance[otel]`. Nothing imports
OpenTelemetry unless tracing is enabled."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from governance.db import Database
from governance.settings import TracingSettings


class TracingUnavailable(RuntimeError):
    """Tracing is enabled but the `otel` extra is not installed."""


def instrument(
    app: FastAPI, db: Database, settings: TracingSettings, exporter: Any | None = None
) -> None:
    """Trace the app's requests and the database's statements, exported over OTLP/HTTP (or to
    `exporter`, a span exporter of one's own)."""
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
        from opentelemetry.util.http import parse_excluded_urls
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise TracingUnavailable(
            "tracing.enabled needs the otel extra: pip install 'governance[otel]'"
        ) from exc
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBasedTraceIdRatio(settings.sample_ratio),
    )
    if exporter is None:
        exporter_options: dict[str, Any] = {}
        if settings.endpoint:
            exporter_options["endpoint"] = settings.endpoint
        exporter = OTLPSpanExporter(**exporter_options)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(provider)  # for spans of libraries traced globally (once)
    # Health probes and scrapes would drown the traces that matter.
    excluded = parse_excluded_urls("/healthz,/readyz,/metrics")

    def traced(stack: ASGIApp) -> ASGIApp:
        middleware: ASGIApp = OpenTelemetryMiddleware(
            stack, excluded_urls=excluded, tracer_provider=provider
        )
        return middleware

    def name_span(method: str, route: str) -> None:
        # The span starts before routing; the access log names it once the route is known.
        span = trace.get_current_span()
        if span.is_recording():
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)

    # The app's middleware stack (built at its first request) puts these outside the access log.
    app.state.trace_wrapper = traced
    app.state.name_span = name_span
    SQLAlchemyInstrumentor().instrument(engine=db.engine, tracer_provider=provider)
