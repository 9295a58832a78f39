"""Big loads through a Bulk API 2.0 query job: the first load, a resume after a kill in the
middle of the results, and a job that fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from tests.driver import killed_at_deal

from fake_salesforce import FakeSalesforce, sample_opportunities
from governance.db import Database
from governance.deals.models import Deal
from governance.playbooks.registry import PlaybookRegistry
from governance.salesforce import bulk, inbound
from governance.salesforce.client import SalesforceError, SimpleSalesforceClient
from governance.salesforce.mapping import SyncMapping
from governance.salesforce.models import SyncRun, SyncState
from governance.settings import Settings

pytestmark = pytest.mark.usefixtures("demo_published")


@pytest.fixture
def bulk_settings(settings: Settings) -> Settings:
    """Bulk above 100 records, results in sets of 120, a fast poll."""
    sf = settings.salesforce.model_copy(
        update={"bulk_threshold": 100, "bulk_page_records": 120, "bulk_poll_seconds": 0.01}
    )
    return settings.model_copy(update={"salesforce": sf})


def load_org(fake: FakeSalesforce, count: int) -> list[str]:
    fake.clock.set(datetime.now(UTC) - timedelta(hours=6))
    ids = []
    for record in sample_opportunities(count, seed=5):
        ids.append(fake.add_opportunity(record))
        fake.clock.advance(30)
    fake.clock.set(datetime.now(UTC))
    fake.clock.unfreeze()
    fake.batch_size = 100
    return ids


def state(db: Database) -> SyncState:
    with db.unit_of_work() as session:
        found = session.scalar(select(SyncState).where(SyncState.sobject == "Opportunity"))
        assert found is not None
        return found


def deal_count(db: Database) -> int:
    with db.unit_of_work() as session:
        return int(session.scalar(select(func.count()).select_from(Deal)) or 0)


def test_a_first_load_runs_as_a_bulk_job_then_the_pull_goes_on_by_rest(
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    bulk_settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
) -> None:
    ids = load_org(fake, 300)

    report, run = inbound.pull(db, sf_client, registry, bulk_settings, mapping)

    assert run.status == "done"
    assert (report.read, report.created, report.failed) == (300, 300, 0)
    assert fake.calls["bulk_results"] == 3  # 120 + 120 + 60
    assert fake.calls["query_more"] == 0  # no REST pages past the first (its totalSize counts)
    loaded = state(db)
    assert loaded.full_load_done
    assert loaded.bulk_job_id is None
    assert loaded.watermark is not None
    assert loaded.watermark <= run.started_at - timedelta(seconds=60)

    # From now on, changes come by REST query pages from the watermark.
    fake.update_opportunity(ids[7], {"Discount__c": 31.5})
    again, _ = inbound.pull(db, sf_client, registry, bulk_settings, mapping)
    assert (again.updated, again.created) == (1, 0)
    assert fake.calls["bulk_results"] == 3
    with db.unit_of_work() as session:
        deal = session.scalar(select(Deal).where(Deal.external_id == ids[7]))
        assert deal is not None
        assert deal.terms["discount_pct"] == "31.5"


def test_a_bulk_load_killed_in_the_middle_resumes_at_its_set(
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    bulk_settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
) -> None:
    load_org(fake, 300)
    with killed_at_deal(db, 150), pytest.raises(KeyboardInterrupt):
        inbound.pull(db, sf_client, registry, bulk_settings, mapping)
    assert deal_count(db) == 120  # the first set; the second never committed
    killed = state(db)
    assert killed.bulk_job_id is not None
    assert killed.bulk_locator is not None
    assert not killed.full_load_done
    jobs_created = fake.calls["bulk"]

    report, run = inbound.pull(db, sf_client, registry, bulk_settings, mapping)

    assert run.status == "done"
    assert (report.created, report.failed) == (180, 0)  # the second and third sets
    assert deal_count(db) == 300
    assert fake.calls["bulk_results"] == 2 + 2  # sets 1 and 2 (killed), then 2 again and 3
    assert fake.calls["bulk"] == jobs_created + 1  # one poll of the same job, no new job
    assert state(db).full_load_done


def test_a_failed_bulk_job_fails_the_run_visibly(
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    bulk_settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
) -> None:
    load_org(fake, 150)
    fake.fail_bulk_jobs = "Query timed out after 120 s"

    with pytest.raises(bulk.BulkJobFailed):
        inbound.pull(db, sf_client, registry, bulk_settings, mapping)

    with db.unit_of_work() as session:
        run = session.scalar(select(SyncRun).order_by(SyncRun.id.desc()).limit(1))
        assert run is not None
        assert run.status == "failed"
        assert run.error is not None
        assert "Failed: Query timed out after 120 s" in run.error
    assert state(db).bulk_job_id is None  # the next run starts a new job
    assert deal_count(db) == 0
    fake.fail_bulk_jobs = None
    report, _ = inbound.pull(db, sf_client, registry, bulk_settings, mapping)
    assert report.created == 150


def test_a_bulk_load_left_by_a_client_of_another_api_version_starts_over(
    fake: FakeSalesforce,
    db: Database,
    registry: PlaybookRegistry,
    bulk_settings: Settings,
    mapping: SyncMapping,
    sf_client: SimpleSalesforceClient,
) -> None:
    load_org(fake, 300)
    with killed_at_deal(db, 150), pytest.raises(KeyboardInterrupt):
        inbound.pull(db, sf_client, registry, bulk_settings, mapping)
    assert state(db).bulk_job_id is not None
    # The worker comes back calling another version (the org was upgraded meanwhile):
    # Salesforce answers 409 for the job's results, which it serves only in the job's own.
    older = SimpleSalesforceClient(
        bulk_settings.salesforce.model_copy(update={"api_version": "58.0"})
    )

    with pytest.raises(SalesforceError) as refused:
        inbound.pull(db, older, registry, bulk_settings, mapping)
    assert refused.value.status == 409
    assert state(db).bulk_job_id is None  # forgotten: the next run makes a new job

    report, run = inbound.pull(db, older, registry, bulk_settings, mapping)
    assert run.status == "done"
    assert (report.created, report.failed) == (180, 0)  # the first set's 120 are re-reads
    assert deal_count(db) == 300
    assert state(db).full_load_done
