"""The `governance` command, as leadership's CI and an operator would use it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import DEMO
from typer.main import get_command
from typer.testing import CliRunner

from governance.cli import app
from governance.db import Database
from governance.playbooks import service as playbook_service
from governance.settings import get_settings

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("GOVERNANCE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def test_import_publish_then_export_round_trips(env: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["playbook", "import", str(DEMO), "--publish"])
    assert result.exit_code == 0, result.output
    assert "standard version 1: published" in result.output

    again = runner.invoke(app, ["playbook", "import", str(DEMO), "--publish"])
    assert "unchanged" in again.output  # leadership's CI can run this on every push

    exported = runner.invoke(app, ["playbook", "export", "standard"])
    assert exported.exit_code == 0
    doc = yaml.safe_load(exported.output)
    assert doc == {**doc, "key": "standard", "scope": {}}
    assert len(doc["terms"]) == 12

    changed = tmp_path / "changed.yaml"
    changed.write_text(exported.output.replace("high: 15", "high: 16", 1))
    result = runner.invoke(app, ["playbook", "import", str(changed), "--publish"])
    assert "standard version 2: published" in result.output
    db = Database(env)
    with db.unit_of_work() as session:
        playbook = playbook_service.get_playbook(session, "standard")
        assert [v.status for v in playbook.versions] == ["superseded", "published"]
    db.dispose()


def test_import_reports_the_exact_field(env: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEMO.read_text().replace("walk_away: 35", "walk_away: 10", 1))
    result = runner.invoke(app, ["playbook", "import", str(bad)])
    assert result.exit_code == 2
    assert "terms[0].walk_away" in result.output


def test_import_of_a_file_that_is_not_utf8_says_so(env: str, tmp_path: Path) -> None:
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes(DEMO.read_text().replace("Standard", "Standärd").encode("latin-1"))
    result = runner.invoke(app, ["playbook", "import", str(latin)])
    assert result.exit_code == 2, result.output
    assert f"error: {latin} is not UTF-8 text" in result.output
    assert "Traceback" not in result.output


def test_keys_create_prints_a_working_secret(env: str) -> None:
    command = ["keys", "create", "--role", "approver", "--group", "finance", "--name", "cfo-office"]
    # No playbook names finance yet, so it is no group (a typo would look the same).
    unknown = runner.invoke(app, command)
    assert unknown.exit_code == 2, unknown.output
    assert "groups[0]: no group 'finance' exists" in unknown.output
    assert runner.invoke(app, ["demo"]).exit_code == 0
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert secret.startswith("gov_")
    from governance.auth import service as auth_service

    db = Database(env)
    with db.unit_of_work() as session:
        principal = auth_service.verify(session, secret)
    db.dispose()
    assert principal is not None
    assert principal.groups == frozenset({"finance"})


def test_keys_create_refuses_an_active_keys_name(env: str) -> None:
    first = runner.invoke(app, ["keys", "create", "--role", "rep", "--name", "crm"])
    assert first.exit_code == 0, first.output
    taken = runner.invoke(app, ["keys", "create", "--role", "rep", "--name", "crm"])
    assert taken.exit_code == 2, taken.output
    assert "already named 'crm'" in taken.output
    # Without --name, a key gets the first free default name.
    defaults = [runner.invoke(app, ["keys", "create", "--role", "rep"]) for _ in range(2)]
    assert [r.exit_code for r in defaults] == [0, 0]
    assert "(rep)" in defaults[1].output
    db = Database(env)
    with db.unit_of_work() as session:
        from governance.auth.repository import ApiKeyRepository

        names = [k.name for k in ApiKeyRepository(session).list()]
    db.dispose()
    assert names == ["crm", "rep-cli", "rep-cli-2"]


def test_demo_loads_only_when_empty(env: str) -> None:
    first = runner.invoke(app, ["demo", "--if-empty"])
    assert "published" in first.output
    second = runner.invoke(app, ["demo", "--if-empty"])
    assert "already present" in second.output


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every leaf command of the CLI, as its argv prefix."""
    for name, sub in getattr(group, "commands", {}).items():
        if getattr(sub, "commands", None):
            yield from _commands(sub, (*path, name))
        else:
            yield (*path, name)


# The fewest arguments each command needs to get as far as opening the database.
NEEDS = {
    ("playbook", "import"): [str(DEMO)],
    ("playbook", "export"): ["standard"],
    ("keys", "create"): ["--role", "rep"],
    ("keys", "revoke"): ["1"],
}


def test_every_command_on_an_unmigrated_database_says_to_migrate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVERNANCE_DATABASE_URL", f"sqlite:///{tmp_path}/elsewhere.db")
    empty = f"sqlite:///{tmp_path}/empty.db"
    commands = [c for c in _commands(get_command(app)) if c != ("migrate",)]
    assert len(commands) >= 13
    for argv in commands:
        result = runner.invoke(app, [*argv, *NEEDS.get(argv, []), "--database-url", empty])
        assert result.exit_code == 1, (argv, result.output)
        assert result.output.strip().splitlines() == [
            f"error: the database {empty} has no tables yet: run `governance migrate`"
        ], argv
    get_settings.cache_clear()


def test_database_url_chooses_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVERNANCE_DATABASE_URL", f"sqlite:///{tmp_path}/unused.db")
    chosen = f"sqlite:///{tmp_path}/chosen.db"
    assert runner.invoke(app, ["migrate", "--database-url", chosen]).exit_code == 0
    created = runner.invoke(app, ["keys", "create", "--role", "rep", "--database-url", chosen])
    assert created.exit_code == 0, created.output
    assert (tmp_path / "chosen.db").exists()
    assert not (tmp_path / "unused.db").exists()
    get_settings.cache_clear()


def test_keys_list_and_revoke(env: str) -> None:
    for name in ("ops", "crm"):
        assert (
            runner.invoke(app, ["keys", "create", "--role", "admin", "--name", name]).exit_code == 0
        )
    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0, listed.output
    lines = [line.split() for line in listed.output.strip().splitlines()]
    assert lines == [
        ["id", "name", "role", "groups", "state"],
        ["1", "ops", "admin", "-", "active"],
        ["2", "crm", "admin", "-", "active"],
    ]
    assert "gov_" not in listed.output
    by_name = runner.invoke(app, ["keys", "revoke", "ops"])
    assert by_name.exit_code == 0, by_name.output
    assert by_name.output.strip() == "revoked key 1 (ops, admin)"
    assert runner.invoke(app, ["keys", "list"]).output.splitlines()[1].split()[4] == "revoked"
    last = runner.invoke(app, ["keys", "revoke", "2"])
    assert last.exit_code == 2
    assert "last active admin key" in last.output
    missing = runner.invoke(app, ["keys", "revoke", "nobody"])
    assert (missing.exit_code, missing.output.strip()) == (
        2,
        "error: no active API key is named 'nobody'",
    )
    huge = runner.invoke(app, ["keys", "revoke", "9" * 25])  # past any id the database holds
    assert (huge.exit_code, huge.output.strip()) == (2, f"error: API key {'9' * 25} does not exist")


def test_help_shows_no_type_labels_and_whole_role_names() -> None:
    for argv in _commands(get_command(app)):
        shown = runner.invoke(app, [*argv, "--help"], terminal_width=80).output
        assert "--database-url" in shown, argv
        assert not re.search(r"<(str|int|bool|path|list\[[a-z]+\]|[a-z_]+\|)", shown), shown
    roles = runner.invoke(app, ["keys", "create", "--help"], terminal_width=80).output
    words = set(re.findall(r"[a-z]+", roles))
    assert {"admin", "leadership", "approver", "rep", "integration"} <= words


def test_import_speaks_the_documents_words(env: str, tmp_path: Path) -> None:
    published = runner.invoke(app, ["playbook", "import", str(DEMO), "--publish"])
    assert published.output.strip() == "standard version 1: published"
    bad = tmp_path / "bad.yaml"
    bad.write_text("key: x\nname: X\nterms:\n  - key: a\n    label: A\n")
    result = runner.invoke(app, ["playbook", "import", str(bad)])
    assert result.exit_code == 2
    assert "  terms[0].kind: required, one of number, choice, flag" in result.output.splitlines()
