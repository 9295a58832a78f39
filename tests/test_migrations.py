"""Migrations run up and down, and leave the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from governance import migrate
from governance.db import Base


def test_up_down_up(scratch_url: str) -> None:
    url = scratch_url
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    migrate.upgrade(url)
    engine = create_engine(url)
    assert {"playbooks", "deals", "audit_log"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_models_match_migrations(scratch_url: str) -> None:
    url = scratch_url
    migrate.upgrade(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    # Server defaults and type spellings differ harmlessly; tables, columns, indexes must not.
    structural = [
        d
        for d in diff
        if d[0]
        in ("add_table", "remove_table", "add_column", "remove_column", "add_index", "remove_index")
    ]
    assert structural == []


def test_outcomes_revision_fills_analytics_from_stored_history(scratch_url: str) -> None:
    """Deals checked, requests decided and outcomes recorded before 0004 show in the reports."""
    url = scratch_url
    migrate.upgrade(url, "0003_salesforce")
    engine = create_engine(url)
    result = (
        '{"terms": [{"key": "discount_pct", "status": "exception", "variance_ratio": "0.5"},'
        ' {"key": "payment_terms_days", "status": "within", "variance_ratio": "0"},'
        ' {"key": "free_months", "status": "missing", "variance_ratio": "0"}]}'
    )
    with engine.begin() as c:
        c.execute(text("INSERT INTO playbooks (id, key, name) VALUES (1, 'standard', 'Standard')"))
        c.execute(
            text(
                "INSERT INTO playbook_versions (id, playbook_id, number, status, document, "
                "document_hash, scope, lock_version, created_by) VALUES "
                "(1, 1, 1, 'published', '{}', 'h', '{}', 1, 'x')"
            )
        )
        c.execute(
            text(
                "INSERT INTO deals (id, external_id, region, segment, owner_rep, terms, "
                "extra_attributes, status, lock_version, approval_round, last_verdict, "
                "last_checked_at) VALUES (1, '006000000000000001', 'EMEA', 'smb', 'ana', '{}', "
                "'{}', 'in_review', 1, 1, 'needs_approval', '2026-01-02 10:00:00')"
            )
        )
        c.execute(
            text(
                "INSERT INTO deal_checks (id, deal_id, playbook_version_id, playbook_key, "
                "playbook_version, verdict, variance_score, terms, attributes, result, checked_by) "
                f"VALUES (1, 1, 1, 'standard', 1, 'needs_approval', '0.25', '{{}}', '{{}}', "
                f"'{result}', 'x')"
            )
        )
        c.execute(
            text(
                "INSERT INTO approval_requests (deal_id, round, check_id, playbook_version_id, "
                'playbook_key, playbook_version, "group", chain_group, step, terms, status, '
                "lock_version, submitted_by, opened_at, due_at, decided_at, escalation_level, "
                "admin_override) VALUES (1, 1, 1, 1, 'standard', 1, 'finance', 'finance', 1, '[]', "
                "'approved', 2, 'x', '2026-01-02 10:00:00', '2026-01-03 10:00:00', "
                "'2026-01-02 16:00:00', 0, false)"
            )
        )
        c.execute(
            text(
                "INSERT INTO deal_outcomes (deal_id, won, closed_at, final_terms, source, "
                "recorded_by) VALUES (1, true, '2026-02-01 09:00:00', '{}', 'salesforce', 'x')"
            )
        )
    engine.dispose()
    migrate.upgrade(url)
    engine = create_engine(url)
    with engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT term_key, status, variance_ratio_micro, region, owner_rep, playbook_version "
                "FROM deal_term_checks"
            )
        ).all()
        assert [tuple(r) for r in rows] == [
            ("discount_pct", "exception", 500_000, "EMEA", "ana", 1)
        ]
        bits = dict(c.execute(text("SELECT term_key, bit FROM analytics_term_bits")).all())
        assert set(bits) == {"discount_pct", "payment_terms_days"}
        deal = c.execute(
            text("SELECT checked_playbook, checked_version, variance_micro, zero_terms FROM deals")
        ).one()
        assert tuple(deal) == ("standard", 1, 250_000, 1 << bits["payment_terms_days"])
        request = c.execute(
            text("SELECT cycle_seconds, within_sla, region, owner_rep FROM approval_requests")
        ).one()
        assert tuple(request) == (6 * 3600, True, "EMEA", "ana")
        outcome = c.execute(text("SELECT close_date, region, segment FROM deal_outcomes")).one()
        assert str(outcome[0]) == "2026-02-01"
        assert tuple(outcome[1:]) == ("EMEA", "smb")
    engine.dispose()
    migrate.downgrade(url, "0003_salesforce")
