"""The sample history: deterministic under a seed, complete, and consistent with what the service
itself records (verdicts from the engine, approvals, outcomes and their scaled figures)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Table, select
from tests.conftest import Keys
from typer.testing import CliRunner

from governance import migrate
from governance.approvals.models import ApprovalRequest
from governance.auth.principal import SYSTEM
from governance.cli import app as cli
from governance.db import Database
from governance.deals.models import Deal, DealCheck, DealTermCheck
from governance.demo import generator
from governance.errors import Conflict
from governance.outcomes.models import AfterActionReview, Outcome, OutcomeTerm
from governance.playbooks import publication
from governance.playbooks.models import PlaybookVersion
from governance.reps.models import RepProfile
from governance.scaled import to_cents, to_micro
from governance.settings import get_settings

AS_OF = date(2026, 11, 1)
AS_OF_TIME = datetime(2026, 11, 1, tzinfo=UTC)
N = 600
GENERATED: tuple[Table, ...] = (
    *generator.TABLES,
    RepProfile.__table__,  # type: ignore[has-type]
)


def _load_demo(db: Database) -> None:
    with db.unit_of_work() as session:
        publication.import_document(session, SYSTEM, generator._demo_document(), publish_now=True)


def _generate(db: Database, seed: int = 11, deals: int = N) -> generator.Report:
    _load_demo(db)
    return generator.generate(db, deals, seed=seed, as_of=AS_OF)


def _dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every generated row, ordered by its key."""
    out = {}
    with db.engine.connect() as connection:
        for table in GENERATED:
            columns = [c for c in table.c if c.name != "id" or table.name != "rep_profiles"]
            order = list(table.primary_key.columns) if table.name != "rep_profiles" else []
            rows = connection.execute(select(*columns).order_by(*(order or [table.c.rep]))).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


@pytest.fixture
def generated(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    _generate(db)
    yield db
    db.dispose()


def _sqlite(tmp_path: Path, name: str) -> Database:
    url = f"sqlite:///{tmp_path / name}"
    migrate.upgrade(url)
    return Database(url)


def test_same_seed_same_rows_other_seed_other_rows(tmp_path: Path) -> None:
    first, second, other = (_sqlite(tmp_path, f"{n}.db") for n in ("a", "b", "c"))
    try:
        _generate(first, seed=5, deals=400)
        _generate(second, seed=5, deals=400)
        _generate(other, seed=6, deals=400)
        a, b, c = _dump(first), _dump(second), _dump(other)
    finally:
        for db in (first, second, other):
            db.dispose()
    assert set(a) == {t.name for t in GENERATED}
    for table in ("deals", "deal_outcomes", "approval_requests"):
        assert a[table], table
    assert a == b
    assert a["deals"] != c["deals"]
    assert a["rep_profiles"] == c["rep_profiles"]  # the organisation does not depend on the seed


def test_chunks_do_not_change_the_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each chunk draws from its own generator; the chunk size only sets the write batches
    and the seed, so the first chunk's deals are the same however many follow."""
    small, large = _sqlite(tmp_path, "small.db"), _sqlite(tmp_path, "large.db")
    monkeypatch.setattr(generator, "CHUNK", 100)
    try:
        _generate(small, seed=3, deals=200)
        _generate(large, seed=3, deals=200)
        assert _dump(small) == _dump(large)
    finally:
        small.dispose()
        large.dispose()


def test_every_style_region_team_and_verdict_is_present(generated: Database) -> None:
    with generated.session() as session:
        styles = Counter(session.scalars(select(RepProfile.style)))
        assert set(styles) == set(generator.STYLES)
        assert sum(styles.values()) == 40
        teams = {t.name for t in generator.TEAMS}
        reps = session.execute(select(RepProfile.rep, RepProfile.team, RepProfile.region)).all()
        assert {team for _, team, _ in reps} == teams
        # Every team has reps of several styles, so style and team effects can be told apart.
        for team in teams:
            assert len({p.style for p in session.scalars(
                select(RepProfile).where(RepProfile.team == team)
            )}) >= 2, team  # fmt: skip
        deals = session.scalars(select(Deal)).all()
        assert len(deals) == N
        assert {d.region for d in deals} == {"EMEA", "NA", "APAC", "LATAM"}
        assert {d.team for d in deals} == teams
        assert {d.segment for d in deals} == {"smb", "mid_market", "enterprise"}
        assert {d.owner_rep for d in deals} <= {r for r, _, _ in reps}
        assert {(d.team, d.region) for d in deals} <= {(t, r) for _, t, r in reps}
        assert {d.last_verdict for d in deals} == {"auto_approved", "needs_approval", "blocked"}
        assert {d.checked_version for d in deals} == {1, 2}
        assert all(d.extra_attributes["country"] for d in deals)
        assert {o.won for o in session.scalars(select(Outcome))} == {True, False}


def test_playbook_versions_follow_the_timeline(generated: Database) -> None:
    with generated.session() as session:
        v1, v2 = session.scalars(select(PlaybookVersion).order_by(PlaybookVersion.number)).all()
        assert (v1.status, v2.status) == ("superseded", "published")
        assert v1.published_at is not None
        assert v2.published_at is not None
        assert v1.published_at < v2.published_at == v1.superseded_at < AS_OF_TIME
        assert Decimal(v1.document["terms"][0]["band"]["high"]) == 15
        assert Decimal(v2.document["terms"][0]["band"]["high"]) == generator.V2_DISCOUNT_HIGH
        for deal in session.scalars(select(Deal)):
            assert deal.last_checked_at is not None
            assert deal.checked_version == (1 if deal.last_checked_at < v2.published_at else 2)
            assert deal.created_at <= deal.last_checked_at < AS_OF_TIME
        checks = session.scalars(select(DealCheck)).all()
        assert {c.playbook_version_id for c in checks} == {v1.id, v2.id}


def test_rows_are_consistent(generated: Database) -> None:
    with generated.session() as session:
        deals = {d.id: d for d in session.scalars(select(Deal))}
        checks = {c.deal_id: c for c in session.scalars(select(DealCheck))}
        term_rows = session.scalars(select(DealTermCheck)).all()
        term_checks = Counter(t.deal_id for t in term_rows)
        requests: dict[int, list[ApprovalRequest]] = {}
        for r in session.scalars(select(ApprovalRequest)):
            requests.setdefault(r.deal_id, []).append(r)
        outcomes = {o.deal_id: o for o in session.scalars(select(Outcome))}
        outcome_terms: dict[int, list[OutcomeTerm]] = {}
        for t in session.scalars(select(OutcomeTerm)):
            outcome_terms.setdefault(t.deal_id, []).append(t)
        reviews = session.scalars(select(AfterActionReview)).all()

    assert set(checks) == set(deals)
    # Analytics facts carry the deal's context, so reports need no join.
    for row in [*term_rows, *(r for rs in requests.values() for r in rs), *outcomes.values()]:
        deal = deals[row.deal_id]
        assert (row.region, row.segment, row.team, row.owner_rep) == (
            deal.region,
            deal.segment,
            deal.team,
            deal.owner_rep,
        )
    for t in term_rows:
        assert t.variance_ratio_micro > 0
        assert (t.playbook_version, t.checked_at) == (
            deals[t.deal_id].checked_version,
            deals[t.deal_id].last_checked_at,
        )
    for deal_id, deal in deals.items():
        check = checks[deal_id]
        assert (check.verdict, check.variance_score) == (
            deal.last_verdict,
            deal.last_variance_score,
        )
        assert deal.variance_micro == to_micro(check.variance_score)
        # Each stated term is a row (outside the band) or a bit of `zero_terms` (ratio 0).
        assert term_checks[deal_id] + bin(deal.zero_terms or 0).count("1") == len(deal.terms)
        # Every needs_approval deal that was submitted has its requests; no other deal has any.
        submitted = deal.last_verdict == "needs_approval" and deal.submitted_at is not None
        assert bool(requests.get(deal_id)) == submitted, deal_id
        assert {r.step for r in requests.get(deal_id, [])} <= {1, 2, 3}
        statuses = {r.status for r in requests.get(deal_id, [])}
        if deal.status == "in_review":
            assert statuses & {"pending", "waiting"}
        else:
            assert not statuses & {"pending", "waiting"}, (deal_id, deal.status, statuses)
        if deal.status == "approved" and submitted:
            assert statuses == {"approved"}
        if deal.status in ("rejected", "countered"):
            assert deal.status in statuses
        # Every deal whose close date has passed has its outcome; no open deal has one.
        closed = deal.close_date is not None and deal.close_date < AS_OF
        assert (deal_id in outcomes) == closed, deal_id
        if closed:
            outcome = outcomes[deal_id]
            assert deal.stage == ("Closed Won" if outcome.won else "Closed Lost")
            assert (outcome.loss_reason is None) == outcome.won
            assert deal.status != "in_review"
            assert deal.last_verdict != "blocked" or not outcome.won
            assert outcome.amount == deal.amount
            assert outcome.amount_cents == to_cents(deal.amount or Decimal(0))
            terms = outcome_terms[deal_id]
            assert {t.term_key for t in terms} == set(outcome.final_terms)
            costs = [t.cost for t in terms if t.cost is not None]
            assert outcome.cost == (sum(costs, Decimal(0)) if costs else None)
            assert outcome.cost_cents == (None if outcome.cost is None else to_cents(outcome.cost))
            assert outcome.variance_micro is not None
            for t in terms:
                assert t.variance_ratio_micro >= 0
                assert (t.close_date, t.won, t.amount_cents, t.deal_variance_micro) == (
                    outcome.close_date,
                    outcome.won,
                    outcome.amount_cents,
                    outcome.variance_micro,
                )
                assert t.traded == bool(t.gets)
                if t.kind == "number":
                    assert t.final_micro == to_micro(Decimal(t.final))
            assert outcome.closed_at.date() == deal.close_date
        for r in requests.get(deal_id, []):
            assert r.playbook_version == deal.checked_version
            assert r.check_id == check.id
            if r.status in ("approved", "rejected", "countered"):
                assert r.decided_at is not None
                assert r.opened_at is not None
                assert r.due_at is not None
                assert r.cycle_seconds == int((r.decided_at - r.first_opened_at).total_seconds())
                assert r.within_sla == (r.escalation_level == 0 and r.decided_at <= r.due_at)
                assert r.decided_at < AS_OF_TIME
                assert r.decided_values == {e["key"]: e["value"] for e in r.terms}
                assert (r.counter_terms is not None) == (r.status == "countered")
                assert r.reason or r.status == "approved"
            elif r.status == "withdrawn":
                assert r.cycle_seconds is None
                assert r.decided_at is not None
            if r.escalation_level:
                assert r.group != r.chain_group
                assert r.escalated_at == r.opened_at
                assert r.first_opened_at is not None
                assert r.first_opened_at < r.opened_at
            if r.status == "waiting":
                assert r.opened_at is None
    for deal_id, outcome in outcomes.items():
        terms = outcome_terms.get(deal_id, [])
        assert outcome.conceded_terms == sum(1 for t in terms if t.conceded_share_micro)
        assert outcome.checked_on == deals[deal_id].last_checked_at.date()
        assert outcome.missed_targets == sum(1 for t in terms if t.held is False)
    for review in reviews:
        assert review.deal_id in outcomes
        assert review.close_date == outcomes[review.deal_id].close_date
        assert review.team == deals[review.deal_id].team
        scores = (review.instrumental, review.process, review.relationship, review.self_score)
        assert all(1 <= s <= 7 for s in scores)
        assert review.created_at < AS_OF_TIME
    # The history has the shapes the analytics look for.
    all_requests = [r for rs in requests.values() for r in rs]
    assert {r.status for r in all_requests} >= {"approved", "rejected", "countered", "withdrawn"}
    assert any(r.escalation_level for r in all_requests)
    assert any(r.within_sla is False for r in all_requests)
    assert reviews


async def test_the_api_reads_the_history(
    generated: Database, client: httpx.AsyncClient, keys: Keys
) -> None:
    """Stored checks are what the engine says today, and read back through the API."""
    headers = keys.headers("admin")
    with generated.session() as session:
        sample = session.scalars(
            select(Deal).where(Deal.checked_version == 2).order_by(Deal.id).limit(25)
        ).all()
    for deal in sample:
        history = await client.get(f"/v1/deals/{deal.external_id}/checks", headers=headers)
        assert history.status_code == 200, history.text
        stored = history.json()["items"][0]["result"]
        read = (await client.get(f"/v1/deals/{deal.external_id}", headers=headers)).json()
        fresh = await client.post(
            "/v1/checks",
            json={"attributes": read["attributes"], "terms": read["terms"]},
            headers=headers,
        )
        assert fresh.status_code == 200, fresh.text
        body = fresh.json()
        assert (body["verdict"], body["variance_score"]) == (
            stored["verdict"],
            stored["variance_score"],
        )
        for term in stored["terms"]:  # the read model spells out absent band and tier parts
            term["band"] = {k: v for k, v in term["band"].items() if v is not None}
            term["tiers"] = [
                {k: v for k, v in tier.items() if v is not None} for tier in term["tiers"]
            ]
        assert [t for t in body["terms"] if t["status"] != "missing"] == stored["terms"]
    # Ids continue after the generated ones (PostgreSQL's sequences were moved on).
    created = await client.put(
        "/v1/deals/0065g00000ZzZzZAAA",
        json={"attributes": {"region": "EMEA"}, "terms": {"discount_pct": 5}},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    checked = await client.post("/v1/deals/0065g00000ZzZzZAAA/checks", headers=headers)
    assert checked.status_code in (200, 201), checked.text
    reps = await client.get("/v1/reps", params={"style": "closer"}, headers=headers)
    assert reps.status_code == 200
    assert {r["style"] for r in reps.json()["items"]} == {"closer"}


def test_refuses_a_database_with_deals(generated: Database) -> None:
    with pytest.raises(Conflict):
        generator.generate(generated, 10, seed=1, as_of=AS_OF)


def test_cli_generates_after_loading_the_playbook(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVERNANCE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(
            cli, ["demo", "--deals", "150", "--seed", "4", "--as-of", "2026-11-01"]
        )
        assert result.exit_code == 0, result.output
        assert "standard version 1: published" in result.output
        assert "generated 150 deals" in result.output
        again = runner.invoke(cli, ["demo", "--deals", "10"])
        assert again.exit_code != 0
        assert "already has deals" in again.output
        plain = runner.invoke(cli, ["demo", "--if-empty"])
        assert "already present" in plain.output
    finally:
        get_settings.cache_clear()
