"""Outcomes and analytics: per-term outcomes, preparations, after-action reviews, rep profiles,
and the denormalised figures analytics aggregate (latest per-term variance, cycle times).

Revision ID: 0004_outcomes_analytics
Revises: 0003_salesforce
Create Date: 2026-11-27
"""

from __future__ import annotations

import json
from decimal import Decimal

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_outcomes_analytics"
down_revision = "0003_salesforce"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(24, 8).with_variant(sa.String(64), "sqlite")
SCORE = sa.Numeric().with_variant(sa.String(64), "sqlite")

# Extended statistics on the band expressions analytics group by (PostgreSQL 14+): without them
# the planner guesses hundreds of thousands of groups and aggregates on one core; with them it
# aggregates in parallel (consistency over 3.5M won term rows: 1.4 s → 0.9 s). The expressions
# are those `analytics.repository` writes, constants and all.
_AMOUNT_BAND = (
    "CASE WHEN (amount_cents IS NULL) THEN 'unknown' ELSE CASE "
    "WHEN (amount_cents < 1000000) THEN '< 10k' WHEN (amount_cents < 5000000) THEN '10k–50k' "
    "WHEN (amount_cents < 25000000) THEN '50k–250k' "
    "WHEN (amount_cents < 100000000) THEN '250k–1M' ELSE '≥ 1M' END END"
)


def _score_band(column: str) -> str:
    bands = ((0, "0"), (100000, "(0, 0.1]"), (200000, "(0.1, 0.2]"), (350000, "(0.2, 0.35]"))
    whens = " ".join(f"WHEN ({column} <= {upper}) THEN '{label}'" for upper, label in bands)
    return f"CASE {whens} WHEN ({column} <= 500000) THEN '(0.35, 0.5]' ELSE '> 0.5' END"


STATISTICS = {
    "st_deal_outcome_terms_amount_band": ("deal_outcome_terms", _AMOUNT_BAND),
    "st_deal_outcome_terms_score_band": ("deal_outcome_terms", _score_band("deal_variance_micro")),
    "st_deal_outcomes_score_band": ("deal_outcomes", _score_band("variance_micro")),
}


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    ]


def _context(*, playbook: bool = True) -> list[sa.Column[object]]:
    """`db.DealContext`: the deal's context copied onto analytics facts."""
    columns: list[sa.Column[object]] = [
        sa.Column("region", sa.String(100)),
        sa.Column("segment", sa.String(100)),
        sa.Column("team", sa.String(100)),
        sa.Column("owner_rep", sa.String(100)),
    ]
    if playbook:
        columns += [
            sa.Column("playbook_key", sa.String(64)),
            sa.Column("playbook_version", sa.Integer()),
        ]
    return columns


def _deal_fk(table: str) -> sa.Column[int]:
    return sa.Column(
        "deal_id",
        sa.Integer(),
        sa.ForeignKey("deals.id", ondelete="CASCADE", name=f"fk_{table}_deal_id_deals"),
        nullable=False,
    )


def upgrade() -> None:
    op.add_column("deals", sa.Column("checked_playbook", sa.String(64)))
    op.add_column("deals", sa.Column("checked_version", sa.Integer()))
    op.add_column("deals", sa.Column("variance_micro", sa.BigInteger()))
    op.add_column("deals", sa.Column("zero_terms", sa.BigInteger()))
    # Covering indexes (PostgreSQL): each report reads its facts from one of these alone, a
    # fraction of the table, instead of the wide rows (see bench/RESULTS.md).
    op.create_index(
        "ix_deals_last_checked_at",
        "deals",
        ["last_checked_at"],
        postgresql_include=[
            "last_verdict", "variance_micro", "zero_terms", "region", "segment", "team",
            "owner_rep", "checked_playbook", "checked_version",
        ],
        postgresql_where=sa.text("deleted_at IS NULL AND last_verdict IS NOT NULL"),
    )  # fmt: skip

    op.create_table(
        "deal_term_checks",
        _deal_fk("deal_term_checks"),
        sa.Column("term_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("variance_ratio_micro", sa.BigInteger(), nullable=False),
        sa.Column("checked_at", TS, nullable=False),
        *_context(),
        *_timestamps(),
        sa.PrimaryKeyConstraint("deal_id", "term_key", name="pk_deal_term_checks"),
    )
    op.create_index(
        "ix_deal_term_checks_checked_at",
        "deal_term_checks",
        ["checked_at"],
        postgresql_include=[
            "term_key", "status", "variance_ratio_micro", "region", "segment", "team",
            "owner_rep", "playbook_key", "playbook_version",
        ],
    )  # fmt: skip
    op.create_table(
        "analytics_term_bits",
        sa.Column("term_key", sa.String(64), nullable=False),
        sa.Column("bit", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("term_key", name="pk_analytics_term_bits"),
        sa.UniqueConstraint("bit", name="uq_analytics_term_bits_bit"),
    )

    op.add_column("approval_requests", sa.Column("first_opened_at", TS))
    op.add_column("approval_requests", sa.Column("cycle_seconds", sa.BigInteger()))
    op.add_column("approval_requests", sa.Column("within_sla", sa.Boolean()))
    for column in _context(playbook=False):
        op.add_column("approval_requests", column)
    op.create_index(
        "ix_approval_requests_decided_at",
        "approval_requests",
        ["decided_at"],
        postgresql_include=[
            "status", "chain_group", "step", "cycle_seconds", "within_sla", "escalation_level",
            "region", "segment", "team", "owner_rep", "playbook_key", "playbook_version",
        ],
        postgresql_where=sa.text("cycle_seconds IS NOT NULL"),
    )  # fmt: skip

    for column in (
        sa.Column("loss_reason", sa.String(500)),
        sa.Column("trades", JSON, nullable=False, server_default="[]"),
        sa.Column("playbook_key", sa.String(64)),
        sa.Column("playbook_version", sa.Integer()),
        sa.Column("amount", MONEY),
        sa.Column("amount_cents", sa.BigInteger()),
        sa.Column("verdict", sa.String(20)),
        sa.Column("variance_micro", sa.BigInteger()),
        sa.Column("cost", MONEY),
        sa.Column("cost_cents", sa.BigInteger()),
        sa.Column("currency", sa.String(3)),
        sa.Column("checked_on", sa.Date()),
        sa.Column("conceded_terms", sa.Integer()),
        sa.Column("missed_targets", sa.Integer()),
        *_context(playbook=False),
    ):
        op.add_column("deal_outcomes", column)
    op.create_index(
        "ix_deal_outcomes_close_date",
        "deal_outcomes",
        ["close_date"],
        postgresql_include=[
            "won", "verdict", "variance_micro", "currency", "checked_on", "amount_cents",
            "cost_cents", "conceded_terms",
            "missed_targets", "region", "segment", "team", "owner_rep", "playbook_key",
            "playbook_version",
        ],
    )  # fmt: skip

    op.create_table(
        "deal_outcome_terms",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "outcome_id",
            sa.Integer(),
            sa.ForeignKey(
                "deal_outcomes.id",
                ondelete="CASCADE",
                name="fk_deal_outcome_terms_outcome_id_deal_outcomes",
            ),
            nullable=False,
        ),
        _deal_fk("deal_outcome_terms"),
        sa.Column("term_key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("unit", sa.String(32)),
        sa.Column("opening", JSON),
        sa.Column("target", JSON),
        sa.Column("final", JSON),
        sa.Column("walk_away", JSON),
        sa.Column("final_micro", sa.BigInteger()),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("variance_ratio_micro", sa.BigInteger(), nullable=False),
        sa.Column("conceded", SCORE),
        sa.Column("conceded_share_micro", sa.BigInteger()),
        sa.Column("held", sa.Boolean()),
        sa.Column("traded", sa.Boolean(), nullable=False),
        sa.Column("gets", JSON, nullable=False),
        sa.Column("cost", MONEY),
        sa.Column("cost_cents", sa.BigInteger()),
        sa.Column("close_date", sa.Date()),
        sa.Column("won", sa.Boolean()),
        sa.Column("currency", sa.String(3)),
        sa.Column("amount_cents", sa.BigInteger()),
        sa.Column("deal_variance_micro", sa.BigInteger()),
        *_context(),
        *_timestamps(),
    )
    op.create_index("ix_deal_outcome_terms_term_key", "deal_outcome_terms", ["term_key"])
    op.create_index("ix_deal_outcome_terms_deal_id", "deal_outcome_terms", ["deal_id"])
    op.create_index(
        "ix_deal_outcome_terms_close_date",
        "deal_outcome_terms",
        ["close_date"],
        postgresql_include=[
            "term_key", "conceded_share_micro", "held", "traded", "currency", "cost_cents",
            "final_micro",
            "amount_cents", "deal_variance_micro", "region", "segment", "team", "owner_rep",
            "playbook_key", "playbook_version",
        ],
        postgresql_where=sa.text("won"),
    )  # fmt: skip

    op.create_table(
        "deal_preparations",
        sa.Column("id", sa.Integer(), primary_key=True),
        _deal_fk("deal_preparations"),
        sa.Column("goal", sa.Text()),
        sa.Column("terms", JSON, nullable=False),
        sa.Column("customer_interests", JSON, nullable=False),
        sa.Column("premortem", JSON, nullable=False),
        sa.Column("prepared_by", sa.String(200), nullable=False),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("deal_id", name="uq_deal_preparations_deal_id"),
    )

    op.create_table(
        "deal_reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        _deal_fk("deal_reviews"),
        sa.Column("instrumental", sa.Integer(), nullable=False),
        sa.Column("process", sa.Integer(), nullable=False),
        sa.Column("relationship", sa.Integer(), nullable=False),
        sa.Column("self_score", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("filed_by", sa.String(200), nullable=False),
        sa.Column("close_date", sa.Date()),
        *_context(),
        *_timestamps(),
        sa.UniqueConstraint("deal_id", name="uq_deal_reviews_deal_id"),
    )

    op.create_table(
        "rep_profiles",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rep", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("team", sa.String(100)),
        sa.Column("region", sa.String(100)),
        sa.Column("style", sa.String(20), nullable=False),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("rep", name="uq_rep_profiles_rep"),
    )

    if op.get_bind().dialect.name == "postgresql":
        for name, (table, expression) in STATISTICS.items():
            op.execute(f"CREATE STATISTICS {name} ON ({expression}) FROM {table}")
    _backfill()


def _micro(value: object) -> int:
    return int((Decimal(str(value)) * 1_000_000).to_integral_value())


def _backfill() -> None:
    """Fill the new figures from what is already stored: each deal's latest check (rows for the
    terms outside their band, bits for the others), the decided approval requests' cycle times,
    outcomes' close dates, and the deal context on requests and outcomes. Outcomes recorded
    before this revision get their per-term figures when they are next recorded."""
    bind = op.get_bind()
    latest = bind.execute(
        sa.text(
            "SELECT c.deal_id, c.playbook_key, c.playbook_version, c.variance_score, c.result, "
            "d.last_checked_at, d.region, d.segment, d.team, d.owner_rep "
            "FROM deal_checks c JOIN deals d ON d.id = c.deal_id "
            "WHERE d.deleted_at IS NULL "  # deleted deals keep no term rows
            "AND c.id = (SELECT max(id) FROM deal_checks WHERE deal_id = c.deal_id)"
        )
    ).all()
    bodies = [row[4] if isinstance(row[4], dict) else json.loads(row[4]) for row in latest]
    keys = sorted(
        {t["key"] for b in bodies for t in b.get("terms", []) if t.get("status") != "missing"}
    )
    bits = {key: bit for bit, key in enumerate(keys[:63])}
    if bits:
        bind.execute(
            sa.text("INSERT INTO analytics_term_bits (term_key, bit) VALUES (:key, :bit)"),
            [{"key": key, "bit": bit} for key, bit in bits.items()],
        )
    for row, body in zip(latest, bodies, strict=True):
        deal_id, key, version, score, _, checked_at, region, segment, team, rep = row
        mask = 0
        rows = []
        for term in body.get("terms", []):
            if term.get("status") == "missing":
                continue
            ratio = _micro(term["variance_ratio"])
            if ratio == 0 and term["key"] in bits:
                mask |= 1 << bits[term["key"]]
                continue
            rows.append(
                {
                    "deal_id": deal_id, "term_key": term["key"], "status": term["status"],
                    "ratio": ratio, "checked_at": checked_at, "region": region,
                    "segment": segment, "team": team, "rep": rep, "key": key, "version": version,
                }
            )  # fmt: skip
        bind.execute(
            sa.text(
                "UPDATE deals SET checked_playbook = :key, checked_version = :version, "
                "variance_micro = :score, zero_terms = :mask WHERE id = :id"
            ),
            {"key": key, "version": version, "score": _micro(score), "mask": mask, "id": deal_id},
        )
        if rows:
            bind.execute(
                sa.text(
                    "INSERT INTO deal_term_checks (deal_id, term_key, status, "
                    "variance_ratio_micro, checked_at, region, segment, team, owner_rep, "
                    "playbook_key, playbook_version) VALUES (:deal_id, :term_key, :status, "
                    ":ratio, :checked_at, :region, :segment, :team, :rep, :key, :version)"
                ),
                rows,
            )
    # Requests opened before this revision: the latest opening is all that is known.
    bind.execute(sa.text("UPDATE approval_requests SET first_opened_at = opened_at"))
    decided = bind.execute(
        sa.text(
            "SELECT id, opened_at, decided_at, due_at, escalation_level FROM approval_requests "
            "WHERE decided_at IS NOT NULL AND opened_at IS NOT NULL"
        )
    ).all()
    for request_id, opened, decided_at, due, level in decided:
        opened, decided_at, due = (_aware(v) for v in (opened, decided_at, due))
        bind.execute(
            sa.text(
                "UPDATE approval_requests SET cycle_seconds = :s, within_sla = :w WHERE id = :id"
            ),
            {
                "s": int((decided_at - opened).total_seconds()),
                "w": bool(level == 0 and (due is None or decided_at <= due)),
                "id": request_id,
            },
        )
    bind.execute(
        sa.text(
            "UPDATE deal_outcomes SET currency = "
            "(SELECT currency FROM deals WHERE deals.id = deal_outcomes.deal_id)"
        )
    )
    checked_on = (
        "date(last_checked_at)"
        if bind.dialect.name == "sqlite"
        else "CAST(last_checked_at AT TIME ZONE 'UTC' AS DATE)"
    )
    bind.execute(
        sa.text(
            f"UPDATE deal_outcomes SET checked_on = (SELECT {checked_on} FROM deals "
            "WHERE deals.id = deal_outcomes.deal_id)"
        )
    )
    for table in ("approval_requests", "deal_outcomes"):
        bind.execute(
            sa.text(
                f"UPDATE {table} SET "
                + ", ".join(
                    f"{c} = (SELECT {c} FROM deals WHERE deals.id = {table}.deal_id)"
                    for c in ("region", "segment", "team", "owner_rep")
                )
            )
        )
    bind.execute(
        sa.text(
            "UPDATE deal_outcomes SET close_date = "
            + (
                "date(closed_at)"
                if bind.dialect.name == "sqlite"
                else "CAST(closed_at AT TIME ZONE 'UTC' AS DATE)"
            )
            + " WHERE close_date IS NULL"
        )
    )


def _aware(value: object) -> object:
    from datetime import UTC, datetime

    if isinstance(value, str):  # SQLite hands back text
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in STATISTICS:
            op.execute(f"DROP STATISTICS IF EXISTS {name}")
    op.drop_table("rep_profiles")
    op.drop_table("deal_reviews")
    op.drop_table("deal_preparations")
    op.drop_index("ix_deal_outcome_terms_close_date", "deal_outcome_terms")
    op.drop_index("ix_deal_outcome_terms_deal_id", "deal_outcome_terms")
    op.drop_index("ix_deal_outcome_terms_term_key", "deal_outcome_terms")
    op.drop_table("deal_outcome_terms")
    op.drop_index("ix_deal_outcomes_close_date", "deal_outcomes")
    for column in (
        "owner_rep", "team", "segment", "region", "missed_targets", "conceded_terms", "checked_on",
        "currency",
        "cost_cents", "cost", "variance_micro", "verdict", "amount_cents", "amount",
        "playbook_version", "playbook_key", "trades", "loss_reason",
    ):  # fmt: skip
        op.drop_column("deal_outcomes", column)
    op.drop_index("ix_approval_requests_decided_at", "approval_requests")
    for column in ("owner_rep", "team", "segment", "region"):
        op.drop_column("approval_requests", column)
    op.drop_column("approval_requests", "within_sla")
    op.drop_column("approval_requests", "first_opened_at")
    op.drop_column("approval_requests", "cycle_seconds")
    op.drop_table("analytics_term_bits")
    op.drop_index("ix_deal_term_checks_checked_at", "deal_term_checks")
    op.drop_table("deal_term_checks")
    op.drop_index("ix_deals_last_checked_at", "deals")
    op.drop_column("deals", "zero_terms")
    op.drop_column("deals", "variance_micro")
    op.drop_column("deals", "checked_version")
    op.drop_column("deals", "checked_playbook")
