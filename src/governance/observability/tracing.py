"""Optional OpenTelemetry traces: a span per request and per database statement, exported over
OTLP/HTTP. Off unless `tracing.enabled`; needs `pip install governance[otel]`. Nothing imports
OpenTelemetry unless tracing is enabled."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from governance.db import Database
from governance.settings import TracingSettings


class TracingUnavailable(RuntimeError):
    """Tracing is enabled but the `otel` extra is not installed."""


def instrument(app: FastAPI, db: Database, settings: TracingSettings) -> None:
    """Trace the app's requests and the database's statements."""
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise TracingUnavailable(
            "tracing.enabled needs the otel extra: pip install 'governance[otel]'"
        ) from exc
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBasedTraceIdRatio(settings.sample_ratio),
    )
    exporter_options: dict[str, Any] = {}
    if settings.endpoint:
        exporter_options["endpoint"] = settings.endpoint
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(**exporter_options)))
    trace.set_tracer_provider(provider)
    # Health probes and scrapes would drown the traces that matter.
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="/healthz,/readyz,/metrics"
    )
    SQLAlchemyInstrumentor().instrument(engine=db.engine, tracer_provider=provider)
