"""The `governance` command: serve, worker, migrate, demo (`run`); playbook import/export, keys
and the audit check (`admin`); the Salesforce mapping check and sync (`sync`). `base` holds the
app, its groups and the `command` decorator they share."""

from __future__ import annotations

# Importing the command modules registers their commands on the app.
from governance.cli import admin, run, sync  # noqa: F401
from governance.cli.base import app

__all__ = ["app", "main"]


def main() -> None:
    app()
