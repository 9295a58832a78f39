"""OpenTelemetry tracing: off unless asked, and then a span per request and per statement."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from governance.app import create_app
from governance.settings import Settings, TracingSettings


def test_tracing_is_off_and_opentelemetry_unloaded_by_default() -> None:
    """Its SDK, exporters and instrumentation stay unloaded (FastAPI itself may load the API)."""
    probe = (
        "import sys\n"
        "from governance.app import create_app\n"
        "from governance.settings import Settings\n"
        "create_app(Settings(database_url='sqlite://'))\n"
        "loaded = {'.'.join(m.split('.')[:2]) for m in sys.modules}\n"
        "print(sorted(loaded & {'opentelemetry.sdk', 'opentelemetry.instrumentation',"
        " 'opentelemetry.exporter'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


async def test_an_enabled_tracer_records_the_request_and_its_sql(settings: Settings) -> None:
    pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from governance.observability import tracing

    exported = InMemorySpanExporter()
    app = create_app(settings)  # tracing off: then instrumented here with a local exporter
    tracing.instrument(app, app.state.db, TracingSettings(enabled=True), exporter=exported)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/v1/deals")).status_code == 401
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush()
    app.state.db.dispose()
    names = [span.name for span in exported.get_finished_spans()]
    assert "GET /readyz" not in names  # probes are left out
    assert "GET /v1/deals" in names  # refused by the gate, still named after its route
    assert any(name.startswith("SELECT") for name in names), names  # readyz's ping
