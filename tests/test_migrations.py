"""Migrations run up and down, and leave the schema the models describe."""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from governance import migrate
from governance.audit import service as audit_service
from governance.auth.principal import SYSTEM
from governance.db import Base, Database


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


def test_hardening_revision_keys_delegations_by_key_id(scratch_url: str) -> None:
    """Delegations given by name before 0005 keep their keys where a name picks out one active
    key; a delegate name two active keys share resolves to no one; duplicate names are renamed."""
    url = scratch_url
    migrate.upgrade(url, "0004_outcomes_analytics")
    engine = create_engine(url)
    with engine.begin() as c:
        for key_id, name, role, groups, revoked in (
            (1, "sam", "approver", '["sales_director"]', None),
            (2, "dana", "approver", '["deal_desk"]', None),
            (3, "fiona", "approver", '["finance"]', None),
            (4, "dana", "approver", '["legal"]', None),  # a second active "dana"
            (5, "sam", "approver", '["legal"]', "2026-01-01 00:00:00"),  # revoked
            (6, "carl", "rep", "[]", None),
            (7, "gus", "approver", '["cfo"]', None),
        ):
            c.execute(
                text(
                    "INSERT INTO api_keys (id, name, role, groups, key_hash, prefix, revoked_at) "
                    "VALUES (:id, :name, :role, :groups, :hash, 'gov_', :revoked)"
                ),
                {"id": key_id, "name": name, "role": role, "groups": groups,
                 "hash": f"h{key_id}", "revoked": revoked},
            )  # fmt: skip
        for delegator, delegate in (("sam", "gus"), ("fiona", "dana"), ("gus", "carl")):
            c.execute(
                text(
                    "INSERT INTO delegations (delegator, delegator_groups, delegate, starts_at,"
                    " ends_at) VALUES (:delegator, '[]', :delegate, '2026-01-01 00:00:00',"
                    " '2036-01-01 00:00:00')"
                ),
                {"delegator": delegator, "delegate": delegate},
            )
        c.execute(
            text(
                "INSERT INTO audit_log (occurred_at, actor, actor_role, action, entity_type,"
                " entity_id) VALUES ('2026-01-01 00:00:00', 'key:1:sam', 'approver',"
                " 'delegation.saved', 'delegation', 'sam')"
            )
        )
    engine.dispose()

    migrate.upgrade(url)
    engine = create_engine(url)
    with engine.connect() as c:
        kept = c.execute(
            text("SELECT delegator_key_id, delegate_key_id FROM delegations ORDER BY id")
        ).all()
        # sam -> gus resolves (1 -> 7); fiona -> "dana" names two keys and gus -> carl a rep.
        assert [tuple(r) for r in kept] == [(1, 7)]
        names = dict(c.execute(text("SELECT id, name FROM api_keys")).tuples().all())
        assert names == {1: "sam", 2: "dana", 3: "fiona", 4: "dana-4", 5: "sam", 6: "carl",
                         7: "gus"}  # fmt: skip
        recorded = c.execute(
            text(
                "SELECT action, entity_id FROM audit_log WHERE actor = 'migration:0005_hardening'"
                " ORDER BY id"
            )
        ).all()
        assert [tuple(r) for r in recorded] == [
            ("delegation.removed", "fiona"),
            ("delegation.removed", "gus"),
            ("api_key.renamed", "4"),
        ]
    with pytest.raises(IntegrityError), engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO api_keys (name, role, groups, key_hash, prefix) "
                "VALUES ('sam', 'rep', '[]', 'h8', 'gov_')"
            )
        )
    engine.dispose()

    migrate.downgrade(url, "0004_outcomes_analytics")
    engine = create_engine(url)
    with engine.connect() as c:
        back = c.execute(text("SELECT delegator, delegate FROM delegations")).all()
        assert [tuple(r) for r in back] == [("sam", "gus")]
    engine.dispose()


def test_hardening_revision_fills_the_term_catalog_from_published_playbooks(
    scratch_url: str,
) -> None:
    """The least specific published playbook's owner wins; drafts add nothing."""
    url = scratch_url
    migrate.upgrade(url, "0004_outcomes_analytics")
    engine = create_engine(url)

    def doc(key: str, owner: str, extra: str = "") -> str:
        return (
            f'{{"key": "{key}", "terms": [{{"key": "discount_pct", "label": "Discount",'
            f' "kind": "number", "owner": "{owner}"}}{extra}]}}'
        )

    flag = ', {"key": "eu_only", "kind": "flag", "owner": "security"}'
    with engine.begin() as c:
        for pid, key, number, status, scope, document, published_at in (
            (1, "emea", 1, "published", '{"region": "EMEA"}', doc("emea", "legal", flag),
             "2026-01-01 00:00:00"),
            (2, "standard", 2, "published", "{}", doc("standard", "finance"),
             "2026-02-01 00:00:00"),
            (3, "smb", 1, "draft", '{"segment": "smb"}', doc("smb", "sales"), None),
        ):  # fmt: skip
            c.execute(
                text("INSERT INTO playbooks (id, key, name) VALUES (:id, :key, :key)"),
                {"id": pid, "key": key},
            )
            c.execute(
                text(
                    "INSERT INTO playbook_versions (playbook_id, number, status, document,"
                    " document_hash, scope, lock_version, created_by, published_at) VALUES"
                    " (:pid, :number, :status, :document, 'h', :scope, 1, 'x', :published_at)"
                ),
                {"pid": pid, "number": number, "status": status, "document": document,
                 "scope": scope, "published_at": published_at},
            )  # fmt: skip
    engine.dispose()

    migrate.upgrade(url)
    engine = create_engine(url)
    with engine.connect() as c:
        rows = c.execute(
            text("SELECT key, label, kind, owner, source FROM term_catalog ORDER BY key")
        ).all()
        assert [tuple(r) for r in rows] == [
            ("discount_pct", "Discount", "number", "finance", "standard/2"),
            ("eu_only", None, "flag", "security", "emea/1"),
        ]
        (after,) = c.execute(
            text(
                "SELECT after FROM audit_log WHERE action = 'term.added'"
                " AND entity_id = 'discount_pct'"
            )
        ).scalars()
        after = json.loads(after) if isinstance(after, str) else after
        assert after["conflicts"] == [{"source": "emea/1", "owner": "legal", "kind": "number"}]
    engine.dispose()
    migrate.downgrade(url, "0004_outcomes_analytics")
    engine = create_engine(url)
    assert "term_catalog" not in inspect(engine).get_table_names()
    engine.dispose()


def test_hardening_revision_chains_the_existing_audit_log(scratch_url: str) -> None:
    """Entries written before 0005 get their hashes, the chain verifies, and new entries extend it."""
    url = scratch_url
    migrate.upgrade(url, "0004_outcomes_analytics")
    engine = create_engine(url)
    with engine.begin() as c:
        for actor, after, at in (
            ("key:1:ana", '{"ratio": 0.25, "count": 3, "big": 1e20, "name": "Zoë"}',
             "2026-01-02 10:00:00.123456"),
            ("cli", None, "2026-01-02 10:00:00"),
            ("key:2:ben", '[1.0, "x", {"nested": [true, null]}]', "2026-01-03 11:30:00.5"),
        ):  # fmt: skip
            c.execute(
                text(
                    "INSERT INTO audit_log (occurred_at, actor, actor_role, action, entity_type,"
                    " entity_id, after) VALUES (:at, :actor, 'admin', 'x.done', 'x', '1', :after)"
                ),
                {"at": at, "actor": actor, "after": after},
            )
    engine.dispose()

    migrate.upgrade(url)
    db = Database(url)
    with db.unit_of_work() as session:
        assert audit_service.verify(session) == audit_service.ChainReport(3)
        audit_service.record(session, SYSTEM, "x.after", "x", "2", after={"ratio": 0.5})
    with db.unit_of_work() as session:
        assert audit_service.verify(session) == audit_service.ChainReport(4)
        ids = session.execute(text("SELECT id, prev_hash FROM audit_log ORDER BY id")).all()
    db.dispose()
    assert [i for i, _ in ids] == [1, 2, 3, 4]
    assert ids[0][1] == "0" * 64

    migrate.downgrade(url, "0004_outcomes_analytics")
    engine = create_engine(url)
    with engine.begin() as c:  # the previous revision numbers entries again, after the chain's
        c.execute(
            text(
                "INSERT INTO audit_log (occurred_at, actor, actor_role, action, entity_type,"
                " entity_id) VALUES (CURRENT_TIMESTAMP, 'cli', 'admin', 'x.y', 'x', '3')"
            )
        )
        assert c.execute(text("SELECT MAX(id) FROM audit_log")).scalar() == 5
    with pytest.raises(Exception, match="append-only"), engine.begin() as c:
        c.execute(text("DELETE FROM audit_log"))
    engine.dispose()
