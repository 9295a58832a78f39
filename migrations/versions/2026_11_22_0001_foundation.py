"""Foundation: API keys, audit log, playbooks with versions and sign-offs, deals and checks.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# Decimals stay exact: NUMERIC on PostgreSQL, text on SQLite (whose NUMERIC rounds through a
# float). Scores are unconstrained: a ratio far past walk-away can exceed money's range.
MONEY = sa.Numeric(24, 8).with_variant(sa.String(64), "sqlite")
SCORE = sa.Numeric().with_variant(sa.String(64), "sqlite")
TS = sa.DateTime(timezone=True)


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("groups", JSON, nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.Column("revoked_at", TS),
        *_timestamps(),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("actor_role", sa.String(20), nullable=False),
        sa.Column("on_behalf_of", sa.String(200)),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("entity_type", sa.String(50), nullable=False),
        sa.Column("entity_id", sa.String(200), nullable=False),
        sa.Column("before", JSON),
        sa.Column("after", JSON),
        *_timestamps(),
    )
    op.create_index("ix_audit_log_entity", "audit_log", ["entity_type", "entity_id"])
    op.create_index("ix_audit_log_occurred_at", "audit_log", ["occurred_at"])

    op.create_table(
        "playbooks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("key", name="uq_playbooks_key"),
    )
    op.create_table(
        "playbook_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "playbook_id",
            sa.Integer(),
            sa.ForeignKey(
                "playbooks.id",
                ondelete="CASCADE",
                name="fk_playbook_versions_playbook_id_playbooks",
            ),
            nullable=False,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("document_hash", sa.String(64), nullable=False),
        sa.Column("scope", JSON, nullable=False),
        sa.Column("lock_version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("published_at", TS),
        sa.Column("published_by", sa.String(200)),
        sa.Column("superseded_at", TS),
        *_timestamps(),
        sa.UniqueConstraint("playbook_id", "number", name="uq_playbook_versions_playbook_id"),
        sa.CheckConstraint(
            "status IN ('draft', 'published', 'superseded')",
            name="ck_playbook_versions_status",
        ),
    )
    op.create_index("ix_playbook_versions_status", "playbook_versions", ["status"])

    op.create_table(
        "playbook_signoffs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "version_id",
            sa.Integer(),
            sa.ForeignKey(
                "playbook_versions.id",
                ondelete="CASCADE",
                name="fk_playbook_signoffs_version_id_playbook_versions",
            ),
            nullable=False,
        ),
        sa.Column("group", sa.String(64), nullable=False),
        sa.Column("signed_by", sa.String(200), nullable=False),
        sa.Column("admin_override", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("document_hash", sa.String(64), nullable=False),
        sa.Column("note", sa.String(2000)),
        *_timestamps(),
    )
    op.create_index("ix_playbook_signoffs_version_id", "playbook_signoffs", ["version_id"])

    op.create_table(
        "deals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("external_id", sa.String(18), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("region", sa.String(100)),
        sa.Column("segment", sa.String(100)),
        sa.Column("product_line", sa.String(100)),
        sa.Column("team", sa.String(100)),
        sa.Column("currency", sa.String(3)),
        sa.Column("amount", MONEY),
        sa.Column("stage", sa.String(100)),
        sa.Column("close_date", sa.Date()),
        sa.Column("owner_rep", sa.String(100)),
        sa.Column("value_position", sa.String(10)),
        sa.Column("extra_attributes", JSON, nullable=False),
        sa.Column("terms", JSON, nullable=False),
        sa.Column("playbook_key", sa.String(64)),
        sa.Column("status", sa.String(20), nullable=False, server_default="draft"),
        sa.Column("lock_version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("last_verdict", sa.String(20)),
        sa.Column("last_variance_score", SCORE),
        sa.Column("last_checked_at", TS),
        sa.Column("deleted_at", TS),
        *_timestamps(),
        sa.UniqueConstraint("external_id", name="uq_deals_external_id"),
    )
    op.create_index("ix_deals_region_segment", "deals", ["region", "segment"])

    op.create_table(
        "deal_checks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "deal_id",
            sa.Integer(),
            sa.ForeignKey("deals.id", ondelete="CASCADE", name="fk_deal_checks_deal_id_deals"),
            nullable=False,
        ),
        sa.Column(
            "playbook_version_id",
            sa.Integer(),
            sa.ForeignKey(
                "playbook_versions.id",
                name="fk_deal_checks_playbook_version_id_playbook_versions",
            ),
            nullable=False,
        ),
        sa.Column("playbook_key", sa.String(64), nullable=False),
        sa.Column("playbook_version", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("variance_score", SCORE, nullable=False),
        sa.Column("terms", JSON, nullable=False),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("result", JSON, nullable=False),
        sa.Column("checked_by", sa.String(200), nullable=False),
        *_timestamps(),
    )
    op.create_index("ix_deal_checks_deal_id_id", "deal_checks", ["deal_id", "id"])

    _make_audit_append_only()


def _make_audit_append_only() -> None:
    # The audit log is evidence: the database itself refuses to rewrite it.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'audit_log is append-only';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            """
            CREATE TRIGGER audit_log_append_only
            BEFORE UPDATE OR DELETE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()
            """
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"""
                CREATE TRIGGER audit_log_no_{verb.lower()}
                BEFORE {verb} ON audit_log
                BEGIN
                    SELECT RAISE(ABORT, 'audit_log is append-only');
                END
                """
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    op.drop_table("deal_checks")
    op.drop_table("deals")
    op.drop_table("playbook_signoffs")
    op.drop_table("playbook_versions")
    op.drop_table("playbooks")
    op.drop_table("audit_log")
    op.drop_table("api_keys")
