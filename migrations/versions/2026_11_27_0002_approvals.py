"""Approvals: requests per (deal, group, chain step), approver groups, delegations, notifications.

Revision ID: 0002_approvals
Revises: 0001_foundation
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_approvals"
down_revision = "0001_foundation"
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
    op.add_column(
        "deals", sa.Column("approval_round", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column("deals", sa.Column("submitted_at", TS))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a nullable column with a reference in place; rebuilding `deals` in batch
        # mode would drop the table, and with foreign keys on, cascade to its checks.
        op.execute(
            "ALTER TABLE deals ADD COLUMN review_version_id INTEGER"
            " REFERENCES playbook_versions (id)"
        )
    else:
        op.add_column("deals", sa.Column("review_version_id", sa.Integer()))
        op.create_foreign_key(
            "fk_deals_review_version_id_playbook_versions",
            "deals",
            "playbook_versions",
            ["review_version_id"],
            ["id"],
        )

    op.create_table(
        "approval_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "deal_id",
            sa.Integer(),
            sa.ForeignKey(
                "deals.id", ondelete="CASCADE", name="fk_approval_requests_deal_id_deals"
            ),
            nullable=False,
        ),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column(
            "check_id",
            sa.Integer(),
            sa.ForeignKey("deal_checks.id", name="fk_approval_requests_check_id_deal_checks"),
            nullable=False,
        ),
        sa.Column(
            "playbook_version_id",
            sa.Integer(),
            sa.ForeignKey(
                "playbook_versions.id",
                name="fk_approval_requests_playbook_version_id_playbook_versions",
            ),
            nullable=False,
        ),
        sa.Column("playbook_key", sa.String(64), nullable=False),
        sa.Column("playbook_version", sa.Integer(), nullable=False),
        sa.Column("group", sa.String(100), nullable=False),
        sa.Column("chain_group", sa.String(100), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("terms", JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.Column("submitted_by", sa.String(200), nullable=False),
        sa.Column("opened_at", TS),
        sa.Column("due_at", TS),
        sa.Column("remind_at", TS),
        sa.Column("reminded_at", TS),
        sa.Column("escalated_at", TS),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("decided_at", TS),
        sa.Column("decided_by", sa.String(200)),
        sa.Column("on_behalf_of", sa.String(200)),
        sa.Column("admin_override", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("decided_values", JSON),
        sa.Column("counter_terms", JSON),
        sa.Column("counter_accepted_at", TS),
        *_timestamps(),
    )
    # The queue: pending requests of a few groups, in id order.
    op.create_index(
        "ix_approval_requests_status_group_id", "approval_requests", ["status", "group", "id"]
    )
    op.create_index("ix_approval_requests_deal_id_round", "approval_requests", ["deal_id", "round"])
    # Open requests in id order, for queues spanning several groups (see the model).
    op.create_index(
        "ix_approval_requests_open_id",
        "approval_requests",
        ["id"],
        postgresql_where=sa.text("status IN ('pending', 'waiting')"),
        sqlite_where=sa.text("status IN ('pending', 'waiting')"),
    )
    # The SLA sweep: pending requests by due time.
    op.create_index("ix_approval_requests_status_due_at", "approval_requests", ["status", "due_at"])

    op.create_table(
        "approval_groups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("sla_hours", sa.Integer()),
        sa.Column("webhook_url", sa.String(2000)),
        sa.Column("escalation_group", sa.String(100)),
        *_timestamps(),
        sa.UniqueConstraint("name", name="uq_approval_groups_name"),
    )

    op.create_table(
        "delegations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("delegator", sa.String(100), nullable=False),
        sa.Column("delegator_groups", JSON, nullable=False),
        sa.Column("delegate", sa.String(100), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("delegator", name="uq_delegations_delegator"),
    )
    op.create_index("ix_delegations_delegate", "delegations", ["delegate"])

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event", sa.String(50), nullable=False),
        sa.Column("group", sa.String(100), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.String(1000)),
        sa.Column("sent_at", TS),
        *_timestamps(),
    )
    op.create_index(
        "ix_notifications_status_next_attempt_at", "notifications", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("delegations")
    op.drop_table("approval_groups")
    op.drop_table("approval_requests")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(
            "fk_deals_review_version_id_playbook_versions", "deals", type_="foreignkey"
        )
    # SQLite (3.35+) drops a plain column in place; the reference goes with it.
    op.drop_column("deals", "review_version_id")
    op.drop_column("deals", "submitted_at")
    op.drop_column("deals", "approval_round")
