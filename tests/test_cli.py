"""The `governance` command, as leadership's CI and an operator would use it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.conftest import DEMO
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
