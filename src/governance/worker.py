"""`governance worker`: approval reminders and escalations, the notification outbox, and the
Salesforce pull and push, each in a loop of its own.

`run_forever` runs the four loops (`WorkerLoop`) as threads of one process, or only the ones
asked for (`governance worker --only pull`), so a long first load never delays an SLA reminder
or a webhook. Each loop records a heartbeat (`worker_heartbeats`) after every pass, and the pull
after every page too; `governance sync status` and `GET /v1/salesforce/status` show them.
Each pass is a few short transactions. On PostgreSQL several workers may run at once: the SLA
sweep and both outbox claims lock rows with `FOR UPDATE SKIP LOCKED`, so no request is
escalated twice and no message is posted twice.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from governance.approvals import service as approval_service
from governance.db import Clock, Database, utcnow
from governance.heartbeats.models import WorkerLoop
from governance.heartbeats.repository import HeartbeatRepository, exclusive
from governance.notifications import service as notifications
from governance.notifications import targets
from governance.playbooks.registry import PlaybookRegistry
from governance.salesforce.client import SalesforceClient, SalesforceError
from governance.settings import Settings

log = logging.getLogger(__name__)
BEAT_EVERY = 5.0  # seconds between the heartbeats a long pull records page by page


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
    """One pass of every loop in turn: sweep SLAs (committing what it decided), post due
    notifications, and, with a Salesforce client, fetch what Outbound Messages named, pull when
    asked, and push."""
    report = PassReport()
    sweep_approvals(db, registry, settings, report, clock)
    post_webhooks(db, settings, client, report, clock)
    if salesforce is not None:
        _sync(db, registry, settings, salesforce, pull, report, clock)
    return report


def sweep_approvals(
    db: Database, registry: PlaybookRegistry, settings: Settings, report: PassReport, clock: Clock
) -> None:
    """Send due SLA reminders and escalate overdue requests."""
    with db.unit_of_work() as session:
        sweep = approval_service.sweep(session, registry, settings, now=clock())
    report.reminded += sweep.reminded
    report.escalated += sweep.escalated
    report.overdue_without_target += sweep.overdue_without_target


def post_webhooks(
    db: Database,
    settings: Settings,
    client: httpx.Client | None,
    report: PassReport,
    clock: Clock,
) -> None:
    """Post due notifications in small claims, until nothing is due (bounded per pass)."""
    policy = targets.WebhookPolicy.of(settings)
    for _ in range(50):
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


def _sync(
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    salesforce: SalesforceClient,
    pull: bool,
    report: PassReport,
    clock: Clock,
) -> None:
    """Salesforce's share of a pass: in (fetches, then the pull when asked), then out."""
    pull_salesforce(db, registry, settings, salesforce, pull, report, clock)
    if report.sync_error is None:
        push_salesforce(db, settings, salesforce, report, clock)


def pull_salesforce(
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    salesforce: SalesforceClient,
    pull: bool,
    report: PassReport,
    clock: Clock,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Fetch what Outbound Messages named, then pull changes when `pull`; a Salesforce fault is
    reported, never fatal to the worker."""
    from governance.salesforce import inbound
    from governance.salesforce import service as sf_service

    mapping = sf_service.mapping_of(settings)
    try:
        report.fetched = inbound.fetch(db, salesforce, registry, settings, mapping).read
        if pull:
            pulled, _run = inbound.pull(
                db, salesforce, registry, settings, mapping, clock=clock, progress=progress
            )
            report.pulled = pulled.read
    except SalesforceError as exc:
        report.sync_error = f"{exc.code}: {exc.message}"
        log.warning("salesforce pull: %s", report.sync_error)


def push_salesforce(
    db: Database, settings: Settings, salesforce: SalesforceClient, report: PassReport, clock: Clock
) -> None:
    """Drain the Salesforce outbox; a Salesforce fault is reported, never fatal to the worker."""
    from governance.salesforce import outbound
    from governance.salesforce import service as sf_service

    mapping = sf_service.mapping_of(settings)
    try:
        pushed = outbound.push(
            db, salesforce, mapping, settings.salesforce, settings.public_url, clock=clock
        )
        report.pushed, report.push_failed = pushed.pushed, pushed.failed
    except SalesforceError as exc:
        report.sync_error = f"{exc.code}: {exc.message}"
        log.warning("salesforce push: %s", report.sync_error)


# --- the loops -----------------------------------------------------------------------------------


def worker_id() -> str:
    """This process, as its heartbeats name it: host, pid and a random tag (pids are reused)."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{secrets.token_hex(3)}"


def beat(
    db: Database,
    loop: WorkerLoop,
    worker: str,
    clock: Clock = utcnow,
    *,
    passed: bool = False,
    error: str | None = None,
) -> None:
    """Record a loop's heartbeat in its own transaction (a failure to record is only logged)."""
    try:
        with db.unit_of_work() as session:
            HeartbeatRepository(session).beat(loop, worker, clock(), passed=passed, error=error)
    except Exception:
        log.exception("the %s loop's heartbeat was not recorded", loop)


class _Org:
    """One loop's own Salesforce client, made on first use (a failed login is retried)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client: SalesforceClient | None = None

    def get(self) -> SalesforceClient | None:
        if self.settings.salesforce.mapping_file is None:
            return None
        if self.client is None:
            from governance.salesforce import service as sf_service

            self.client = sf_service.client_of(self.settings)
        return self.client


def _steps(
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    worker: str,
    client: httpx.Client,
    clock: Clock,
) -> dict[WorkerLoop, Callable[[PassReport], None]]:
    """What one pass of each loop does."""
    pull_org, push_org = _Org(settings), _Org(settings)
    last_pull: list[float | None] = [None]
    last_beat = [time.monotonic()]

    def pulse(_done: int, _total: int) -> None:
        # A first load runs for minutes: the pull says it is alive page by page.
        if time.monotonic() - last_beat[0] >= BEAT_EVERY:
            last_beat[0] = time.monotonic()
            beat(db, WorkerLoop.pull, worker, clock)

    def pull(report: PassReport) -> None:
        try:
            salesforce = pull_org.get()
        except SalesforceError as exc:
            report.sync_error = f"{exc.code}: {exc.message}"
            return
        if salesforce is None:
            return
        previous = last_pull[0]
        due = previous is None or (
            time.monotonic() - previous >= settings.salesforce.pull_interval_seconds
        )
        # One pull at a time across workers: two reading the same records would apply (and
        # push) each twice. The others skip the pass; the holder does the work.
        with exclusive(db.engine, "governance.salesforce.pull") as held:
            if not held:
                return
            if due:
                last_pull[0] = time.monotonic()
            pull_salesforce(db, registry, settings, salesforce, due, report, clock, pulse)

    def push(report: PassReport) -> None:
        try:
            salesforce = push_org.get()
        except SalesforceError as exc:
            report.sync_error = f"{exc.code}: {exc.message}"
            return
        if salesforce is not None:
            push_salesforce(db, settings, salesforce, report, clock)

    return {
        WorkerLoop.pull: pull,
        WorkerLoop.push: push,
        WorkerLoop.approvals: lambda report: sweep_approvals(db, registry, settings, report, clock),
        WorkerLoop.webhooks: lambda report: post_webhooks(db, settings, client, report, clock),
    }


def _run_loop(
    db: Database,
    loop: WorkerLoop,
    step: Callable[[PassReport], None],
    interval: float,
    worker: str,
    stop: threading.Event,
    clock: Clock,
) -> None:
    """Pass after pass of one loop until `stop`; a failed pass is logged, beaten and retried."""
    beat(db, loop, worker, clock)
    while not stop.is_set():
        report = PassReport()
        error: str | None = None
        try:
            step(report)
            error = report.sync_error
        except Exception as exc:  # keep the loop alive; the next pass retries
            log.exception("%s pass failed", loop)
            error = f"{type(exc).__name__}: {exc}"[:1000]
        if any(asdict(report).values()):
            log.info("%s pass: %s", loop, _fields(report))
        beat(db, loop, worker, clock, passed=True, error=error)
        stop.wait(interval)


def run_forever(
    db: Database,
    settings: Settings,
    stop: threading.Event | None = None,
    *,
    only: Collection[WorkerLoop] | None = None,
    worker: str | None = None,
    clock: Clock = utcnow,
) -> None:
    """Run the loops (all, or `only` these) as threads until SIGTERM or SIGINT (or `stop`)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    worker = worker or worker_id()
    registry = PlaybookRegistry(db, settings.playbook_cache_seconds)
    loops = [loop for loop in WorkerLoop if only is None or loop in only]
    with httpx.Client(timeout=settings.notify_timeout_seconds) as client:
        steps = _steps(db, registry, settings, worker, client, clock)
        threads = [
            threading.Thread(
                target=_run_loop,
                args=(db, loop, steps[loop], settings.worker_interval_seconds, worker, stop, clock),
                name=f"worker-{loop}",
                daemon=True,  # a call stuck past its timeout never holds the process
            )
            for loop in loops
        ]
        for thread in threads:
            thread.start()
        stop.wait()
        for thread in threads:
            # A pass in flight finishes its transaction (every call has a timeout).
            thread.join(settings.salesforce.timeout_seconds + settings.notify_timeout_seconds)


def _fields(report: PassReport) -> dict[str, Any]:
    return {k: v for k, v in asdict(report).items() if v}
