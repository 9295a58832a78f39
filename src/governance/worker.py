"""`governance worker`: approval reminders and escalations, and the notification outbox.

Each pass is a few short transactions. On PostgreSQL several workers may run at once: the SLA
sweep and the outbox claim both lock rows with `FOR UPDATE SKIP LOCKED`, so no request is
escalated twice and no message is posted twice.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from governance.approvals import service as approval_service
from governance.db import Clock, Database, utcnow
from governance.notifications import service as notifications
from governance.notifications import targets
from governance.playbooks.registry import PlaybookRegistry
from governance.salesforce.client import SalesforceClient, SalesforceError
from governance.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class PassReport:
    reminded: int = 0
    escalated: int = 0
    overdue_without_target: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    pulled: int = 0
    fetched: int = 0
    pushed: int = 0
    push_failed: int = 0
    sync_error: str | None = None


def run_once(
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    *,
    client: httpx.Client | None = None,
    salesforce: SalesforceClient | None = None,
    pull: bool = False,
    clock: Clock = utcnow,
) -> PassReport:
    """One pass: sweep SLAs (committing what it decided), post due notifications, and, with a
    Salesforce client, fetch what Outbound Messages named, pull when asked, and push."""
    with db.unit_of_work() as session:
        sweep = approval_service.sweep(session, registry, settings, now=clock())
    report = PassReport(**asdict(sweep))
    policy = targets.WebhookPolicy.of(settings)
    for _ in range(50):  # small claims, until nothing is due (bounded per pass)
        drained = notifications.drain(
            db,
            max_attempts=settings.notify_max_attempts,
            timeout=settings.notify_timeout_seconds,
            policy=policy,
            client=client,
            clock=clock,
        )
        report.sent += drained.sent
        report.retried += drained.retried
        report.dead += drained.dead
        if not (drained.sent or drained.retried or drained.dead):
            break
    if salesforce is not None:
        _sync(db, registry, settings, salesforce, pull, report, clock)
    return report


def _sync(
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    salesforce: SalesforceClient,
    pull: bool,
    report: PassReport,
    clock: Clock,
) -> None:
    """Salesforce's share of a pass; a Salesforce fault is reported, never fatal to the worker."""
    from governance.salesforce import inbound, outbound
    from governance.salesforce import service as sf_service

    mapping = sf_service.mapping_of(settings)
    try:
        report.fetched = inbound.fetch(db, salesforce, registry, settings, mapping).read
        if pull:
            report.pulled = inbound.pull(db, salesforce, registry, settings, mapping, clock=clock)[
                0
            ].read
        pushed = outbound.push(
            db, salesforce, mapping, settings.salesforce, settings.public_url, clock=clock
        )
        report.pushed, report.push_failed = pushed.pushed, pushed.failed
    except SalesforceError as exc:
        report.sync_error = f"{exc.code}: {exc.message}"
        log.warning("salesforce sync: %s", report.sync_error)


def run_forever(db: Database, settings: Settings, stop: threading.Event | None = None) -> None:
    """Pass after pass until SIGTERM or SIGINT; a failed pass is logged and retried."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    registry = PlaybookRegistry(db, settings.playbook_cache_seconds)
    salesforce: SalesforceClient | None = None
    last_pull = 0.0
    with httpx.Client(timeout=settings.notify_timeout_seconds) as client:
        while not stop.is_set():
            try:
                if salesforce is None and settings.salesforce.mapping_file is not None:
                    from governance.salesforce import service as sf_service

                    salesforce = sf_service.client_of(settings)
                pull = time.monotonic() - last_pull >= settings.salesforce.pull_interval_seconds
                report = run_once(
                    db, registry, settings, client=client, salesforce=salesforce, pull=pull
                )
                if pull and salesforce is not None:
                    last_pull = time.monotonic()
                if any(asdict(report).values()):
                    log.info("worker pass: %s", _fields(report))
            except Exception:  # keep the worker alive; the next pass retries
                log.exception("worker pass failed")
            stop.wait(settings.worker_interval_seconds)


def _fields(report: PassReport) -> dict[str, Any]:
    return {k: v for k, v in asdict(report).items() if v}
