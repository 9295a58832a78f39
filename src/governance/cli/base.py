"""What the `governance` commands share: the Typer app and its command groups, the `command`
decorator (`--database-url`, the schema check), the database and the one-line failure."""

from __future__ import annotations

import functools
import inspect
import os
import typing
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer import core as typer_core

from governance import migrate as migrations
from governance.db import Database
from governance.errors import GovernanceError
from governance.settings import get_settings

app = typer.Typer(
    help="Deal governance service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
playbook_app = typer.Typer(help="Import and export playbook documents.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
salesforce_app = typer.Typer(
    help="Check the Salesforce connection and mapping.", no_args_is_help=True
)
sync_app = typer.Typer(help="Sync opportunities with Salesforce.", no_args_is_help=True)
audit_app = typer.Typer(help="Check the audit log.", no_args_is_help=True)
app.add_typer(playbook_app, name="playbook")
app.add_typer(keys_app, name="keys")
app.add_typer(salesforce_app, name="salesforce")
app.add_typer(sync_app, name="sync")
app.add_typer(audit_app, name="audit")


# Typer labels every option with its Python type (`<str>`, `<list[str]>`, `<bool>`) and writes
# a choice's values as one unbreakable word that wraps mid-name; the help text here says what
# each option takes in words, so options show no type column (`metavar`, when given, still shows).
def _no_type_label(self: Any, ctx: Any) -> str | None:
    metavar: str | None = self.metavar
    return metavar


typer_core._TyperParameter.display_type_rich = _no_type_label  # type: ignore[method-assign]
typer_core.TyperOption.display_type_rich = _no_type_label  # type: ignore[method-assign]

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="The database URL (default: GOVERNANCE_DATABASE_URL).",
        show_default=False,
    ),
]

Command = Callable[..., None]


def command(
    group: typer.Typer, name: str | None = None, *, schema: bool = True
) -> Callable[[Command], Command]:
    """Register a command with `--database-url`; with `schema`, it first refuses (in one line,
    exit 1) a database that is unreachable or not migrated to the latest schema."""

    def register(run: Command) -> Command:
        # Annotations are text here (`from __future__ import annotations`): evaluate them, or
        # the signature given to Typer loses each option's `typer.Option` help.
        signature = inspect.signature(run, eval_str=True)
        extra = inspect.Parameter(
            "database_url", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=DatabaseUrl
        )

        @functools.wraps(run)
        def wrapper(*args: Any, database_url: str | None = None, **kwargs: Any) -> None:
            _use_database(database_url)
            if schema:
                _require_schema()
            run(*args, **kwargs)

        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*signature.parameters.values(), extra]
        )
        wrapper.__annotations__ = {
            **typing.get_type_hints(run, include_extras=True),
            "database_url": DatabaseUrl,
        }
        group.command(name)(wrapper)
        return run

    return register


def _use_database(url: str | None) -> None:
    """`--database-url` wins over the environment, for this process and what it starts
    (`serve --workers N` starts processes that read the environment)."""
    if url:
        os.environ["GOVERNANCE_DATABASE_URL"] = url
        get_settings.cache_clear()


def _require_schema() -> None:
    url = get_settings().database_url
    shown = migrations.display_url(url)
    try:
        state = migrations.schema_state(url)
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        typer.echo(f"error: cannot open the database {shown}: {reason}", err=True)
        raise typer.Exit(code=1) from None
    if state != "current":
        what = "has no tables yet" if state == "empty" else "is not at the latest schema"
        typer.echo(f"error: the database {shown} {what}: run `governance migrate`", err=True)
        raise typer.Exit(code=1)


def open_db() -> Database:
    return Database(get_settings().database_url)


def fail(exc: GovernanceError) -> None:
    from governance.errors import clean_loc
    from governance.problems import format_loc

    typer.echo(f"error: {exc.detail or exc.title}", err=True)
    for problem in exc.errors:
        typer.echo(f"  {format_loc(tuple(clean_loc(problem.loc)))}: {problem.message}", err=True)
    raise typer.Exit(code=2)
