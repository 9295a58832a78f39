"""Worker heartbeats: one row per (loop, worker process), shown by the sync status.

Revision ID: 0008_worker_heartbeats
Revises: 0007_acting_user
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_worker_heartbeats"
down_revision = "0007_acting_user"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("loop", sa.String(20), nullable=False),
        sa.Column("worker_id", sa.String(200), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("beat_at", TS, nullable=False),
        sa.Column("pass_at", TS),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("last_error_at", TS),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("loop", "worker_id", name="pk_worker_heartbeats"),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
