"""Hardening: the org-wide term catalog, unique active key names, delegations by key id, and an
audit log that cannot be wiped and shows any rewrite.

- `term_catalog`: one entry per term key (label, kind, owning group), filled from the playbook
  versions published now. When published playbooks disagree about a key, the definition of the
  least specific playbook wins (fewest scope attributes: the organization's broad playbook, not a
  narrow one that may have redefined the term), then the earliest published, then the playbook
  key. Each entry is recorded as a `term.added` audit entry naming its source and, when there
  were any, the conflicting definitions, so an admin can review them: a playbook whose term now
  disagrees with the catalog's owner needs the catalog owner's sign-off at its next publication.
- `api_keys`: no two active keys share a name (a partial unique index). Existing duplicates are
  renamed first: among active keys with one name, the oldest keeps it and each other becomes
  `<name>-<id>` (an `api_key.renamed` audit entry records each).
- `delegations`: the delegator and the delegate are key ids, not names. An existing delegation
  keeps its delegator's key as its latest `delegation.saved` audit entry names it (else the one
  active key with that name) and its delegate's key when exactly one active key has that name
  and may decide approvals. A delegation that cannot be resolved this way is dropped (a
  `delegation.removed` audit entry records it): a name two keys share is how a stranger came to
  decide for someone, so the migration does not guess.
- `audit_log`: each entry stores `prev_hash` and `entry_hash`, sha256 over the previous entry's
  hash and this entry's content, computed here for every existing entry in id order (with the
  frozen copy of `governance.audit.chain` below); `audit_chain` holds the chain's last link,
  which writers lock to take their turn. PostgreSQL refuses `TRUNCATE audit_log` (a
  statement-level trigger; the row triggers never fire for it) and SQLite refuses an insert
  that reuses an existing id (`INSERT OR REPLACE` deleted and rewrote the row).

Revision ID: 0005_hardening
Revises: 0004_outcomes_analytics
Create Date: 2026-12-06
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_hardening"
down_revision = "0004_outcomes_analytics"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)
ACTOR = "migration:0005_hardening"
DECIDERS = ("admin", "leadership", "approver")
log = logging.getLogger("alembic.runtime.migration")


def _timestamps() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    ]


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _json(value: Any) -> Any:
    """A JSON column's value as Python (SQLite hands back text)."""
    return json.loads(value) if isinstance(value, str) else value


def _audit(
    connection: sa.Connection, action: str, entity_type: str, entity_id: object, **change: Any
) -> None:
    """Record what the migration changed in the data, as the service would."""
    now = datetime.now(UTC)
    audit = sa.table(
        "audit_log",
        sa.column("occurred_at", TS),
        sa.column("actor", sa.String),
        sa.column("actor_role", sa.String),
        sa.column("action", sa.String),
        sa.column("entity_type", sa.String),
        sa.column("entity_id", sa.String),
        sa.column("before", JSON),
        sa.column("after", JSON),
        sa.column("created_at", TS),
        sa.column("updated_at", TS),
    )
    connection.execute(
        audit.insert().values(
            occurred_at=now,
            actor=ACTOR,
            actor_role="admin",
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            before=change.get("before"),
            after=change.get("after"),
            created_at=now,
            updated_at=now,
        )
    )


def upgrade() -> None:
    connection = op.get_bind()
    _term_catalog(connection)
    _delegations_by_key_id(connection)
    _unique_active_key_names(connection)
    _audit_chain(connection)  # last: it chains the entries the steps above recorded too


def downgrade() -> None:
    _audit_chain_undone()
    _delegations_by_name_again()
    op.drop_index("uq_api_keys_name_active", table_name="api_keys")
    op.drop_table("term_catalog")


# --- the term catalog --------------------------------------------------------------------------


def _term_catalog(connection: sa.Connection) -> None:
    catalog = op.create_table(
        "term_catalog",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200)),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("key", name="uq_term_catalog_key"),
    )
    published = connection.execute(
        sa.text(
            "SELECT p.key, v.number, v.scope, v.document, v.published_at "
            "FROM playbook_versions v JOIN playbooks p ON p.id = v.playbook_id "
            "WHERE v.status = 'published'"
        )
    ).all()

    def precedence(row: Any) -> tuple[int, str, str]:
        published_at = row.published_at
        if isinstance(published_at, datetime):
            published_at = published_at.astimezone(UTC).isoformat()
        return (len(_json(row.scope) or {}), str(published_at or ""), row.key)

    chosen: dict[str, dict[str, Any]] = {}
    conflicts: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(published, key=precedence):
        source = f"{row.key}/{row.number}"
        for term in _json(row.document).get("terms", []):
            entry = {
                "key": term["key"],
                "label": term.get("label"),
                "kind": term["kind"],
                "owner": term["owner"],
                "source": source,
            }
            first = chosen.setdefault(term["key"], entry)
            if first is not entry and (first["owner"], first["kind"]) != (
                entry["owner"],
                entry["kind"],
            ):
                conflicts.setdefault(term["key"], []).append(
                    {"source": source, "owner": entry["owner"], "kind": entry["kind"]}
                )
    now = datetime.now(UTC)
    for key in sorted(chosen):
        entry = chosen[key]
        connection.execute(catalog.insert().values(**entry, created_at=now, updated_at=now))
        after = {k: entry[k] for k in ("label", "kind", "owner", "source")}
        if key in conflicts:
            after["conflicts"] = conflicts[key]
            log.warning(
                "term %r: catalog owner %r from %s; other published definitions: %s",
                key, entry["owner"], entry["source"], conflicts[key],
            )  # fmt: skip
        _audit(connection, "term.added", "term", key, after=after)


# --- delegations by key id ---------------------------------------------------------------------


def _delegator_key_ids(connection: sa.Connection) -> dict[str, int]:
    """Delegator name -> the key that saved the delegation, from the latest audit entry."""
    rows = connection.execute(
        sa.text(
            "SELECT entity_id, actor FROM audit_log WHERE action = 'delegation.saved' "
            "AND entity_type = 'delegation' ORDER BY id"
        )
    ).all()
    out: dict[str, int] = {}
    for entity_id, actor in rows:
        match = re.fullmatch(r"key:(\d+):(.*)", actor or "", re.DOTALL)
        if match and match.group(2) == entity_id:
            out[entity_id] = int(match.group(1))
    return out


def _delegations_by_key_id(connection: sa.Connection) -> None:
    keys = connection.execute(
        sa.text("SELECT id, name, role FROM api_keys WHERE revoked_at IS NULL")
    ).all()
    active: dict[str, list[tuple[int, str]]] = {}
    for key_id, name, role in keys:
        active.setdefault(name, []).append((key_id, role))
    saved_by = _delegator_key_ids(connection)

    with op.batch_alter_table("delegations") as batch:
        batch.add_column(sa.Column("delegator_key_id", sa.Integer()))
        batch.add_column(sa.Column("delegate_key_id", sa.Integer()))

    rows = connection.execute(
        sa.text("SELECT id, delegator, delegate, delegator_groups FROM delegations ORDER BY id")
    ).all()
    for row_id, delegator, delegate, groups in rows:
        delegator_ids = [key_id for key_id, _role in active.get(delegator, [])]
        delegator_id = saved_by.get(delegator)
        if delegator_id not in delegator_ids:
            delegator_id = delegator_ids[0] if len(delegator_ids) == 1 else None
        delegates = active.get(delegate, [])
        delegate_id = (
            delegates[0][0] if len(delegates) == 1 and delegates[0][1] in DECIDERS else None
        )
        if delegator_id is None or delegate_id is None or delegator_id == delegate_id:
            connection.execute(sa.text("DELETE FROM delegations WHERE id = :id"), {"id": row_id})
            if delegator_id is None:
                why = f"no single active key is the delegator {delegator!r}"
            elif len(delegates) != 1:
                why = f"{len(delegates)} active keys are named {delegate!r}"
            elif delegate_id is None:
                why = f"the active key named {delegate!r} cannot decide approvals"
            else:
                why = "the delegate is the delegator's own key"
            log.warning("delegation of %r to %r dropped: %s", delegator, delegate, why)
            _audit(
                connection,
                "delegation.removed",
                "delegation",
                delegator,
                before={"delegator": delegator, "delegate": delegate, "groups": _json(groups)},
                after={"reason": f"not resolvable to key ids: {why}"},
            )
            continue
        connection.execute(
            sa.text(
                "UPDATE delegations SET delegator_key_id = :delegator, delegate_key_id = :delegate "
                "WHERE id = :id"
            ),
            {"delegator": delegator_id, "delegate": delegate_id, "id": row_id},
        )

    # Rebuilt in batch mode on SQLite (a column under a unique constraint cannot be dropped in
    # place); nothing references `delegations`, so the rebuild loses nothing. PostgreSQL alters
    # the table in place.
    with op.batch_alter_table("delegations") as batch:
        batch.drop_index("ix_delegations_delegate")
        batch.drop_constraint("uq_delegations_delegator", type_="unique")
        batch.drop_column("delegator")
        batch.drop_column("delegate")
        batch.alter_column("delegator_key_id", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("delegate_key_id", existing_type=sa.Integer(), nullable=False)
        batch.create_unique_constraint("uq_delegations_delegator_key_id", ["delegator_key_id"])
        batch.create_foreign_key(
            "fk_delegations_delegator_key_id_api_keys",
            "api_keys",
            ["delegator_key_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_foreign_key(
            "fk_delegations_delegate_key_id_api_keys",
            "api_keys",
            ["delegate_key_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index("ix_delegations_delegate_key_id", ["delegate_key_id"])


def _delegations_by_name_again() -> None:
    connection = op.get_bind()
    with op.batch_alter_table("delegations") as batch:
        batch.add_column(sa.Column("delegator", sa.String(100)))
        batch.add_column(sa.Column("delegate", sa.String(100)))
    connection.execute(
        sa.text(
            "UPDATE delegations SET "
            "delegator = (SELECT name FROM api_keys WHERE api_keys.id = delegator_key_id), "
            "delegate = (SELECT name FROM api_keys WHERE api_keys.id = delegate_key_id)"
        )
    )
    with op.batch_alter_table("delegations") as batch:
        batch.drop_index("ix_delegations_delegate_key_id")
        batch.drop_constraint("fk_delegations_delegate_key_id_api_keys", type_="foreignkey")
        batch.drop_constraint("fk_delegations_delegator_key_id_api_keys", type_="foreignkey")
        batch.drop_constraint("uq_delegations_delegator_key_id", type_="unique")
        batch.drop_column("delegator_key_id")
        batch.drop_column("delegate_key_id")
        batch.alter_column("delegator", existing_type=sa.String(100), nullable=False)
        batch.alter_column("delegate", existing_type=sa.String(100), nullable=False)
        batch.create_unique_constraint("uq_delegations_delegator", ["delegator"])
        batch.create_index("ix_delegations_delegate", ["delegate"])


# --- unique active key names -------------------------------------------------------------------


def _unique_active_key_names(connection: sa.Connection) -> None:
    keys = connection.execute(
        sa.text("SELECT id, name FROM api_keys WHERE revoked_at IS NULL ORDER BY id")
    ).all()
    taken: set[str] = set()
    renames: list[tuple[int, str, str]] = []
    for key_id, name in keys:
        if name not in taken:
            taken.add(name)
            continue
        suffix = f"-{key_id}"
        new = name[: 100 - len(suffix)] + suffix
        n = 1
        while new in taken:
            n += 1
            suffix = f"-{key_id}-{n}"
            new = name[: 100 - len(suffix)] + suffix
        taken.add(new)
        renames.append((key_id, name, new))
    for key_id, old, new in renames:
        connection.execute(
            sa.text("UPDATE api_keys SET name = :name WHERE id = :id"), {"name": new, "id": key_id}
        )
        log.warning("API key %s renamed from %r to %r: active names are unique", key_id, old, new)
        _audit(
            connection,
            "api_key.renamed",
            "api_key",
            key_id,
            before={"name": old},
            after={"name": new, "reason": "another active key has the same name"},
        )
    op.create_index(
        "uq_api_keys_name_active",
        "api_keys",
        ["name"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
        sqlite_where=sa.text("revoked_at IS NULL"),
    )


# --- the audit chain ---------------------------------------------------------------------------

# A frozen copy of `governance.audit.chain` (version 1): the hashes computed here must stay what
# `governance audit verify` recomputes, whatever the service's code becomes.
GENESIS = "0" * 64
CHAIN_FIELDS = (
    "id",
    "occurred_at",
    "actor",
    "actor_role",
    "on_behalf_of",
    "action",
    "entity_type",
    "entity_id",
    "before",
    "after",
)


def _normal(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.isoformat(timespec="microseconds")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    return value


def _link(prev_hash: str, entry: Mapping[str, Any]) -> str:
    content = {name: _normal(entry[name]) for name in CHAIN_FIELDS}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical.encode()).hexdigest()


SQLITE_ROW_TRIGGERS = {
    verb: f"""
    CREATE TRIGGER audit_log_no_{verb.lower()}
    BEFORE {verb} ON audit_log
    BEGIN
        SELECT RAISE(ABORT, 'audit_log is append-only');
    END
    """
    for verb in ("UPDATE", "DELETE")
}


def _audit_chain(connection: sa.Connection) -> None:
    postgresql = _is_postgresql()
    # The hashes of existing entries are written once, here, with the triggers set aside.
    if postgresql:
        op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
    else:
        for verb in SQLITE_ROW_TRIGGERS:
            op.execute(f"DROP TRIGGER audit_log_no_{verb.lower()}")
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(64)))
        batch.add_column(sa.Column("entry_hash", sa.String(64)))

    audit = sa.table(
        "audit_log",
        sa.column("id", sa.Integer),
        sa.column("occurred_at", TS),
        sa.column("actor", sa.String),
        sa.column("actor_role", sa.String),
        sa.column("on_behalf_of", sa.String),
        sa.column("action", sa.String),
        sa.column("entity_type", sa.String),
        sa.column("entity_id", sa.String),
        sa.column("before", JSON),
        sa.column("after", JSON),
    )
    columns = [audit.c[name] for name in CHAIN_FIELDS]
    store = sa.text("UPDATE audit_log SET prev_hash = :prev, entry_hash = :hash WHERE id = :id")
    previous, last_id = GENESIS, 0
    while True:
        rows = connection.execute(
            sa.select(*columns).where(audit.c.id > last_id).order_by(audit.c.id).limit(2000)
        ).all()
        if not rows:
            break
        updates = []
        for row in rows:
            entry_hash = _link(previous, row._mapping)
            updates.append({"prev": previous, "hash": entry_hash, "id": row.id})
            previous, last_id = entry_hash, row.id
        connection.execute(store, updates)

    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("entry_hash", existing_type=sa.String(64), nullable=False)
    head = op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        *_timestamps(),
    )
    now = datetime.now(UTC)
    connection.execute(
        head.insert().values(
            id=1, last_id=last_id, last_hash=previous, created_at=now, updated_at=now
        )
    )

    if postgresql:
        op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        # Row triggers never fire for TRUNCATE: refuse the statement itself.
        op.execute(
            """
            CREATE TRIGGER audit_log_no_truncate
            BEFORE TRUNCATE ON audit_log
            FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()
            """
        )
    else:
        for statement in SQLITE_ROW_TRIGGERS.values():
            op.execute(statement)
        # INSERT OR REPLACE deletes the row it collides with (no DELETE trigger fires for that)
        # and writes its own: refuse an insert that names an id already taken.
        op.execute(
            """
            CREATE TRIGGER audit_log_no_replace
            BEFORE INSERT ON audit_log
            WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id)
            BEGIN
                SELECT RAISE(ABORT, 'audit_log is append-only');
            END
            """
        )


def _audit_chain_undone() -> None:
    postgresql = _is_postgresql()
    if postgresql:
        op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
    else:
        op.execute("DROP TRIGGER audit_log_no_replace")
        for verb in SQLITE_ROW_TRIGGERS:  # a rebuilt table loses them; they come back below
            op.execute(f"DROP TRIGGER audit_log_no_{verb.lower()}")
    op.drop_table("audit_chain")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("entry_hash")
        batch.drop_column("prev_hash")
    if postgresql:
        # The chain numbered entries itself; the previous revision's inserts use the sequence.
        op.execute(
            "SELECT setval(pg_get_serial_sequence('audit_log', 'id'), "
            "COALESCE((SELECT MAX(id) FROM audit_log), 0) + 1, false)"
        )
    else:
        for statement in SQLITE_ROW_TRIGGERS.values():
            op.execute(statement)
