"""Opportunities in: an incremental, resumable pull by SystemModstamp, and fetches on demand.

The pull reads `queryAll` (so deletions show) ordered by `SystemModstamp, Id`, from the
watermark minus an overlap window. Each page is applied and checkpointed in its own
transaction. A record older than the version the deal last took (`Deal.sf_modstamp`) is skipped; one with
the same stamp is compared (Salesforce stamps to the second, so two saves within a second share
one), so a re-read (the overlap, or a resume after a crash) applies nothing twice. The watermark never passes the run's start minus the overlap, so records that
commit late in Salesforce are still read next time.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from governance.approvals.service import review
from governance.auth.principal import Principal
from governance.auth.schemas import Role
from governance.db import Clock, Database, savepoint, utcnow
from governance.deals import service as deal_service
from governance.deals.models import REVIEWING, Deal
from governance.deals.repository import DealRepository
from governance.deals.schemas import DealUpsert, salesforce_id_18
from governance.errors import GovernanceError
from governance.outcomes import service as outcome_service
from governance.outcomes.models import Outcome
from governance.outcomes.repository import OutcomeRepository
from governance.outcomes.schemas import OutcomeTradeInput
from governance.playbooks.registry import PlaybookRegistry
from governance.salesforce import bulk, outbound
from governance.salesforce.client import SalesforceClient
from governance.salesforce.mapping import SyncMapping, field_value
from governance.salesforce.models import RunStatus, SyncRun
from governance.salesforce.repository import SalesforceRepository
from governance.settings import Settings

SYNC = Principal(key_id=None, name="salesforce-sync", role=Role.integration, groups=frozenset())
MAX_PROBLEMS = 100


def parse_datetime(value: str) -> datetime:
    """Salesforce's `2024-05-01T12:34:56.000+0000` (REST), `…Z` (Bulk CSV) or `…+00:00` as an
    aware datetime (one without an offset is UTC)."""
    text = value.strip().replace("Z", "+0000")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def soql_datetime(value: datetime) -> str:
    """A SOQL datetime literal in UTC, `2026-12-06T10:00:00Z`: the documented form has no
    fraction of a second, so the moment is rounded down to the second (for a `>=` bound, that
    only reads a little more, which the pull applies idempotently)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _soql_text(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class PullReport:
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    deleted: int = 0
    checked: int = 0
    submitted: int = 0
    closed: int = 0
    failed: int = 0
    pages: int = 0
    api_calls: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if isinstance(v, int)}


def _json_term(value: Any) -> Any:
    """Numbers as plain decimal text without trailing zeros (Salesforce sends 10.0 for 10)."""
    if isinstance(value, float):
        value = Decimal(str(value))
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return value


def deal_payload(mapping: SyncMapping, record: Mapping[str, Any]) -> DealUpsert:
    """The deal an opportunity describes, validated like any API payload."""
    terms = {key: _json_term(source.read(record)) for key, source in mapping.terms.items()}
    attributes: dict[str, Any] = {}
    name = None
    for attribute, source in mapping.attributes.items():
        value = source.read(record)
        if value is None:
            continue
        if attribute == "name":
            name = str(value)[:255]
        else:
            attributes[attribute] = _json_term(value)
    return DealUpsert.model_validate(
        {
            "name": name,
            "attributes": attributes,
            "terms": {k: v for k, v in terms.items() if v is not None},
            "playbook": mapping.playbook,
        }
    )


def apply_record(
    session: Any,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    record: Mapping[str, Any],
    report: PullReport,
) -> None:
    """Apply one opportunity version to its deal (idempotent)."""
    external_id = salesforce_id_18(str(record["Id"]))
    modstamp = parse_datetime(str(record["SystemModstamp"]))
    repo = SalesforceRepository(session)
    deal = repo.deals_by_external_id([external_id]).get(external_id)
    if deal is not None and deal.sf_modstamp is not None and modstamp < deal.sf_modstamp:
        # Only strictly older: Salesforce stamps to the second, so two saves within one second
        # share a stamp; the second must still apply (the same content again is a no-op below).
        report.skipped += 1
        return
    if record.get("IsDeleted"):
        if deal is not None and deal.deleted_at is None:
            review.delete_deal(session, settings, SYNC, deal)
            deal.sf_modstamp = modstamp
            report.deleted += 1
        else:
            report.skipped += 1
        return
    payload = _payload(mapping, record)
    if deal is not None and deal.deleted_at is None and not deal_service.differs(deal, payload):
        # Nothing the service reads changed (say, our own write-back came round): no echo. The
        # same stamp again is a re-read of a version already applied (the overlap, a resume).
        if deal.sf_modstamp == modstamp:
            report.skipped += 1
        else:
            deal.sf_modstamp = modstamp
            report.unchanged += 1
    else:
        # The same workflow as `PUT /v1/deals/{id}`, checking every change (every opportunity
        # shows a current verdict) and submitting when the mapping's checkbox says so.
        submit = bool(mapping.submit_field and field_value(record, mapping.submit_field))
        reviewed = review.save_deal(
            session, registry, settings, SYNC, external_id, payload, check=True, submit=submit
        )
        deal = reviewed.deal
        deal.sf_modstamp = modstamp
        report.created += reviewed.created
        report.updated += not reviewed.created
        report.submitted += reviewed.submitted
        report.checked += 1
    if record.get("IsClosed"):
        _record_outcome(session, registry, deal, bool(record.get("IsWon")), report)


def _payload(mapping: SyncMapping, record: Mapping[str, Any]) -> DealUpsert:
    try:
        return deal_payload(mapping, record)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise _Rejected(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def _record_outcome(
    session: Any, registry: PlaybookRegistry, deal: Deal, won: bool, report: PullReport
) -> None:
    """A closed opportunity: its outcome, with the same figures as one recorded through the API.

    An outcome a person recorded through the API holds what Salesforce does not know (final
    terms that differ from the opportunity's, trades, the loss reason): the sync keeps those and
    only follows Salesforce on whether the deal was won.
    """
    DealRepository(session).lock(deal.id)  # one writer of a deal's outcome at a time
    existing = OutcomeRepository(session).outcome(deal.id)
    if _outcome_current(existing, deal, won):
        return
    keep_details = existing is not None and existing.source == "api"
    trades: list[OutcomeTradeInput] = []
    final_terms = None
    loss_reason = None
    if existing is not None and keep_details:
        final_terms = existing.final_terms
        trades = [
            OutcomeTradeInput(gave=t["gave"], got=t["got"], note=t.get("note"))
            for t in existing.trades or []
            if not t.get("inferred")
        ]
        loss_reason = None if won else existing.loss_reason
    # Salesforce says won or lost, not why: a synced loss has no reason of its own.
    outcome_service.record_outcome(
        session,
        registry,
        SYNC,
        deal,
        won=won,
        close_date=existing.close_date if keep_details and existing else deal.close_date,
        final_terms=final_terms,
        loss_reason=loss_reason,
        trades=trades,
        source="salesforce",
    )
    report.closed += 1


def _outcome_current(existing: Outcome | None, deal: Deal, won: bool) -> bool:
    """Whether the deal's outcome already says what Salesforce says (nothing to record)."""
    return (
        existing is not None
        and existing.won == won
        and (existing.source == "api" or existing.final_terms == deal.terms)
    )


def _record_outcomes(
    session: Any,
    registry: PlaybookRegistry,
    closed: Mapping[str, bool],
    records: Mapping[str, Mapping[str, Any]],
    report: PullReport,
) -> None:
    """The page's closed opportunities (`closed`: won, by Id): a deal without an outcome gets
    one in a few statements for the page (`record_synced_outcomes`); one that has an outcome
    Salesforce no longer agrees with is re-recorded one by one (`_record_outcome`)."""
    deals = SalesforceRepository(session).deals_by_external_id(closed, reread=True)
    locked = DealRepository(session).lock_many([d.id for d in deals.values()])
    existing = OutcomeRepository(session).outcomes_of(locked)
    new: dict[str, Deal] = {}
    one_by_one: list[str] = []
    for external_id, won in closed.items():
        deal = deals[external_id]
        outcome = existing.get(deal.id)
        if outcome is None:
            new[external_id] = deal
        elif not _outcome_current(outcome, deal, won):
            one_by_one.append(external_id)
    if new:
        try:
            with savepoint(session):
                refused = outcome_service.record_synced_outcomes(
                    session, registry, SYNC, [(d, closed[e]) for e, d in new.items()]
                )
        except (IntegrityError, DataError):
            one_by_one.extend(new)  # only the database saw what is wrong: one by one, to find it
        else:
            report.closed += len(new) - len(refused)
            for external_id, deal in new.items():
                if deal.id in refused:
                    _park(report, records[external_id], refused[deal.id])
    for external_id in one_by_one:
        try:
            with savepoint(session):
                _record_outcome(session, registry, deals[external_id], closed[external_id], report)
        except _RECORD_ERRORS as exc:
            _park(report, records[external_id], exc)


class _Rejected(Exception):
    pass


def _park(report: PullReport, record: Mapping[str, Any], exc: Exception) -> None:
    """A record that cannot be applied: counted and kept (at most 100) for an operator."""
    report.failed += 1
    if isinstance(exc, GovernanceError):
        reason = exc.detail or exc.title
        if exc.errors:
            reason += ": " + "; ".join(
                f"{'.'.join(map(str, p.loc))}: {p.message}" for p in exc.errors[:3]
            )
    elif isinstance(exc, DBAPIError):
        reason = f"the database refused it: {type(exc.orig).__name__}"
    else:
        reason = str(exc)
    if len(report.problems) < MAX_PROBLEMS:
        report.problems.append({"id": str(record.get("Id")), "reason": reason[:500]})


# What one record may fail with and still leave the rest of its page applied.
_RECORD_ERRORS = (_Rejected, GovernanceError, IntegrityError, DataError)


_GC_LOCK = threading.Lock()
_GC_PAGES = 0
_GC_SAVED = gc.get_threshold()
PAGE_GC_THRESHOLD = 100_000  # allocations between young collections while a page applies


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Collect garbage less often while a page applies.

    A page allocates hundreds of thousands of short-lived objects. At the collector's default
    (a young collection every 700 allocations, promoting survivors into ever larger older
    collections that walk every ORM object the page holds) that costs about a quarter of the
    pull. The page's objects go when its session closes; the usual thresholds come back when
    the last page in the process ends.
    """
    global _GC_PAGES, _GC_SAVED
    with _GC_LOCK:
        if _GC_PAGES == 0:
            _GC_SAVED = gc.get_threshold()
            gc.set_threshold(max(_GC_SAVED[0], PAGE_GC_THRESHOLD), *_GC_SAVED[1:])
        _GC_PAGES += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_PAGES -= 1
            if _GC_PAGES == 0:
                gc.set_threshold(*_GC_SAVED)


def _apply_page(
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    records: Iterable[Mapping[str, Any]],
    report: PullReport,
    checkpoint: Callable[[Any, Mapping[str, Any]], None] | None,
) -> None:
    """Apply a page in one transaction, with its checkpoint.

    Every record runs in its own savepoint, so a record that cannot be applied is parked (in
    the run's problems), not fatal. The deals no review has reached go through the page-level
    path of the "deal changed" workflow (`review.save_deals`, a few statements for the page);
    deletions, submissions and deals under review go one by one (`apply_record`). The page's
    closed opportunities then get their outcomes (`_record_outcomes`: the new ones together).
    """
    page = list(records)
    if not page:
        return
    with _fewer_collections(), db.unit_of_work() as session:
        SalesforceRepository(session).hold_write_lock()
        _apply_records(session, registry, settings, mapping, page, report)
        if checkpoint is not None:
            checkpoint(session, page[-1])


def _apply_records(
    session: Any,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    page: list[Mapping[str, Any]],
    report: PullReport,
) -> None:
    repo = SalesforceRepository(session)
    deals = repo.deals_by_external_id({salesforce_id_18(str(r["Id"])) for r in page})
    changes: dict[str, review.Change] = {}
    records: dict[str, Mapping[str, Any]] = {}
    one_by_one: list[Mapping[str, Any]] = []
    closed: dict[str, bool] = {}
    for record in page:
        report.read += 1
        try:
            external_id = salesforce_id_18(str(record["Id"]))
            modstamp = parse_datetime(str(record["SystemModstamp"]))
            deal = deals.get(external_id)
            if deal is not None and deal.sf_modstamp is not None and modstamp < deal.sf_modstamp:
                # Only strictly older (see `apply_record`): a same-second save still applies.
                report.skipped += 1
                continue
            if (
                record.get("IsDeleted")
                or external_id in records
                or (deal is not None and deal.status in REVIEWING)
                or (mapping.submit_field and field_value(record, mapping.submit_field))
            ):
                one_by_one.append(record)
                continue
            payload = _payload(mapping, record)
            if (
                deal is not None
                and deal.deleted_at is None
                and not deal_service.differs(deal, payload)
            ):
                # Nothing the service reads changed: no echo; the same stamp again is a re-read.
                if deal.sf_modstamp == modstamp:
                    report.skipped += 1
                else:
                    deal.sf_modstamp = modstamp
                    report.unchanged += 1
            else:
                changes[external_id] = review.Change(
                    external_id, payload, deal, {"sf_modstamp": modstamp}
                )
            records[external_id] = record
            if record.get("IsClosed"):
                closed[external_id] = bool(record.get("IsWon"))
        except _RECORD_ERRORS as exc:
            _park(report, record, exc)
    if changes:
        try:
            with savepoint(session):
                saved = review.save_deals(session, registry, SYNC, list(changes.values()))
        except (IntegrityError, DataError):
            # One of them is wrong in a way only the database saw: one by one, to find it.
            one_by_one.extend(records[e] for e in changes)
            for external_id in changes:
                closed.pop(external_id, None)
        else:
            report.created += len(saved.created)
            report.updated += len(saved.ids) - len(saved.created)
            report.checked += len(saved.ids)
            for external_id, refusal in saved.refused.items():
                closed.pop(external_id, None)
                _park(report, records[external_id], refusal)
            for change in saved.left:
                closed.pop(change.external_id, None)
                one_by_one.append(records[change.external_id])
    for record in one_by_one:
        try:
            with savepoint(session):
                apply_record(session, registry, settings, mapping, record, report)
        except _RECORD_ERRORS as exc:
            _park(report, record, exc)
    if closed:
        _record_outcomes(session, registry, closed, records, report)


def pull(
    db: Database,
    client: SalesforceClient,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    *,
    progress: Callable[[int, int], None] | None = None,
    max_pages: int | None = None,
    clock: Clock = utcnow,
) -> tuple[PullReport, SyncRun]:
    """Read every opportunity changed since the watermark, page by page, checkpointing each."""
    sf = settings.salesforce
    started = clock()
    overlap = timedelta(seconds=sf.overlap_seconds)
    ceiling = started - overlap
    with db.unit_of_work() as session:
        repo = SalesforceRepository(session)
        state = repo.state(mapping.sobject)
        since = state.watermark - overlap if state.watermark is not None else None
        bulk_job, full_load_done = state.bulk_job_id, state.full_load_done
        run = repo.add_run(
            SyncRun(
                kind="pull",
                started_at=started,
                status=RunStatus.running,
                counts={},
                problems=[],
            )
        )
        run_id = run.id
    conditions = []
    if mapping.filter:
        conditions.append(f"({mapping.filter})")
    if since is not None:
        conditions.append(f"SystemModstamp >= {soql_datetime(since)}")
    soql = (
        f"SELECT {', '.join(mapping.source_fields())} FROM {mapping.sobject}"
        + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
        + " ORDER BY SystemModstamp, Id"
    )
    report = PullReport()

    def checkpoint(session: Any, last: Mapping[str, Any]) -> None:
        state = SalesforceRepository(session).state(mapping.sobject, for_update=True)
        stamp = min(parse_datetime(str(last["SystemModstamp"])), ceiling)
        if state.watermark is None or stamp > state.watermark:
            state.watermark = stamp
            state.watermark_id = str(last["Id"])
        _save_run(session, run_id, report, client, clock, status=RunStatus.running)

    error: str | None = None
    try:
        if bulk_job is not None:
            _pull_bulk(db, client, registry, settings, mapping, report, run_id, progress, clock)
            return report, _finished_run(db, run_id, report, client, clock)
        page = client.query(soql, include_deleted=True)
        report.api_calls += 1
        if bulk.wanted(sf, page.total_size, page.next_url, full_load_done, since, started):
            # A big load: one query job instead of thousands of query pages.
            job = client.bulk_query(
                soql.replace(" ORDER BY SystemModstamp, Id", ""), include_deleted=True
            )
            report.api_calls += 1
            with db.unit_of_work() as session:
                state = SalesforceRepository(session).state(mapping.sobject, for_update=True)
                state.bulk_job_id, state.bulk_locator, state.bulk_ceiling = job.id, None, ceiling
            _pull_bulk(db, client, registry, settings, mapping, report, run_id, progress, clock)
            return report, _finished_run(db, run_id, report, client, clock)
        while True:
            report.pages += 1
            _apply_page(db, registry, settings, mapping, page.records, report, checkpoint)
            if progress is not None:
                progress(report.read, page.total_size)
            if page.next_url is None or (max_pages is not None and report.pages >= max_pages):
                break
            reason = outbound.quota_reached(client, sf)
            if reason is not None:
                # Checkpointed after the last page: the next run resumes from there.
                report.problems.append({"id": "", "reason": f"stopped early: {reason}"})
                break
            page = client.query_more(page.next_url)
            report.api_calls += 1
        if page.next_url is None:
            with db.unit_of_work() as session:
                repo = SalesforceRepository(session)
                state = repo.state(mapping.sobject, for_update=True)
                if not state.full_load_done:
                    repo.analyze_outbox()  # the load filled it: plan its claims on real figures
                state.full_load_done = True
                # Nothing newer than the ceiling was missed: the next run starts there.
                if state.watermark is None or state.watermark < ceiling:
                    state.watermark = ceiling
    except BaseException as exc:  # a Ctrl-C or SystemExit mid-run is no "done" either
        error = f"{type(exc).__name__}: {exc}"[:1000]
        raise
    finally:
        if error is not None:
            _finished_run(db, run_id, report, client, clock, error=error)
    return report, _finished_run(db, run_id, report, client, clock)


def _finished_run(
    db: Database,
    run_id: int,
    report: PullReport,
    client: SalesforceClient,
    clock: Clock,
    *,
    error: str | None = None,
) -> SyncRun:
    with db.unit_of_work() as session:
        run = _save_run(
            session,
            run_id,
            report,
            client,
            clock,
            status=RunStatus.failed if error else RunStatus.done,
            error=error,
        )
        run.finished_at = clock()
    return run


def _pull_bulk(
    db: Database,
    client: SalesforceClient,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    report: PullReport,
    run_id: int,
    progress: Callable[[int, int], None] | None,
    clock: Clock,
) -> None:
    """Apply the sync state's Bulk query job (`bulk.result_sets`) a set at a time, each set and
    the locator of the next in one transaction (a killed load resumes at the set it was
    applying). Once all are applied the watermark moves to the load's start minus the overlap,
    and later runs page REST queries from there."""
    sf = settings.salesforce
    with db.unit_of_work() as session:
        state = SalesforceRepository(session).state(mapping.sobject)
        job_id, locator, ceiling = state.bulk_job_id, state.bulk_locator, state.bulk_ceiling
    assert job_id is not None
    assert ceiling is not None
    for result in bulk.result_sets(db, client, sf, mapping, job_id, locator):
        report.api_calls += result.api_calls
        report.pages += 1
        records, following = result.records, result.following

        def checkpoint(
            session: Any, _last: Mapping[str, Any] | None = None, following: str | None = following
        ) -> None:
            repo = SalesforceRepository(session)
            state = repo.state(mapping.sobject, for_update=True)
            if following is not None:
                state.bulk_locator = following
            else:  # the load is applied: incremental REST pages from here
                state.bulk_job_id = state.bulk_locator = None
                if state.watermark is None or state.watermark < ceiling:
                    state.watermark = ceiling
                if not state.full_load_done:
                    repo.analyze_outbox()
                state.full_load_done = True
            _save_run(session, run_id, report, client, clock, status=RunStatus.running)

        if records:
            _apply_page(db, registry, settings, mapping, records, report, checkpoint)
        else:
            with db.unit_of_work() as session:
                checkpoint(session)
        if progress is not None:
            progress(report.read, result.total)
        if following is None:
            return
        reason = outbound.quota_reached(client, sf)
        if reason is not None:
            report.problems.append({"id": "", "reason": f"stopped early: {reason}"})
            return


def _save_run(
    session: Any,
    run_id: int,
    report: PullReport,
    client: SalesforceClient,
    clock: Clock,
    *,
    status: str,
    error: str | None = None,
) -> SyncRun:
    run: SyncRun = session.get(SyncRun, run_id)
    run.counts = report.counts()
    run.problems = list(report.problems)
    run.api_calls = report.api_calls
    run.status = status
    run.error = error
    outbound.record_usage(SalesforceRepository(session).state("Opportunity"), client, clock=clock)
    return run


def fetch(
    db: Database,
    client: SalesforceClient,
    registry: PlaybookRegistry,
    settings: Settings,
    mapping: SyncMapping,
    *,
    limit: int = 200,
) -> PullReport:
    """Fetch the opportunities Outbound Messages named (their values are never trusted)."""
    report = PullReport()
    with db.unit_of_work() as session:
        ids = [
            r.external_id
            for r in SalesforceRepository(session).take_fetches(limit, skip_locked=False)
        ]
    if not ids:
        return report
    soql = (
        f"SELECT {', '.join(mapping.source_fields())} FROM {mapping.sobject}"
        f" WHERE Id IN ({', '.join(_soql_text(i) for i in ids)})"
        " ORDER BY SystemModstamp, Id"
    )
    page = client.query(soql, include_deleted=True)
    report.api_calls += 1
    records = list(page.records)
    while page.next_url is not None:
        page = client.query_more(page.next_url)
        report.api_calls += 1
        records.extend(page.records)
    _apply_page(db, registry, settings, mapping, records, report, None)
    # Only now: a crash before here leaves the requests queued (applying twice is harmless).
    with db.unit_of_work() as session:
        SalesforceRepository(session).drop_fetches_for(ids)
    return report
