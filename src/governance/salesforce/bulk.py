"""Big loads by Bulk API 2.0: when the pull uses a query job instead of REST query pages, and
reading the job's results, a set at a time, as the records the REST API would give.

The pull (`inbound`) applies each set in its own transaction with the locator of the next, so
a killed load resumes at the set it was applying.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from governance.db import Database
from governance.salesforce.client import SalesforceClient, SalesforceError
from governance.salesforce.mapping import SyncMapping
from governance.salesforce.repository import SalesforceRepository
from governance.settings import SalesforceSettings

BACKFILL = timedelta(days=1)  # a watermark this old makes a run a backfill

NUMBER_TYPES = frozenset({"double", "currency", "percent", "int", "long"})
# Checkboxes every Opportunity has, which the pull reads whatever the describe said: the CSV's
# text "false" would otherwise be a truthy string (and delete or close the deal).
STANDARD_BOOLEANS = frozenset({"IsDeleted", "IsClosed", "IsWon"})


class BulkJobFailed(SalesforceError):
    """The Bulk API 2.0 query job ended Failed or Aborted (its errorMessage says why)."""


@dataclass
class ResultSet:
    """One set of a job's results: its records (typed as REST gives them), the locator of the
    next set (None: this is the last), the job's record count, and the API calls made to get
    here since the previous set (polls, the describe, this read)."""

    records: list[dict[str, Any]]
    following: str | None
    total: int
    api_calls: int


def wanted(
    sf: SalesforceSettings,
    total: int,
    next_url: str | None,
    full_load_done: bool,
    since: datetime | None,
    started: datetime,
) -> bool:
    """A first load, or a backfill, of more records than the Bulk threshold (the first query
    page's totalSize is the query's COUNT(): no extra call to know it)."""
    if not sf.bulk_threshold or next_url is None or total <= sf.bulk_threshold:
        return False
    return not full_load_done or since is None or started - since > BACKFILL


def result_sets(
    db: Database,
    client: SalesforceClient,
    sf: SalesforceSettings,
    mapping: SyncMapping,
    job_id: str,
    locator: str | None,
) -> Iterator[ResultSet]:
    """Wait until the job is complete, then read its results from `locator` on, a set at a
    time. A job Salesforce no longer serves (expired, failed, made in another API version) is
    forgotten, so the next run starts a new one, and the error raised."""
    calls = 0
    while True:
        try:
            job = client.bulk_job(job_id)
        except SalesforceError as exc:
            if exc.status == 404:  # expired: the next run starts a new job
                forget_job(db, mapping)
            raise
        calls += 1
        if job.state == "JobComplete":
            break
        if job.state in ("Failed", "Aborted"):
            forget_job(db, mapping)
            raise BulkJobFailed(
                "BULK_JOB_FAILED", f"Bulk query job {job_id} {job.state}: {job.error or ''}"
            )
        time.sleep(sf.bulk_poll_seconds)
    types = _field_types(client, mapping)
    calls += 1
    while True:
        try:
            results = client.bulk_results(job_id, locator, sf.bulk_page_records)
        except SalesforceError as exc:
            # 404: the job expired; 409: it was made in another API version than the client
            # calls now (Salesforce serves results only in the job's own). The next run starts
            # a new one (the records already applied are skipped as re-reads).
            if exc.status in (404, 409):
                forget_job(db, mapping)
            raise
        calls += 1
        records = [typed(r, types) for r in results.records]
        yield ResultSet(records, results.locator, job.records, calls)
        calls = 0
        if results.locator is None:
            return
        locator = results.locator


def typed(record: dict[str, Any], types: Mapping[str, str]) -> dict[str, Any]:
    """A Bulk CSV record with the values the REST API would give: numbers, booleans."""
    for name, value in record.items():
        if value is None or isinstance(value, dict):
            continue
        kind = types.get(name) or ("boolean" if name in STANDARD_BOOLEANS else None)
        if kind == "boolean":
            record[name] = value.strip().lower() == "true"
        elif kind in NUMBER_TYPES:
            record[name] = Decimal(value)
    return record


def forget_job(db: Database, mapping: SyncMapping) -> None:
    with db.unit_of_work() as session:
        state = SalesforceRepository(session).state(mapping.sobject, for_update=True)
        state.bulk_job_id = state.bulk_locator = None
        state.bulk_ceiling = None


def _field_types(client: SalesforceClient, mapping: SyncMapping) -> dict[str, str]:
    described = client.describe(mapping.sobject)
    return {str(f["name"]): str(f.get("type", "")) for f in described.get("fields", ())}
