"""Governance results out to Salesforce: a per-deal outbox, drained in sObject Collections calls.

Every change to a deal's verdict, variance, status, approval requests or outcome queues the
deal's outbox row in the same transaction (`outbox.enqueue`). The pusher leases due rows,
reads each deal's *current* values (so changes coalesce and the latest win), sends up to 200
per call with `allOrNone=false` (up to `push_concurrency` calls at once), and reads each
record's result: success removes the row unless a newer change came in meanwhile (one statement
per batch); failure retries with exponential backoff and jitter, and
parks the row as `dead` after the configured attempts, or at once when no retry can succeed
(`PERMANENT_ERRORS`); a call that fails whole with a 5xx or a timeout is retried for as long as
the outage lasts. `REQUEST_LIMIT_EXCEEDED`, or reaching
the configured share of the daily API quota, pauses the push without dropping anything.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from governance import figures
from governance.approvals.models import RequestStatus
from governance.db import Clock, Database, utcnow
from governance.observability.context import request_id_bound
from governance.salesforce.client import (
    MAX_COLLECTION,
    QuotaExceeded,
    RecordResult,
    SalesforceClient,
    SalesforceError,
)
from governance.salesforce.mapping import SyncMapping
from governance.salesforce.models import OutboxItem, OutboxStatus, RunStatus, SyncRun, SyncState
from governance.salesforce.repository import (
    PushDeal,
    PushOutcome,
    PushRequest,
    SalesforceRepository,
)
from governance.settings import SalesforceSettings

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)


# --- what Salesforce should show ---------------------------------------------------------------


# The outputs `values_for` computes: a mapping naming any other output fails validation.
PRODUCED = frozenset(
    {"status", "variance", "approvers", "approval_status", "check_url", "outcome",
     "concession_cost"}
)  # fmt: skip


def _ratio(value: Decimal | None) -> Decimal | None:
    return figures.maybe_ratio(value)


def values_for(
    deal: PushDeal,
    open_requests: Iterable[PushRequest],
    outcome: PushOutcome | None,
    mapping: SyncMapping,
    public_url: str,
    required: Iterable[str] = (),
) -> dict[str, Any]:
    """The output fields of one opportunity, by Salesforce field name.

    Approvers are the groups whose requests are open (pending first), or, before the deal is
    submitted, the groups its latest check says it would need (`required`). Every output the
    mapping names is written (empty until the service has a value, like the outcome figures
    before the deal closes); `PRODUCED` lists them, and `validate-mapping` refuses others.
    """
    requests = sorted(
        open_requests, key=lambda r: (r.status != RequestStatus.pending, r.step, r.group)
    )
    groups = [r.group for r in requests] if requests else list(required)
    values: dict[str, Any] = {
        "status": deal.last_verdict,
        "variance": _ratio(deal.last_variance_score),
        "approvers": ", ".join(dict.fromkeys(groups)) or None,
        "approval_status": deal.status,
        "check_url": f"{public_url.rstrip('/')}/v1/deals/{deal.external_id}/checks",
        "outcome": None if outcome is None else ("won" if outcome.won else "lost"),
        # The money conceded at close, in the deal's currency (the outcome's total cost).
        "concession_cost": None if outcome is None else figures.maybe_money(outcome.cost),
    }
    return {field: values[key] for key, field in mapping.outputs.items()}


# --- the pusher ----------------------------------------------------------------------------------


@dataclass
class PushReport:
    pushed: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0
    api_calls: int = 0
    paused: str | None = None


def backoff(attempts: int, settings: SalesforceSettings, rng: random.Random | None = None) -> float:
    ceiling = min(
        settings.retry_cap_seconds, settings.retry_base_seconds * 2 ** max(attempts - 1, 0)
    )
    return (rng or random).uniform(ceiling / 2, ceiling)


def _error_text(errors: Iterable[Mapping[str, Any]]) -> str:
    parts = []
    for error in errors:
        fields = ",".join(error.get("fields") or ())
        parts.append(
            f"{error.get('statusCode', 'ERROR')}: {error.get('message', '')}"
            + (f" ({fields})" if fields else "")
        )
    return "; ".join(parts)[:1000] or "rejected without a reason"


# Per-record errors no retry can cure: the record is parked at once for an operator (a later
# change to the deal queues it again). Others (UNABLE_TO_LOCK_ROW; NOT_FOUND and
# INSUFFICIENT_ACCESS_OR_READONLY, which sharing may yet lift, ...) are retried.
PERMANENT_ERRORS = frozenset(
    {
        "ENTITY_IS_DELETED",
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "FIELD_INTEGRITY_EXCEPTION",
        "INVALID_CROSS_REFERENCE_KEY",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "MALFORMED_ID",
        "NUMBER_OUTSIDE_VALID_RANGE",
        "REQUIRED_FIELD_MISSING",
        "STRING_TOO_LONG",
    }
)


def _permanent(errors: Iterable[Mapping[str, Any]]) -> bool:
    codes = [str(error.get("statusCode") or "") for error in errors]
    return bool(codes) and all(code in PERMANENT_ERRORS for code in codes)


def _fail(
    item: OutboxItem,
    error: str,
    now: datetime,
    settings: SalesforceSettings,
    *,
    outcome: str = "retry",
) -> bool:
    """Count a failed attempt; True when the item is now dead.

    `outcome`: "retry" (dead after the configured attempts), "park" (dead now: no retry can
    succeed), or "outage" (the whole call failed, 5xx or timeout: retried with backoff for as
    long as it lasts, never parked).
    """
    item.attempts += 1
    item.last_error = error[:1000]
    item.claimed_until = None
    item.claimed_version = None
    if outcome == "park" or (outcome == "retry" and item.attempts >= settings.max_attempts):
        item.status = OutboxStatus.dead
        return True
    item.next_attempt_at = now + timedelta(seconds=backoff(item.attempts, settings))
    return False


def quota_reached(client: SalesforceClient, settings: SalesforceSettings) -> str | None:
    usage = client.usage
    if usage is not None and usage.limit and usage.share >= settings.quota_stop_share:
        return f"API usage {usage.used}/{usage.limit} reached the configured stop share"
    return None


def push(
    db: Database,
    client: SalesforceClient,
    mapping: SyncMapping,
    settings: SalesforceSettings,
    public_url: str,
    *,
    max_batches: int | None = None,
    clock: Clock = utcnow,
) -> PushReport:
    """Drain due outbox rows, 200 opportunities per call, until none are due or we must pause."""
    report = PushReport()
    with db.unit_of_work() as session:
        repo = SalesforceRepository(session)
        state = repo.state(mapping.sobject)
        if state.paused_until is not None and state.paused_until > clock():
            report.paused = f"paused until {state.paused_until.isoformat()}: {state.pause_reason}"
            return report
        started = clock()
        run_id = repo.add_run(
            SyncRun(
                kind="push",
                started_at=started,
                status=RunStatus.running,
                counts={},
                problems=[],
            )
        ).id
    error: str | None = None
    try:
        _drain(db, client, mapping, settings, public_url, max_batches, report, clock)
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
        raise
    finally:
        with db.unit_of_work() as session:
            repo = SalesforceRepository(session)
            run = repo.run(run_id)
            run.counts = {
                "pushed": report.pushed,
                "failed": report.failed,
                "dead": report.dead,
                "skipped": report.skipped,
            }
            run.api_calls = report.api_calls
            run.status = (
                RunStatus.failed
                if error
                else (RunStatus.paused if report.paused else RunStatus.done)
            )
            run.error = error or report.paused
            run.finished_at = clock()
            state = repo.state(mapping.sobject, for_update=True)
            record_usage(state, client, clock=clock)
            if report.paused:
                # Sleep it off: no call until then (REQUEST_LIMIT_EXCEEDED calls are not free
                # for the org's other integrations either).
                state.paused_until = clock() + timedelta(seconds=settings.pause_seconds)
                state.pause_reason = report.paused[:500]
            elif report.pushed:
                state.paused_until, state.pause_reason = None, None
    return report


def record_usage(state: SyncState, client: SalesforceClient, *, clock: Clock = utcnow) -> None:
    usage = client.usage
    if usage is not None:
        state.api_used, state.api_limit, state.api_seen_at = usage.used, usage.limit, clock()


# (outbox row id, its version, the request behind that version, the record)
Batch = list[tuple[int, int, str | None, dict[str, Any]]]


def _claim(
    db: Database,
    mapping: SyncMapping,
    public_url: str,
    calls: int,
    report: PushReport,
    now: datetime,
) -> list[Batch] | None:
    """Lease up to `calls` Collections calls' worth of due rows and read what each deal should
    show; None when nothing is due."""
    with db.unit_of_work() as session:
        repo = SalesforceRepository(session)
        claimed = repo.claim(now, calls * MAX_COLLECTION, skip_locked=not db.is_sqlite)
        if not claimed:
            return None
        deals, open_requests, outcomes, steps = repo.push_sources([row[1] for row in claimed])
        records: Batch = []
        leases: list[tuple[int, int, dict[str, Any]]] = []
        gone: list[tuple[int, int]] = []
        for item_id, deal_id, version, request_id in claimed:
            deal = deals.get(deal_id)
            if deal is None or deal.deleted_at is not None or not mapping.outputs:
                gone.append((item_id, version))  # deleted below: no lease to write
                continue
            values = values_for(
                deal,
                open_requests.get(deal_id, ()),
                outcomes.get(deal_id),
                mapping,
                public_url,
                steps.get(deal_id, ()),
            )
            leases.append(
                (
                    item_id,
                    version,
                    {k: (str(v) if isinstance(v, Decimal) else v) for k, v in values.items()},
                )
            )
            records.append((item_id, version, request_id, {"id": deal.external_id, **values}))
        # One UPDATE per claimed row, lease and values together (see `lease`).
        repo.lease(leases, now + LEASE, now)
        repo.delete_if_unchanged_many(gone)
        report.skipped += len(gone)
    return [records[i : i + MAX_COLLECTION] for i in range(0, len(records), MAX_COLLECTION)]


def _send(
    client: SalesforceClient, sobject: str, batches: list[Batch], concurrency: int
) -> list[list[RecordResult] | SalesforceError]:
    """One Collections call per batch, up to `concurrency` at once; each call's results or its
    error, in the batches' order."""

    def call(batch: Batch) -> list[RecordResult] | SalesforceError:
        try:
            return client.update(sobject, [record for _, _, _, record in batch])
        except SalesforceError as exc:
            return exc

    if concurrency <= 1 or len(batches) <= 1:
        return [call(batch) for batch in batches]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(batches))) as pool:
        return list(pool.map(call, batches))


def _drain(
    db: Database,
    client: SalesforceClient,
    mapping: SyncMapping,
    settings: SalesforceSettings,
    public_url: str,
    max_batches: int | None,
    report: PushReport,
    clock: Clock,
) -> None:
    batches_sent = 0
    while max_batches is None or batches_sent < max_batches:
        reason = quota_reached(client, settings)
        if reason:
            report.paused = reason
            break
        calls = settings.push_concurrency
        if max_batches is not None:
            calls = min(calls, max_batches - batches_sent)
        batches = _claim(db, mapping, public_url, calls, report, clock())
        if batches is None:
            break
        if not batches:
            continue
        batches_sent += len(batches)
        report.api_calls += len(batches)
        answers = _send(client, mapping.sobject, batches, calls)
        stop = False
        with db.unit_of_work() as session:
            repo = SalesforceRepository(session)
            now = clock()
            # Rows gone meanwhile (their deal deleted) are neither pushed nor failed.
            present = repo.existing([row[0] for batch in batches for row in batch])
            acknowledged: list[tuple[int, int]] = []
            failures: dict[int, str] = {}
            outcomes: dict[int, str] = {}  # how each failure counts (see `_fail`)
            for batch, answer in zip(batches, answers, strict=True):
                if isinstance(answer, SalesforceError):
                    stop |= isinstance(answer, QuotaExceeded) or answer.retryable
                    ids_now = [row[0] for row in batch if row[0] in present]
                    if isinstance(answer, QuotaExceeded):
                        # Nothing was written: hand the rows back untouched and pause.
                        repo.release(ids_now)
                        report.paused = f"{answer.code}: {answer.message}"
                    else:
                        failures.update(dict.fromkeys(ids_now, f"{answer.code}: {answer.message}"))
                        if answer.retryable:
                            outcomes.update(dict.fromkeys(ids_now, "outage"))
                    continue
                for (item_id, version, request_id, record), result in zip(
                    batch, answer, strict=False
                ):
                    if item_id not in present:
                        continue
                    # Its line names the request whose change it carries.
                    with request_id_bound(request_id):
                        if result.success:
                            acknowledged.append((item_id, version))
                            log.debug("pushed %s", record["id"])
                        else:
                            error = _error_text(result.errors)
                            failures[item_id] = error
                            if _permanent(result.errors):
                                outcomes[item_id] = "park"
                            log.warning("push of %s failed: %s", record["id"], error)
                for item_id, _version, _request_id, _record in batch[len(answer) :]:
                    if item_id in present:
                        failures[item_id] = "no result for this record"
            report.pushed += len(acknowledged)
            # Failures are few: only their rows are loaded, to count the attempt.
            for failed in repo.items(failures):
                report.failed += 1
                report.dead += _fail(
                    failed, failures[failed.id], now, settings,
                    outcome=outcomes.get(failed.id, "retry"),
                )  # fmt: skip
            # One statement for the batch's acknowledged rows; a row changed meanwhile stays,
            # released, to send its newer values.
            deleted = repo.delete_if_unchanged_many(acknowledged)
            repo.release([item_id for item_id, _ in acknowledged if item_id not in deleted])
        if stop:
            break
