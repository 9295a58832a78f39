"""Fixtures for engine tests: build small playbooks from plain dicts, and the demo playbook."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any

import pytest
import yaml

from governance.engine import (
    CheckResult,
    CompiledPlaybook,
    PlaybookDocument,
    compile_playbook,
    evaluate,
    semantic_problems,
)

Build = Callable[..., CompiledPlaybook]
Check = Callable[..., CheckResult]


def build_playbook(
    terms: Sequence[Mapping[str, Any]], rules: Sequence[Mapping[str, Any]] = ()
) -> CompiledPlaybook:
    """Compile a playbook from term and rule dicts, insisting it is semantically valid."""
    doc = PlaybookDocument.model_validate(
        {"key": "test", "name": "Test playbook", "terms": list(terms), "rules": list(rules)}
    )
    problems = semantic_problems(doc)
    assert problems == [], problems
    return compile_playbook(doc, 3)


def check(
    compiled: CompiledPlaybook,
    terms: Mapping[str, object],
    attributes: Mapping[str, object] | None = None,
) -> CheckResult:
    """parse_terms + evaluate, the way the service calls the engine."""
    return evaluate(compiled, compiled.parse_terms(terms), attributes or {})


@pytest.fixture
def build() -> Build:
    return build_playbook


@pytest.fixture
def run() -> Check:
    return check


@pytest.fixture(scope="session")
def demo() -> CompiledPlaybook:
    text = resources.files("governance").joinpath("demo/standard.yaml").read_text("utf-8")
    doc = PlaybookDocument.model_validate(yaml.safe_load(text))
    assert semantic_problems(doc) == []
    return compile_playbook(doc, 1)
