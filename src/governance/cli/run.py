"""`governance migrate`, `serve`, `worker` and `demo`: running the service."""

from __future__ import annotations

from datetime import date, datetime
from importlib import resources
from typing import Annotated, Any

import typer

from governance import migrate as migrations
from governance.auth import service as auth_service
from governance.auth.principal import SYSTEM
from governance.cli.base import app, command, fail, open_db
from governance.db import Database
from governance.errors import GovernanceError
from governance.heartbeats.models import WorkerLoop
from governance.playbooks import formats, publication
from governance.playbooks import service as playbook_service
from governance.settings import get_settings

DEMO_PLAYBOOKS = ("standard.yaml",)


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
        fail(exc)
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
    db = open_db()
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
        fail(exc)
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
