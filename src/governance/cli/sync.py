"""`governance salesforce validate-mapping` and `sync pull|push|status`."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from governance.cli.base import command, fail, open_db, salesforce_app, sync_app
from governance.errors import GovernanceError
from governance.settings import get_settings


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
        fail(exc)
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
    db = open_db()
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
    db = open_db()
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
    db = open_db()
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

    db = open_db()
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
