"""What a team generating a client from the committed contract gets: openapi-python-client builds
a Python package from openapi/openapi.json, and a check, a deal upsert, a submission and a
decision go through its functions, named by the short operation ids, against a served process."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from tests.served import Served, serve

CONTRACT = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
PACKAGE = "governance_client"
DEAL = "0065g00000GenCli01"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The client package, generated once, importable by its name. The generator lives in a venv
    of its own inside .venv (`make install` makes it: it pins typer below what `governance`
    needs)."""
    folder = tmp_path_factory.mktemp("client")
    generator = Path(sys.prefix) / "generator" / "bin" / "openapi-python-client"
    arguments = ["--path", str(CONTRACT), "--meta", "none", "--output-path", str(folder / PACKAGE)]
    done = subprocess.run(
        [str(generator), "generate", *arguments],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(folder))
    try:
        yield PACKAGE
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("served")) as running:
        yield running


def module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def parsed(response: Any, status: int) -> Any:
    assert response.status_code == status, response.content
    return response.parsed


def test_a_generated_client_checks_upserts_and_decides(generated: str, served: Served) -> None:
    client = module("client").AuthenticatedClient(base_url=served.base, token=served.key)
    models = module("models")
    terms = {"discount_pct": "20", "contract_months": 24, "support_level": "premium"}
    attributes = {"region": "EMEA", "segment": "enterprise", "amount": "120000"}

    check = parsed(
        module("api.checks.checks_create").sync_detailed(
            client=client,
            body=models.CheckRequest.from_dict({"attributes": attributes, "terms": terms}),
        ),
        200,
    )
    assert check.verdict == "needs_approval"
    assert check.playbook.key == "standard"

    deal = parsed(
        module("api.deals.deals_upsert").sync_detailed(
            DEAL,
            client=client,
            body=models.DealUpsert.from_dict(
                {"name": "Initech platform", "attributes": attributes, "terms": terms}
            ),
        ),
        201,
    )
    assert deal.external_id == DEAL

    justification = {"justifications": {"discount_pct": "bake-off vs. a cheaper rival"}}
    submission = module("api.approvals.deals_submit").sync_detailed(
        DEAL, client=client, body=models.SubmitRequest.from_dict(justification)
    )
    assert parsed(submission, 200).deal_status == "in_review"
    queue = parsed(module("api.approvals.approvals_queue").sync_detailed(client=client), 200)
    request = next(item for item in queue.items if item.deal.external_id == DEAL)
    decided = parsed(
        module("api.approvals.approvals_decide").sync_detailed(
            request.id,
            client=client,
            body=models.DecisionCreate.from_dict({"decision": "approve"}),
            if_match=f'"{request.version}"',
        ),
        200,
    )
    assert decided.status == "approved"
    assert decided.decision.admin_override is True
