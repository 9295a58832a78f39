"""The committed contract is exactly what the app serves."""

from __future__ import annotations

import json
from pathlib import Path

from governance.openapi import render

COMMITTED = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    assert json.loads(COMMITTED.read_text()) == json.loads(render()), (
        "openapi/openapi.json is stale: run `make openapi` and commit it"
    )


def test_every_operation_documents_its_problems() -> None:
    doc = json.loads(render())
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if path in ("/healthz", "/readyz"):
                continue
            responses = operation["responses"]
            # Outbound Messages carry a shared secret, not a key: 403 without it, never 401.
            guarded = path == "/v1/salesforce/outbound-messages"
            for status in ("403",) if guarded else ("401", "403"):
                assert status in responses, (method, path, status)
                assert "application/problem+json" in responses[status]["content"]
            if "422" in responses:
                assert "application/problem+json" in responses["422"]["content"], (method, path)
