"""Who accepted a counter: the key, and the Salesforce user it acted for (`X-Acting-User`).

Revision ID: 0007_acting_user
Revises: 0006_web_console
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_acting_user"
down_revision = "0006_web_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "approval_requests", sa.Column("counter_accepted_by", sa.String(200), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.drop_column("counter_accepted_by")
