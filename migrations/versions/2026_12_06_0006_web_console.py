"""Web console: browser sessions and the generated session-signing secret.

Revision ID: 0006_web_console
Revises: 0005_hardening
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_web_console"
down_revision = "0005_hardening"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column(
            "key_id",
            sa.Integer(),
            sa.ForeignKey(
                "api_keys.id", ondelete="CASCADE", name="fk_web_sessions_key_id_api_keys"
            ),
            nullable=False,
        ),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("ended_at", TS),
        *_timestamps(),
        sa.UniqueConstraint("token_hash", name="uq_web_sessions_token_hash"),
    )
    op.create_index("ix_web_sessions_key_id", "web_sessions", ["key_id"])
    op.create_table(
        "web_secrets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("name", name="uq_web_secrets_name"),
    )


def downgrade() -> None:
    op.drop_table("web_secrets")
    op.drop_index("ix_web_sessions_key_id", "web_sessions")
    op.drop_table("web_sessions")
