"""`governance playbook import|export`, `keys create|list|revoke` and `audit verify`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from governance.auth import service as auth_service
from governance.auth.principal import SYSTEM
from governance.auth.schemas import ApiKeyCreate, Role
from governance.cli.base import audit_app, command, fail, keys_app, open_db, playbook_app
from governance.errors import GovernanceError
from governance.playbooks import formats, publication
from governance.playbooks import service as playbook_service


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
    db = open_db()
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
        fail(exc)
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
    db = open_db()
    try:
        with db.unit_of_work() as session:
            chosen = playbook_service.version_to_export(session, key, version)
            doc = playbook_service.document_of(chosen)
    except GovernanceError as exc:
        fail(exc)
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

    db = open_db()
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
        fail(exc)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    finally:
        db.dispose()
    typer.echo(secret)


@command(keys_app, "list")
def list_keys() -> None:
    """List API keys (never their secrets): id, name, role, groups, and whether revoked."""
    db = open_db()
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
    db = open_db()
    try:
        with db.unit_of_work() as session:
            revoked = auth_service.revoke_key_by(session, SYSTEM, key)
            typer.echo(f"revoked key {revoked.id} ({revoked.name}, {revoked.role})")
    except GovernanceError as exc:
        fail(exc)
    finally:
        db.dispose()


@command(audit_app, "verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain: "ok, N entries", or the first broken link (exit 1)."""
    from governance.audit import service as audit_service

    db = open_db()
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
