"""The pull applies a page at a time, each record in its own savepoint; the push runs several
Collections calls at once when asked to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from tests.salesforce.conftest import MAPPING

from fake_salesforce import FakeSalesforce, sample_opportunities
from governance.audit import service as audit
from governance.audit.models import AuditEntry
from governance.db import Database
from governance.deals.models import Deal
from governance.playbooks.registry import PlaybookRegistry
from governance.salesforce import inbound, outbound
from governance.salesforce.client import SimpleSalesforceClient
from governance.salesforce.mapping import SyncMapping, parse
from governance.salesforce.models import OutboxItem
from governance.settings import Settings

pytestmark = pytest.mark.usefixtures("demo_published")


def load_org(fake: FakeSalesforce, count: int) -> list[str]:
    fake.clock.set(datetime.now(UTC) - timedelta(hours=6))
    ids = []
    for record in sample_opportunities(count, seed=11):
        ids.append(fake.add_opportunity(record))
        fake.clock.advance(30)
    fake.clock.set(datetime.now(UTC))  # later edits are stamped now, after the load
    fake.clock.unfreeze()
    return ids


def test_a_bad_record_is_parked_and_the_rest_of_its_page_lands(
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    sf_client: SimpleSalesforceClient,
) -> None:
    # A mapping that reads a support level no playbook offers: such a deal cannot be checked.
    support = {**MAPPING["terms"]["support_level"]}
    support["values"] = {**support["values"], "Bronze": "bronze"}
    mapping = parse({**MAPPING, "terms": {**MAPPING["terms"], "support_level": support}})
    ids = load_org(fake, 250)
    fake.batch_size = 100
    # One in the page-level path: refused before any write. One to be submitted (so applied on
    # its own): written, then refused by the submission's check, so its savepoint must take the
    # write back (and its audit entry). Both land on the last page, edited last.
    fake.update_opportunity(ids[5], {"Support_Level__c": "Bronze"})
    fake.update_opportunity(
        ids[150], {"Support_Level__c": "Bronze", "Submit_For_Approval__c": True}
    )
    bad = {ids[5], ids[150]}

    report, run = inbound.pull(db, sf_client, registry, settings, mapping)

    assert run.status == "done"
    assert (report.read, report.created, report.failed) == (250, 248, 2)
    assert {p["id"] for p in run.problems} == bad
    assert all("support_level" in p["reason"] for p in run.problems)
    with db.unit_of_work() as session:
        stored = set(session.scalars(select(Deal.external_id)))
        audited = set(
            session.scalars(select(AuditEntry.entity_id).where(AuditEntry.entity_type == "deal"))
        )
        assert stored == set(ids) - bad
        assert audited == set(ids) - bad
        assert audit.verify(session).ok
        outboxed = session.scalar(select(OutboxItem.id).limit(1))
        assert outboxed is not None  # every new deal is queued for the push
    # The parked records are read again once fixed (their stamp moves on).
    for opportunity_id in bad:
        fake.update_opportunity(opportunity_id, {"Support_Level__c": "Premium"})
    again, _ = inbound.pull(db, sf_client, registry, settings, mapping)
    assert (again.created, again.failed) == (2, 0)


def test_the_push_runs_several_collections_calls_at_once(
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
) -> None:
    ids = load_org(fake, 450)
    inbound.pull(db, sf_client, registry, settings, mapping)
    concurrent = settings.salesforce.model_copy(update={"push_concurrency": 3})

    report = outbound.push(db, sf_client, mapping, concurrent, settings.public_url)

    # 450 records: three calls (200, 200, 50) in one round, every row acknowledged and gone.
    assert (report.pushed, report.failed, report.api_calls) == (450, 0, 3)
    with db.unit_of_work() as session:
        assert session.scalar(select(OutboxItem.id).limit(1)) is None
        rows = session.execute(select(Deal.external_id, Deal.last_verdict)).tuples().all()
    verdicts = dict(rows)
    for opportunity_id in ids:
        assert fake.get(opportunity_id)["Governance_Status__c"] == verdicts[opportunity_id]


def test_a_page_stores_each_deal_exactly_as_pulled_and_a_re_pull_replaces_it(
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
) -> None:
    # Text that needs quoting in every form a page travels in (SQL arrays, COPY's text, JSON),
    # on enough deals that their checks and audit entries go in bulk.
    awkward = 'Acme "Q4", {EMEA} \\ Zürich — 株式会社\tline\nnext \\N'
    first = fake.add_opportunity(
        {**sample_opportunities(1, seed=3)[0], "Name": awkward, "Amount": 123456.78}
    )
    second = fake.add_opportunity({**sample_opportunities(1, seed=4)[0], "Name": "NULL"})
    others = [
        fake.add_opportunity({**record, "Name": f"{awkward} #{i}"})
        for i, record in enumerate(sample_opportunities(60, seed=5))
    ]

    report, _ = inbound.pull(db, sf_client, registry, settings, mapping)
    assert (report.created, report.failed) == (62, 0)
    with db.unit_of_work() as session:
        deals = {d.external_id: d for d in session.scalars(select(Deal))}
        assert deals[first].name == awkward
        assert deals[first].amount == Decimal("123456.78")
        assert deals[second].name == "NULL"  # a string, not SQL's NULL
        assert [deals[o].name for o in others] == [f"{awkward} #{i}" for i in range(60)]
        assert deals[first].lock_version == 1
        assert Decimal(deals[first].terms["discount_pct"]) == Decimal(
            str(fake.get(first)["Discount__c"])
        )
        snapshots = session.scalars(
            select(AuditEntry.after).where(AuditEntry.action == "deal.created")
        ).all()
        assert sorted(a["name"] for a in snapshots) == sorted(d.name for d in deals.values())
        assert audit.verify(session).ok

    fake.update_opportunity(first, {"Name": awkward + " (renewal)", "Discount__c": 12.5})
    again, _ = inbound.pull(db, sf_client, registry, settings, mapping)
    assert (again.updated, again.created) == (1, 0)
    with db.unit_of_work() as session:
        deal = session.scalar(select(Deal).where(Deal.external_id == first))
        assert deal is not None
        assert deal.name == awkward + " (renewal)"
        assert deal.terms["discount_pct"] == "12.5"
        assert deal.lock_version == 2
