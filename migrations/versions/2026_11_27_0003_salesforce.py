"""Salesforce sync: pull watermark and runs, the push outbox, deal outcomes.

Revision ID: 0003_salesforce
Revises: 0002_approvals
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_salesforce"
down_revision = "0002_approvals"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.add_column("deals", sa.Column("sf_modstamp", TS))

    op.create_table(
        "salesforce_sync_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sobject", sa.String(100), nullable=False),
        sa.Column("watermark", TS),
        sa.Column("watermark_id", sa.String(18)),
        sa.Column("full_load_done", sa.Boolean(), nullable=False),
        sa.Column("paused_until", TS),
        sa.Column("pause_reason", sa.String(500)),
        sa.Column("api_used", sa.Integer()),
        sa.Column("api_limit", sa.Integer()),
        sa.Column("api_seen_at", TS),
        *_timestamps(),
        sa.UniqueConstraint("sobject", name="uq_salesforce_sync_state_sobject"),
    )

    op.create_table(
        "salesforce_sync_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("error", sa.String(1000)),
        sa.Column("api_calls", sa.Integer(), nullable=False),
        sa.Column("problems", JSON, nullable=False),
        *_timestamps(),
    )
    op.create_index("ix_salesforce_sync_runs_kind_id", "salesforce_sync_runs", ["kind", "id"])

    op.create_table(
        "salesforce_outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "deal_id",
            sa.Integer(),
            sa.ForeignKey(
                "deals.id", ondelete="CASCADE", name="fk_salesforce_outbox_deal_id_deals"
            ),
            nullable=False,
        ),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("claimed_until", TS),
        sa.Column("claimed_version", sa.Integer()),
        sa.Column("last_error", sa.String(1000)),
        sa.Column("last_values", JSON),
        *_timestamps(),
        sa.UniqueConstraint("deal_id", name="uq_salesforce_outbox_deal_id"),
    )
    op.create_index(
        "ix_salesforce_outbox_status_next_attempt_at",
        "salesforce_outbox",
        ["status", "next_attempt_at"],
    )

    op.create_table(
        "salesforce_fetch_queue",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("external_id", sa.String(18), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("external_id", name="uq_salesforce_fetch_queue_external_id"),
    )

    op.create_table(
        "deal_outcomes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "deal_id",
            sa.Integer(),
            sa.ForeignKey("deals.id", ondelete="CASCADE", name="fk_deal_outcomes_deal_id_deals"),
            nullable=False,
        ),
        sa.Column("won", sa.Boolean(), nullable=False),
        sa.Column("closed_at", TS, nullable=False),
        sa.Column("close_date", sa.Date()),
        sa.Column("final_terms", JSON, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("deal_id", name="uq_deal_outcomes_deal_id"),
    )


def downgrade() -> None:
    op.drop_table("deal_outcomes")
    op.drop_table("salesforce_fetch_queue")
    op.drop_table("salesforce_outbox")
    op.drop_table("salesforce_sync_runs")
    op.drop_table("salesforce_sync_state")
    op.drop_column("deals", "sf_modstamp")
