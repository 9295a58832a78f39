"""Request ids on queued jobs: a webhook notification and a Salesforce push remember the
request that queued them, so the worker's log lines about them name it.

Revision ID: 0009_request_ids
Revises: 0008_worker_heartbeats
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_request_ids"
down_revision = "0008_worker_heartbeats"
branch_labels = None
depends_on = None

TABLES = ("notifications", "salesforce_outbox")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("request_id", sa.String(100), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("request_id")
