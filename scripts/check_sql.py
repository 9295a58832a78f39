"""Fail when SQL statements are built outside the files whose job it is.

Repositories (`repository.py`, `*_repository.py`) hold a package's SQL; models may use `text`
for DDL defaults; `db.py` holds the session plumbing; migrations live outside `src/`. Anything
else that imports `select`, `insert`, `update`, `delete` or `text` from SQLAlchemy is building
SQL in the wrong room. Run by `make lint`.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

STATEMENTS = {"select", "insert", "update", "delete", "text"}
ROOT = Path(__file__).resolve().parents[1] / "src" / "governance"


def allowed(path: Path) -> bool:
    name = path.name
    return name in {"repository.py", "models.py", "db.py"} or name.endswith("_repository.py")


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            for alias in node.names:
                if alias.name in STATEMENTS:
                    found.append(f"{path}:{node.lineno}: imports {alias.name} from {node.module}")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in STATEMENTS
            and isinstance(node.value, ast.Name)
            and node.value.id in {"sa", "sqlalchemy"}
        ):
            found.append(f"{path}:{node.lineno}: uses {node.value.id}.{node.attr}")
    return found


def main() -> int:
    problems = [
        line
        for path in sorted(ROOT.rglob("*.py"))
        if not allowed(path)
        for line in violations(path)
    ]
    for line in problems:
        print(line)
    if problems:
        print(f"{len(problems)} SQL statement(s) outside repositories: move them to a repository")
        return 1
    print("SQL only in repositories: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
