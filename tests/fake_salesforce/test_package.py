"""The fake org is a test and demo tool beside the service: neither package imports the other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fake_salesforce
import governance

SRC = Path(__file__).resolve().parents[2] / "src"


def imported_packages(package: str) -> set[str]:
    """The top-level names of every module imported anywhere under src/{package}."""
    found: set[str] = set()
    for path in (SRC / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("governance", "fake_salesforce"), ("fake_salesforce", "governance")],
)
def test_packages_stay_apart(package: str, forbidden: str) -> None:
    assert forbidden not in imported_packages(package)


def test_both_are_imported_from_src() -> None:
    assert Path(str(fake_salesforce.__file__)).parent == SRC / "fake_salesforce"
    assert Path(str(governance.__file__)).parent == SRC / "governance"
    assert (SRC / "fake_salesforce" / "py.typed").is_file()


def test_public_names() -> None:
    assert all(hasattr(fake_salesforce, name) for name in fake_salesforce.__all__)
    assert fake_salesforce.FakeSalesforce.__module__ == "fake_salesforce.org"
