# ruff: noqa: C408  (keyword dicts read as tables here)
"""A small hand-computed history, stored as the producers store it, for the analytics tests.

Five live deals and one deleted; four closed (three won); four decided approval requests, one
pending, one withdrawn; three after-action reviews; two published versions of the standard
playbook. The expected figures in the tests were worked out by hand from these rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from governance.approvals.models import ApprovalRequest
from governance.db import Database
from governance.deals.models import AnalyticsTermBit, Deal, DealCheck, DealTermCheck
from governance.outcomes.models import AfterActionReview, Outcome, OutcomeTerm
from governance.playbooks.models import Playbook, PlaybookVersion
from governance.reps.models import RepProfile


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


DEALS: list[dict[str, Any]] = [
    # external id suffix, region, segment, rep, verdict, score, version, checked, {term: (status, ratio)}
    dict(n=1, region="EMEA", segment="enterprise", rep="ana", verdict="auto_approved", score=0,
         version=1, checked="2026-01-10", terms={"discount_pct": ("within", 0), "payment_terms_days": ("within", 0)}),
    dict(n=2, region="EMEA", segment="enterprise", rep="ben", verdict="needs_approval", score=250_000,
         version=1, checked="2026-01-15", terms={"discount_pct": ("exception", 500_000), "payment_terms_days": ("within", 0)}),
    dict(n=3, region="EMEA", segment="smb", rep="ben", verdict="blocked", score=600_000,
         version=1, checked="2026-02-01", terms={"discount_pct": ("blocked", 1_200_000)}),
    dict(n=4, region="NA", segment="enterprise", rep="cy", verdict="needs_approval", score=100_000,
         version=2, checked="2026-02-10", terms={"discount_pct": ("exception", 200_000), "payment_terms_days": ("exception", 100_000)}),
    dict(n=5, region="NA", segment="smb", rep="cy", verdict="auto_approved", score=0,
         version=2, checked="2026-03-01", terms={"discount_pct": ("better", 0)}),
    dict(n=6, region="NA", segment="smb", rep="cy", verdict="blocked", score=900_000,
         version=2, checked="2026-03-02", terms={"discount_pct": ("blocked", 1_500_000)}, deleted=True),
]  # fmt: skip

OUTCOMES: list[dict[str, Any]] = [
    # deal n, won, close, amount, variance, verdict, version, terms: (final, share, held, cost, traded)
    dict(n=1, won=True, close="2026-01-20", amount=100_000, score=0, verdict="auto_approved",
         version=1, terms={"discount_pct": (10, 285_714, False, 10_000, False),
                           "payment_terms_days": (30, 0, True, 0, False)}),
    dict(n=2, won=True, close="2026-02-01", amount=200_000, score=250_000, verdict="needs_approval",
         version=1, terms={"discount_pct": (20, 571_429, False, 40_000, True),
                           "payment_terms_days": (30, 0, True, 0, False)}),
    dict(n=4, won=False, close="2026-02-20", amount=50_000, score=100_000, verdict="needs_approval",
         version=2, terms={"discount_pct": (25, 714_286, False, 12_500, False)}),
    dict(n=5, won=True, close="2026-03-10", amount=10_000, score=0, verdict="auto_approved",
         version=2, terms={"discount_pct": (5, 142_857, True, 500, False)}),
]  # fmt: skip

REQUESTS: list[dict[str, Any]] = [
    # deal n, holder, step, status, cycle seconds, within SLA, escalation level, decided
    dict(n=2, group="sales_director", step=1, status="approved", cycle=7_200, sla=True, level=0, decided="2026-01-16"),
    dict(n=2, group="finance", step=2, status="approved", cycle=36_000, sla=False, level=1, decided="2026-01-17"),
    dict(n=4, group="finance", step=1, status="rejected", cycle=1_800, sla=True, level=0, decided="2026-02-11"),
    dict(n=4, group="legal", step=1, status="countered", cycle=90_000, sla=False, level=0, decided="2026-02-12"),
    dict(n=4, group="cfo", step=2, status="pending", cycle=None, sla=None, level=0, decided=None),
    dict(n=4, group="product", step=1, status="withdrawn", cycle=None, sla=None, level=0, decided="2026-02-12"),
]  # fmt: skip

REVIEWS = {1: (5, 6, 7, 4), 2: (3, 4, 5, 6), 4: (2, 2, 2, 2)}

PROFILES = [
    ("ana", "France", "EMEA", "closer"),
    ("ben", "DACH", "EMEA", "diplomat"),
    ("cy", "US East", "NA", "strategist"),
]


@pytest.fixture
def history(db: Database, demo_yaml: str) -> None:
    """Store the hand-computed history."""
    import yaml

    document = yaml.safe_load(demo_yaml)
    with db.unit_of_work() as session:
        playbook = Playbook(key="standard", name="Standard")
        session.add(playbook)
        session.flush()
        versions = {}
        for number, published, superseded in (
            (1, "2026-01-01", "2026-02-10"),
            (2, "2026-02-10", None),
        ):
            version = PlaybookVersion(
                playbook_id=playbook.id,
                number=number,
                status="superseded" if superseded else "published",
                document=document,
                document_hash=f"hash{number}",
                scope={},
                created_by="test",
                published_at=_at(published),
                published_by="test",
                superseded_at=_at(superseded) if superseded else None,
            )
            session.add(version)
            session.flush()
            versions[number] = version.id
        for rep, team, region, style in PROFILES:
            session.add(RepProfile(rep=rep, team=team, region=region, style=style))
        # Within-band discounts are counted from bits of `deals.zero_terms`; payment terms have
        # no bit, so their zeros are rows: the reports must add both up.
        session.add(AnalyticsTermBit(term_key="discount_pct", bit=0))
        deals = {}
        context: dict[int, dict[str, Any]] = {}
        for spec in DEALS:
            deal = Deal(
                external_id=f"006{spec['n']:015d}",
                region=spec["region"],
                segment=spec["segment"],
                owner_rep=spec["rep"],
                currency="EUR" if spec["n"] == 5 else "USD",
                terms={},
                status="draft",
                last_verdict=spec["verdict"],
                last_variance_score=Decimal(spec["score"]) / 1_000_000,
                last_checked_at=_at(spec["checked"]),
                checked_playbook="standard",
                checked_version=spec["version"],
                variance_micro=spec["score"],
                deleted_at=_at("2026-03-03") if spec.get("deleted") else None,
            )
            deal.zero_terms = 1 if spec["terms"]["discount_pct"][1] == 0 else 0
            session.add(deal)
            session.flush()
            deals[spec["n"]] = deal.id
            context[spec["n"]] = {
                "region": spec["region"], "segment": spec["segment"], "team": None,
                "owner_rep": spec["rep"],
            }  # fmt: skip
            for key, (status, ratio) in spec["terms"].items():
                if spec.get("deleted") or (key == "discount_pct" and ratio == 0):
                    continue  # a deletion clears a deal's term rows; a zero discount is a bit
                session.add(
                    DealTermCheck(
                        deal_id=deal.id,
                        term_key=key,
                        status=status,
                        variance_ratio_micro=ratio,
                        checked_at=_at(spec["checked"]),
                        playbook_key="standard",
                        playbook_version=spec["version"],
                        **context[spec["n"]],
                    )
                )
        check_ids = {}
        for n, deal_id in deals.items():
            check = DealCheck(
                deal_id=deal_id,
                playbook_version_id=versions[1],
                playbook_key="standard",
                playbook_version=1,
                verdict="needs_approval",
                variance_score=Decimal(0),
                terms={},
                attributes={},
                result={},
                checked_by="test",
            )
            session.add(check)
            session.flush()
            check_ids[n] = check.id
        checked = {spec["n"]: spec["checked"] for spec in DEALS}
        for spec in OUTCOMES:
            outcome = Outcome(
                deal_id=deals[spec["n"]],
                won=spec["won"],
                closed_at=_at(spec["close"]),
                close_date=date.fromisoformat(spec["close"]),
                final_terms={},
                source="api",
                recorded_by="test",
                loss_reason=None if spec["won"] else "price",
                trades=[],
                playbook_key="standard",
                playbook_version=spec["version"],
                amount=Decimal(spec["amount"]),
                currency="EUR" if spec["n"] == 5 else "USD",
                checked_on=date.fromisoformat(checked[spec["n"]]),
                amount_cents=spec["amount"] * 100,
                verdict=spec["verdict"],
                variance_micro=spec["score"],
                cost=Decimal(sum(t[3] for t in spec["terms"].values())),
                cost_cents=sum(t[3] for t in spec["terms"].values()) * 100,
                conceded_terms=sum(1 for t in spec["terms"].values() if t[1] > 0),
                missed_targets=sum(1 for t in spec["terms"].values() if t[2] is False),
                **context[spec["n"]],
            )
            session.add(outcome)
            session.flush()
            for key, (final, share, held, cost, traded) in spec["terms"].items():
                session.add(
                    OutcomeTerm(
                        outcome_id=outcome.id,
                        deal_id=outcome.deal_id,
                        term_key=key,
                        kind="number",
                        unit="%",
                        final=str(final),
                        final_micro=final * 1_000_000,
                        status="within",
                        variance_ratio_micro=0,
                        conceded_share_micro=share,
                        held=held,
                        traded=traded,
                        gets=["contract_months"] if traded else [],
                        cost=Decimal(cost),
                        cost_cents=cost * 100,
                        close_date=outcome.close_date,
                        won=outcome.won,
                        currency=outcome.currency,
                        amount_cents=outcome.amount_cents,
                        deal_variance_micro=outcome.variance_micro,
                        playbook_key="standard",
                        playbook_version=spec["version"],
                        **context[spec["n"]],
                    )
                )
        for spec in REQUESTS:
            session.add(
                ApprovalRequest(
                    deal_id=deals[spec["n"]],
                    round=1,
                    check_id=check_ids[spec["n"]],
                    playbook_version_id=versions[1],
                    playbook_key="standard",
                    playbook_version=1,
                    group=spec["group"],
                    chain_group=spec["group"],
                    step=spec["step"],
                    terms=[],
                    status=spec["status"],
                    submitted_by="test",
                    opened_at=_at("2026-01-15"),
                    escalation_level=spec["level"],
                    decided_at=_at(spec["decided"]) if spec["decided"] else None,
                    cycle_seconds=spec["cycle"],
                    within_sla=spec["sla"],
                    **context[spec["n"]],
                )
            )
        closes = {spec["n"]: spec for spec in OUTCOMES}
        for n, (instrumental, process, relationship, self_score) in REVIEWS.items():
            session.add(
                AfterActionReview(
                    deal_id=deals[n],
                    instrumental=instrumental,
                    process=process,
                    relationship=relationship,
                    self_score=self_score,
                    filed_by="test",
                    close_date=date.fromisoformat(closes[n]["close"]),
                    playbook_key="standard",
                    playbook_version=closes[n]["version"],
                    **context[n],
                )
            )
