"""The `governance` command: serve, worker, migrate, playbook import/export, keys, demo."""

from __future__ import annotations

import functools
import inspect
import os
import sys
import typing
from collections.abc import Callable
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from typer import core as typer_core

from governance import migrate as migrations
from governance.auth import service as auth_service
from governance.auth.principal import SYSTEM
from governance.auth.schemas import ApiKeyCreate, Role
from governance.db import Database
from governance.errors import GovernanceError
from governance.heartbeats.models import WorkerLoop
from governance.playbooks import formats, publication
from governance.playbooks import service as playbook_service
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

DEMO_PLAYBOOKS = ("standard.yaml",)


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


def _db() -> Database:
    return Database(get_settings().database_url)


def _fail(exc: GovernanceError) -> None:
    from governance.errors import clean_loc
    from governance.problems import format_loc

    typer.echo(f"error: {exc.detail or exc.title}", err=True)
    for problem in exc.errors:
        typer.echo(f"  {format_loc(tuple(clean_loc(problem.loc)))}: {problem.message}", err=True)
    raise typer.Exit(code=2)


@command(app, schema=False)
def migrate(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    down: Annotated[bool, typer.Option(help="Downgrade to the revision instead.")] = False,
) -> None:
    """Apply the database migrations (GOVERNANCE_DATABASE_URL)."""
    url = get_settings().database_url
    if down:
        migrations.downgrade(url, revision)
    else:
        migrations.upgrade(url, revision)
    typer.echo(f"database at {revision}")


@command(app)
def worker(
    once: Annotated[bool, typer.Option(help="Run one pass of every loop and exit.")] = False,
    only: Annotated[
        list[WorkerLoop] | None,
        typer.Option(help="Run only this loop (repeat for several); default: all four."),
    ] = None,
) -> None:
    """Pull and push Salesforce, send approval reminders and escalations, post webhooks: each
    in a loop of its own, recording heartbeats (`governance sync status` shows them)."""
    from governance import worker as worker_loop
    from governance.logs import configure_logging
    from governance.playbooks.registry import PlaybookRegistry

    settings = get_settings()
    configure_logging(settings)
    db = Database(settings.database_url)
    try:
        if once:
            registry = PlaybookRegistry(db, settings.playbook_cache_seconds)
            report = worker_loop.run_once(db, registry, settings)
            typer.echo(", ".join(f"{k} {v}" for k, v in vars(report).items()))
            return
        loops = sorted(set(only), key=list(WorkerLoop).index) if only else list(WorkerLoop)
        typer.echo(
            f"worker loops {', '.join(loops)} every {settings.worker_interval_seconds}s; "
            "Ctrl-C stops them"
        )
        worker_loop.run_forever(db, settings, only=loops)
    finally:
        db.dispose()


@command(app)
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (GOVERNANCE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (GOVERNANCE_PORT).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the API; on first start with no keys, create and print an admin key once."""
    import uvicorn

    from governance.server import uvicorn_options

    settings = get_settings()
    db = Database(settings.database_url)
    bootstrap = (
        settings.bootstrap_admin_key.get_secret_value() if settings.bootstrap_admin_key else None
    )
    try:
        with db.unit_of_work() as session:
            secret = auth_service.ensure_admin_key(session, SYSTEM, bootstrap)
    except GovernanceError as exc:
        _fail(exc)
    finally:
        db.dispose()
    _serve_metrics_apart(settings, workers)
    if secret:
        typer.echo("=" * 72)
        typer.echo("No API keys existed, so an admin key was created. It is shown only now:")
        typer.echo(f"\n    {secret}\n")
        typer.echo("Use it as `Authorization: Bearer <key>`; create others with POST /v1/api-keys.")
        typer.echo("=" * 72)
    uvicorn.run(
        "governance.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        **uvicorn_options(settings),
    )


def _serve_metrics_apart(settings: Any, workers: int) -> None:
    """Share HTTP counters between worker processes, and serve /metrics on its own port when
    `metrics.port` says so (see governance.observability.metrics)."""
    import atexit
    import os
    import shutil
    import tempfile

    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Before prometheus_client is imported here, and before uvicorn starts its processes:
        # each one inherits it and counts into it.
        directory = tempfile.mkdtemp(prefix="governance-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    if settings.metrics.enabled and settings.metrics.port is not None:
        from governance.observability import metrics

        metrics.serve_apart(settings)


@command(playbook_app, "import")
def import_playbook(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    publish: Annotated[bool, typer.Option(help="Publish at once, as an admin sign-off.")] = False,
) -> None:
    """Import a YAML or JSON playbook document as a draft (or publish it)."""
    media = "application/json" if file.suffix.lower() == ".json" else "application/yaml"
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        typer.echo(
            f"error: {file} is not UTF-8 text (byte {exc.start}): save it as UTF-8", err=True
        )
        raise typer.Exit(code=2) from None
    db = _db()
    try:
        doc = formats.parse_text(text, media)
        with db.unit_of_work() as session:
            version, outcome = publication.import_document(
                session, SYSTEM, doc, publish_now=publish
            )
            said = {
                "published": "published",
                "created": "imported as a draft",
                "updated": "draft updated",
                "unchanged": f"unchanged ({version.status})",
            }
            typer.echo(f"{doc.key} version {version.number}: {said.get(outcome, outcome)}")
    except GovernanceError as exc:
        _fail(exc)
    finally:
        db.dispose()


@command(playbook_app, "export")
def export_playbook(
    key: str,
    version: Annotated[
        int | None, typer.Option(help="Version number (default: published).")
    ] = None,
    format: Annotated[str, typer.Option(help="yaml or json.")] = "yaml",
) -> None:
    """Print a playbook document (the published version by default)."""
    db = _db()
    try:
        with db.unit_of_work() as session:
            chosen = playbook_service.version_to_export(session, key, version)
            doc = playbook_service.document_of(chosen)
    except GovernanceError as exc:
        _fail(exc)
    finally:
        db.dispose()
    sys.stdout.write(formats.to_json(doc) + "\n" if format == "json" else formats.to_yaml(doc))


@command(keys_app, "create")
def create_key(
    role: Annotated[
        Role,
        typer.Option(
            help="One of: admin, leadership, approver, rep, integration.", show_choices=False
        ),
    ],
    group: Annotated[list[str] | None, typer.Option(help="Approver group (repeatable).")] = None,
    name: Annotated[
        str | None,
        typer.Option(help="A name to recognise the key by, unique among active keys."),
    ] = None,
) -> None:
    """Create an API key and print its secret (shown once); its groups must exist."""
    from governance.approvals import service as approval_service

    db = _db()
    try:
        with db.unit_of_work() as session:
            default = auth_service.free_name(session, f"{role.value}-cli")
            data = ApiKeyCreate(name=name or default, role=role, groups=group or [])
            key, secret = auth_service.create_key(
                session, SYSTEM, data, groups=approval_service.known_groups
            )
            typer.echo(
                f"created key {key.id} ({key.role}{' ' + ','.join(key.groups) if key.groups else ''})"
            )
    except GovernanceError as exc:
        _fail(exc)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    finally:
        db.dispose()
    typer.echo(secret)


@command(keys_app, "list")
def list_keys() -> None:
    """List API keys (never their secrets): id, name, role, groups, and whether revoked."""
    db = _db()
    try:
        with db.unit_of_work() as session:
            keys = auth_service.list_keys(session)
            rows = [
                (
                    str(k.id),
                    k.name,
                    k.role,
                    ",".join(k.groups) or "-",
                    f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active",
                )
                for k in keys
            ]
    finally:
        db.dispose()
    header = ("id", "name", "role", "groups", "state")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@command(keys_app, "revoke")
def revoke_key(
    key: Annotated[str, typer.Argument(help="The key's id or its name (an active key's).")],
) -> None:
    """Revoke an API key at once (the last active admin key cannot be revoked)."""
    db = _db()
    try:
        with db.unit_of_work() as session:
            revoked = auth_service.revoke_key_by(session, SYSTEM, key)
            typer.echo(f"revoked key {revoked.id} ({revoked.name}, {revoked.role})")
    except GovernanceError as exc:
        _fail(exc)
    finally:
        db.dispose()


@command(app)
def demo(
    if_empty: Annotated[bool, typer.Option(help="Only when no playbook exists yet.")] = False,
    deals: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Also generate this many deals of sample history (into a database with none).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same history.")] = 0,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="The day the history ends (default today, UTC); part of what the seed repeats.",
        ),
    ] = None,
) -> None:
    """Load and publish the sample playbook; with --deals, generate a sample history too."""
    db = _db()
    try:
        with db.unit_of_work() as session:
            if if_empty and playbook_service.playbooks_exist(session):
                typer.echo("playbooks already present; demo not loaded")
                return
            if deals is not None:
                from governance.demo import generator

                generator.ensure_no_deals(session)
            for name in DEMO_PLAYBOOKS:
                text = resources.files("governance.demo").joinpath(name).read_text(encoding="utf-8")
                doc = formats.parse_text(text, "application/yaml")
                version, outcome = publication.import_document(
                    session, SYSTEM, doc, publish_now=True
                )
                typer.echo(f"demo playbook {doc.key} version {version.number}: {outcome}")
        if deals is not None:
            _generate(db, deals, seed, as_of.date() if as_of else None)
    except GovernanceError as exc:
        _fail(exc)
    finally:
        db.dispose()


def _generate(db: Database, deals: int, seed: int, as_of: date | None) -> None:
    from governance.demo import generator

    def progress(report: generator.Report) -> None:
        if report.deals % 100_000 < generator.CHUNK or report.deals == deals:
            typer.echo(f"  {report.deals:,} deals ({report.rate:,.0f}/s)", err=True)

    report = generator.generate(
        db, deals, seed=seed, as_of=as_of, sla_hours=get_settings().approval_sla_hours,
        progress=progress,
    )  # fmt: skip
    verdicts = ", ".join(f"{v} {n:,}" for v, n in sorted(report.verdicts.items()))
    typer.echo(
        f"generated {report.deals:,} deals ({verdicts}), {report.approvals:,} approval requests, "
        f"{report.outcomes:,} outcomes, {report.reviews:,} reviews, "
        f"{report.rep_profiles} rep profiles in {report.seconds:.1f} s "
        f"({report.rate:,.0f} deals/s)"
    )


def _mapping_and_client() -> tuple[Any, Any]:
    from governance.salesforce import service as sf_service
    from governance.salesforce.client import SalesforceError
    from governance.salesforce.mapping import MappingError

    settings = get_settings()
    try:
        mapping = sf_service.mapping_of(settings)
    except MappingError as exc:
        typer.echo("error: the mapping file is invalid", err=True)
        for problem in exc.problems:
            typer.echo(f"  {'.'.join(map(str, problem.loc))}: {problem.message}", err=True)
        raise typer.Exit(code=2) from None
    except GovernanceError as exc:
        _fail(exc)
    try:
        client = sf_service.client_of(settings)
    except SalesforceError as exc:
        typer.echo(f"error: cannot connect to Salesforce: {exc.code} {exc.message}", err=True)
        raise typer.Exit(code=1) from None
    return mapping, client


@command(salesforce_app, "validate-mapping")
def validate_mapping() -> None:
    """Compare the mapping file with the org's describe results (fields and types)."""
    from governance.playbooks.registry import PlaybookRegistry
    from governance.salesforce.client import SalesforceError
    from governance.salesforce.mapping import check_against
    from governance.salesforce.outbound import PRODUCED

    mapping, client = _mapping_and_client()
    settings = get_settings()
    db = _db()
    try:
        registry = PlaybookRegistry(db, 0)
        kinds = {t.key: t.kind for p in registry.load() for t in p.compiled.terms}
        problems = check_against(mapping, client.describe, kinds, PRODUCED)
    except SalesforceError as exc:
        typer.echo(
            f"error: Salesforce refused the describe call: {exc.code} {exc.message}", err=True
        )
        raise typer.Exit(code=1) from None
    finally:
        db.dispose()
    if problems:
        typer.echo(f"{len(problems)} problem(s) in {settings.salesforce.mapping_file}:", err=True)
        for problem in problems:
            typer.echo(f"  {'.'.join(map(str, problem.loc))}: {problem.message}", err=True)
        raise typer.Exit(code=1)
    typer.echo(
        f"mapping OK: {len(mapping.terms)} terms, {len(mapping.attributes)} attributes and "
        f"{len(mapping.outputs)} outputs match {mapping.sobject} in the org"
    )


@command(sync_app, "pull")
def sync_pull(
    max_pages: Annotated[int | None, typer.Option(help="Stop after this many pages.")] = None,
) -> None:
    """Pull changed opportunities (the first run loads them all); resumable at any point."""
    from governance.playbooks.registry import PlaybookRegistry
    from governance.salesforce import inbound

    mapping, client = _mapping_and_client()
    settings = get_settings()
    db = _db()
    try:
        registry = PlaybookRegistry(db, settings.playbook_cache_seconds)
        if sys.stderr.isatty():  # a terminal: a progress bar (REST pages or Bulk result sets)
            with typer.progressbar(length=1, label="pulling opportunities", file=sys.stderr) as bar:

                def progress(done: int, total: int) -> None:
                    bar.length = max(total, 1)
                    bar.update(done - bar.pos)

                report, _run = inbound.pull(
                    db, client, registry, settings, mapping, progress=progress, max_pages=max_pages
                )
        else:
            report, _run = inbound.pull(
                db, client, registry, settings, mapping, max_pages=max_pages
            )
    finally:
        db.dispose()
    typer.echo(", ".join(f"{k} {v}" for k, v in report.counts().items()))
    for problem in report.problems[:20]:
        typer.echo(f"  not applied: {problem['id']}: {problem['reason']}", err=True)


@command(sync_app, "push")
def sync_push() -> None:
    """Write governance results and outcomes back to the opportunities (drains the outbox)."""
    from governance.salesforce import outbound

    mapping, client = _mapping_and_client()
    settings = get_settings()
    db = _db()
    try:
        report = outbound.push(db, client, mapping, settings.salesforce, settings.public_url)
    finally:
        db.dispose()
    typer.echo(
        f"pushed {report.pushed}, failed {report.failed}, dead {report.dead}, "
        f"api calls {report.api_calls}" + (f"; paused: {report.paused}" if report.paused else "")
    )


@command(sync_app, "status")
def sync_status() -> None:
    """The watermark, recent runs, API usage, the outbox size and the workers' heartbeats."""
    from governance.salesforce import service as sf_service

    db = _db()
    try:
        with db.unit_of_work() as session:
            status = sf_service.status(session, get_settings())
    finally:
        db.dispose()
    typer.echo(f"watermark: {status.watermark or 'none (the first pull loads everything)'}")
    usage = status.api_usage
    typer.echo(f"api usage: {f'{usage.used}/{usage.limit}' if usage else 'unknown'}")
    typer.echo(
        f"outbox: {status.outbox.get('pending', 0)} pending, {status.outbox.get('dead', 0)} dead"
    )
    if status.paused_until:
        typer.echo(f"paused until {status.paused_until}: {status.pause_reason}")
    for beat in status.workers:
        typer.echo(
            f"worker {beat.worker_id} {beat.loop}: beat {beat.beat_at:%Y-%m-%d %H:%M:%S}"
            + (" (stale)" if beat.stale else "")
            + f", {beat.passes} passes"
            + (f", last error {beat.last_error}" if beat.last_error else "")
        )
    for run in status.runs:
        counts = ", ".join(f"{k} {v}" for k, v in run.counts.items() if v)
        typer.echo(
            f"run {run.id} {run.kind} {run.status} at {run.started_at:%Y-%m-%d %H:%M}: {counts}"
        )


@command(audit_app, "verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain: "ok, N entries", or the first broken link (exit 1)."""
    from governance.audit import service as audit_service

    db = _db()
    try:
        with db.unit_of_work() as session:
            report = audit_service.verify(session)
    finally:
        db.dispose()
    if not report.ok:
        typer.echo(
            f"broken at entry {report.broken_at}: {report.problem} "
            f"({report.entries} entries before it verified)",
            err=True,
        )
        raise typer.Exit(code=1)
    typer.echo(f"ok, {report.entries} entries")


def main() -> None:
    app()
