"""The committed contract is exactly what the app serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

from governance.openapi import render
from governance.operation_ids import OPERATION_IDS

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


def test_every_operation_has_a_short_stable_listed_id() -> None:
    # Generated clients name their functions after these (`checks_create`, not
    # `check_terms_v1_checks_post`): short, unique, and listed, so no rename moves them.
    doc = json.loads(render())
    seen: dict[str, tuple[str, str]] = {}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            op_id = operation["operationId"]
            assert re.fullmatch(r"[a-z]+(_[a-z]+){1,3}", op_id), (method, path, op_id)
            assert len(op_id) <= 30, op_id
            assert OPERATION_IDS.get((method.upper(), path)) == op_id, (method, path)
            assert op_id not in seen, (op_id, seen.get(op_id), (method, path))
            seen[op_id] = (method, path)
    assert seen["checks_create"] == ("post", "/v1/checks")
    assert seen["deals_upsert"] == ("put", "/v1/deals/{external_id}")
