"""Governance results out to Salesforce: a per-deal outbox, drained in sObject Collections calls.

Every change to a deal's verdict, variance, status, approval requests or outcome queues the
deal's outbox row in the same transaction (`outbox.enqueue`). The pusher leases due rows,
reads each deal's *current* values (so changes coalesce and the latest win), sends up to 200
per call with `allOrNone=false`, and reads each record's result: success removes the row unless
a newer change came in meanwhile; failure retries with exponential backoff and jitter, and
parks the row as `dead` after the configured attempts. `REQUEST_LIMIT_EXCEEDED`, or reaching
the configured share of the daily API quota, pauses the push without dropping anything.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from governance import figures
from governance.approvals.models import ApprovalRequest, RequestStatus
from governance.db import Clock, Database, utcnow
from governance.deals.models import Deal
from governance.outcomes.models import Outcome
from governance.salesforce.client import (
    MAX_COLLECTION,
    QuotaExceeded,
    SalesforceClient,
    SalesforceError,
)
from governance.salesforce.mapping import SyncMapping
from governance.salesforce.models import OutboxItem, OutboxStatus, RunStatus, SyncRun, SyncState
from governance.salesforce.repository import SalesforceRepository
from governance.settings import SalesforceSettings

LEASE = timedelta(minutes=5)


# --- what Salesforce should show ---------------------------------------------------------------


def _ratio(value: Decimal | None) -> Decimal | None:
    return figures.maybe_ratio(value)


def values_for(
    deal: Deal,
    open_requests: Iterable[ApprovalRequest],
    outcome: Outcome | None,
    mapping: SyncMapping,
    public_url: str,
    required: Iterable[str] = (),
) -> dict[str, Any]:
    """The output fields of one opportunity, by Salesforce field name.

    Approvers are the groups whose requests are open (pending first), or, before the deal is
    submitted, the groups its latest check says it would need (`required`).
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
    }
    return {field: values[key] for key, field in mapping.outputs.items() if key in values}


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


def _fail(item: OutboxItem, error: str, now: datetime, settings: SalesforceSettings) -> bool:
    """Count a failed attempt; True when the item is now dead."""
    item.attempts += 1
    item.last_error = error[:1000]
    item.claimed_until = None
    item.claimed_version = None
    if item.attempts >= settings.max_attempts:
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
    batches = 0
    while max_batches is None or batches < max_batches:
        reason = quota_reached(client, settings)
        if reason:
            report.paused = reason
            break
        now = clock()
        with db.unit_of_work() as session:
            repo = SalesforceRepository(session)
            items = repo.claim(now, now + LEASE, MAX_COLLECTION, skip_locked=not db.is_sqlite)
            if not items:
                break
            deals, open_requests, outcomes, steps = repo.push_sources([i.deal_id for i in items])
            batch: list[tuple[int, int, dict[str, Any]]] = []
            for item in items:
                deal = deals.get(item.deal_id)
                if deal is None or deal.deleted_at is not None or not mapping.outputs:
                    repo.delete_if_unchanged(item.id, item.version)
                    report.skipped += 1
                    continue
                values = values_for(
                    deal,
                    open_requests[deal.id],
                    outcomes.get(deal.id),
                    mapping,
                    public_url,
                    [s["group"] for s in steps.get(deal.id, ())],
                )
                item.last_values = {
                    k: (str(v) if isinstance(v, Decimal) else v) for k, v in values.items()
                }
                batch.append((item.id, item.version, {"id": deal.external_id, **values}))
        if not batch:
            continue
        batches += 1
        try:
            report.api_calls += 1
            results = client.update(mapping.sobject, [record for _, _, record in batch])
        except SalesforceError as exc:
            with db.unit_of_work() as session:
                repo = SalesforceRepository(session)
                items_now = repo.items([item_id for item_id, _, _ in batch])
                if isinstance(exc, QuotaExceeded):
                    # Nothing was written: hand the rows back untouched and pause.
                    repo.release([i.id for i in items_now])
                    report.paused = f"{exc.code}: {exc.message}"
                else:
                    now = clock()
                    for item in items_now:
                        report.dead += _fail(item, f"{exc.code}: {exc.message}", now, settings)
                        report.failed += 1
            if isinstance(exc, QuotaExceeded) or exc.retryable:
                break
            continue
        with db.unit_of_work() as session:
            repo = SalesforceRepository(session)
            now = clock()
            by_id = {i.id: i for i in repo.items([item_id for item_id, _, _ in batch])}
            for (item_id, version, _record), result in zip(batch, results, strict=False):
                found = by_id.get(item_id)
                if found is None:
                    continue
                item = found
                if result.success:
                    report.pushed += 1
                    if not repo.delete_if_unchanged(item_id, version):
                        item.claimed_until = None  # changed meanwhile: send the newer values
                        item.claimed_version = None
                else:
                    report.failed += 1
                    report.dead += _fail(item, _error_text(result.errors), now, settings)
            for item_id, _version, _record in batch[len(results) :]:
                missing = by_id.get(item_id)
                if missing is not None:
                    report.failed += 1
                    report.dead += _fail(missing, "no result for this record", now, settings)
