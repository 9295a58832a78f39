"""No drift between the Salesforce package and the API: every JSON fixture that the component's
jest tests and the Apex tests feed in place of the service (a request the package sends, or an
answer it reads) fits openapi/openapi.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = ROOT / "salesforce" / "force-app" / "main" / "default" / "staticresources"
CONTRACT = json.loads((ROOT / "openapi" / "openapi.json").read_text(encoding="utf-8"))
DEAL = "/v1/deals/{external_id}"

# Fixture -> the operation and what it stands for: "request" (the body the package sends) or
# the status of the answer it stands for.
FIXTURES: dict[str, tuple[str, str, str]] = {
    "CheckRequest": ("post", "/v1/checks", "request"),
    "CheckNeedsApproval": ("post", "/v1/checks", "200"),
    "CheckAutoApproved": ("post", "/v1/checks", "200"),
    "CheckBlocked": ("post", "/v1/checks", "200"),
    "Deal": ("get", DEAL, "200"),
    "DealUpsert": ("put", DEAL, "request"),
    "DealChecks": ("get", f"{DEAL}/checks", "200"),
    "ApprovalsCountered": ("get", f"{DEAL}/approvals", "200"),
    "SubmitRequest": ("post", f"{DEAL}/submit", "request"),
    "Submission": ("post", f"{DEAL}/submit", "200"),
    "AcceptCounterRequest": ("post", f"{DEAL}/accept-counter", "request"),
    "CounterAccepted": ("post", f"{DEAL}/accept-counter", "200"),
    "Problem422": ("put", DEAL, "422"),
    "Preparation": ("get", f"{DEAL}/preparation", "200"),
    "PreparationWrite": ("put", f"{DEAL}/preparation", "request"),
    "PreparationProblem422": ("put", f"{DEAL}/preparation", "422"),
    "Review": ("get", f"{DEAL}/after-action-review", "200"),
    "ReviewWrite": ("put", f"{DEAL}/after-action-review", "request"),
    "Outcome": ("get", f"{DEAL}/outcome", "200"),
    "Rep": ("get", "/v1/reps/{rep}", "200"),
    "ConcessionsMine": ("get", "/v1/analytics/concessions", "200"),
}


def schema_for(method: str, path: str, part: str) -> dict[str, Any]:
    operation = CONTRACT["paths"][path][method]
    if part == "request":
        content = operation["requestBody"]["content"]
    else:
        content = operation["responses"][part]["content"]
    media = content.get("application/json") or content["application/problem+json"]
    # Refs point into the contract's components; validate with them alongside.
    return {**media["schema"], "components": CONTRACT["components"]}


def test_every_fixture_is_checked() -> None:
    shipped = {
        p.name.removeprefix("GovFixture_").removesuffix(".json")
        for p in RESOURCES.glob("GovFixture_*.json")
    }
    assert shipped == set(FIXTURES)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_fits_the_contract(name: str) -> None:
    method, path, part = FIXTURES[name]
    document = json.loads((RESOURCES / f"GovFixture_{name}.json").read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema_for(method, path, part))
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]
    assert problems == []


def test_a_fixture_that_drifted_is_caught() -> None:
    """The check bites: a check answer without its verdict does not fit."""
    document = json.loads((RESOURCES / "GovFixture_CheckNeedsApproval.json").read_text("utf-8"))
    del document["verdict"]
    validator = Draft202012Validator(schema_for("post", "/v1/checks", "200"))
    assert not validator.is_valid(document)
