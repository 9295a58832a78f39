"""Salesforce sync: the Bulk API 2.0 query job a big load is reading, so a killed load resumes.

Revision ID: 0010_bulk_query
Revises: 0009_request_ids
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_bulk_query"
down_revision = "0009_request_ids"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("salesforce_sync_state") as batch:
        batch.add_column(sa.Column("bulk_job_id", sa.String(18), nullable=True))
        batch.add_column(sa.Column("bulk_locator", sa.String(100), nullable=True))
        batch.add_column(sa.Column("bulk_ceiling", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("salesforce_sync_state") as batch:
        batch.drop_column("bulk_ceiling")
        batch.drop_column("bulk_locator")
        batch.drop_column("bulk_job_id")
