"""Prometheus metrics: HTTP traffic counted in each process, business figures read from the
database when scraped.

HTTP requests, their latency and on-demand checks are counted where they happen. Under several
uvicorn workers each process counts its own share: set `PROMETHEUS_MULTIPROC_DIR` (an empty
directory, `governance serve --workers N` makes one when it is unset) and every process writes
its counts there, and any one of them reports the sum.

The business figures (approval queues, decisions, outboxes, the sync's lag and usage) are read
from the database by a collector at scrape time, so they are the same whichever process is
asked and include what the worker did. A process reuses what it read for `cache_seconds`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from governance.db import Database, utcnow
from governance.observability import repository
from governance.observability.counters import LOCAL
from governance.settings import Settings

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Age buckets of open approval requests: (label, upper bound in hours).
AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("lt_1h", 1),
    ("1h_4h", 4),
    ("4h_24h", 24),
    ("1d_3d", 72),
    ("3d_7d", 168),
    ("gt_7d", float("inf")),
)
SLA_ACTIONS = {
    "approval.reminded": "governance_approval_reminders",
    "approval.escalated": "governance_approval_escalations",
    "approval.overdue": "governance_approval_overdue_unescalated",
}
# A sync run still "running" after this long was left by a process that died.
STALE_RUN = timedelta(hours=1)


def age_bucket(hours: float) -> str:
    """The label of the age bucket `hours` falls in."""
    for label, upper in AGE_BUCKETS:
        if hours < upper:
            return label
    return AGE_BUCKETS[-1][0]


class _ProcessCounters(Collector):
    """This process's counters, or every process's in multiprocess mode."""

    def __init__(self) -> None:
        directory = os.environ.get(MULTIPROC_ENV)
        self.shared: CollectorRegistry | None = None
        if directory:
            self.shared = CollectorRegistry()
            MultiProcessCollector(self.shared, path=directory)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        return (self.shared or LOCAL).collect()


class BusinessFigures(Collector):
    """The figures an operator watches, read from the database (see the module docstring)."""

    def __init__(self, db: Database, cache_seconds: float) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._read_at = -float("inf")
        # Running totals over the append-only histories, and how far they have been read.
        self._audit_mark = 0
        self._sla: dict[str, int] = {}
        self._runs_mark = 0
        self._records: dict[str, int] = {"pulled": 0, "pushed": 0}

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() - self._read_at >= self.cache_seconds:
                self._cached = self._read(utcnow())
                self._read_at = time.monotonic()
            yield from self._cached

    def _read(self, now: datetime) -> list[Metric]:
        with self.db.session() as session:
            deals = repository.deals_by_verdict(session)
            waiting = repository.open_requests(session)
            decisions = repository.decisions_by_outcome(session)
            webhooks = repository.webhook_outbox(session)
            salesforce = repository.salesforce_outbox(session)
            states = repository.sync_states(session)
            beats = repository.latest_beats(session)
            self._audit_mark, sla = repository.audit_actions_between(
                session, self._audit_mark, tuple(SLA_ACTIONS)
            )
            self._runs_mark, records = repository.sync_records_between(
                session, self._runs_mark, now - STALE_RUN
            )
        for action, n in sla.items():
            self._sla[action] = self._sla.get(action, 0) + n
        for direction, n in records.items():
            self._records[direction] += n

        metrics: list[Metric] = []
        family = GaugeMetricFamily(
            "governance_deals", "Live deals by the verdict of their latest stored check.",
            labels=["verdict"],
        )  # fmt: skip
        for verdict, n in sorted(deals.items()):
            family.add_metric([verdict], n)
        metrics.append(family)

        counts: dict[tuple[str, str], int] = {}
        for group, since in waiting:
            key = (group, age_bucket((now - since).total_seconds() / 3600))
            counts[key] = counts.get(key, 0) + 1
        family = GaugeMetricFamily(
            "governance_approval_requests_open",
            "Approval requests not decided yet (pending or waiting for an earlier step), by the "
            "group holding them and how long they have waited.",
            labels=["group", "age"],
        )
        for (group, age), n in sorted(counts.items()):
            family.add_metric([group, age], n)
        metrics.append(family)

        for action, name in SLA_ACTIONS.items():
            counter = CounterMetricFamily(
                name, f"Approval requests the SLA sweep recorded as {action.split('.')[1]}."
            )
            counter.add_metric([], self._sla.get(action, 0))
            metrics.append(counter)

        counter = CounterMetricFamily(
            "governance_approval_decisions",
            "Approval requests decided, by outcome.",
            labels=["outcome"],
        )
        for outcome, n in sorted(decisions.items()):
            counter.add_metric([outcome], n)
        metrics.append(counter)

        for name, what, rows in (
            ("governance_webhook_outbox", "Webhook notifications", webhooks),
            ("governance_salesforce_outbox", "Deals to push to Salesforce", salesforce),
        ):
            family = GaugeMetricFamily(
                name, f"{what} pending (due or backing off) and dead.", labels=["status"]
            )
            for status in ("pending", "dead"):
                family.add_metric([status], rows.get(status, 0))
            metrics.append(family)

        lag = GaugeMetricFamily(
            "governance_salesforce_watermark_age_seconds",
            "How far behind Salesforce the pull's watermark is (its lag), per sObject.",
            labels=["sobject"],
        )
        paused = GaugeMetricFamily(
            "governance_salesforce_paused", "1 while the sync is paused, per sObject.",
            labels=["sobject"],
        )  # fmt: skip
        usage = GaugeMetricFamily(
            "governance_salesforce_api_usage_ratio",
            "The share of the org's daily API requests used, as last reported by Salesforce.",
        )
        latest: tuple[datetime, float] | None = None
        for state in states:
            if state.watermark is not None:
                lag.add_metric([state.sobject], max((now - state.watermark).total_seconds(), 0))
            is_paused = state.paused_until is not None and state.paused_until > now
            paused.add_metric([state.sobject], 1 if is_paused else 0)
            if state.api_limit and state.api_used is not None and state.api_seen_at is not None:
                share = state.api_used / state.api_limit
                if latest is None or state.api_seen_at > latest[0]:
                    latest = (state.api_seen_at, share)
        if latest is not None:
            usage.add_metric([], latest[1])
        metrics += [lag, paused, usage]

        counter = CounterMetricFamily(
            "governance_salesforce_records",
            "Opportunities read from Salesforce by pulls, and pushed to it.",
            labels=["direction"],
        )
        for direction in ("pulled", "pushed"):
            counter.add_metric([direction], self._records[direction])
        metrics.append(counter)

        family = GaugeMetricFamily(
            "governance_worker_heartbeat_age_seconds",
            "Seconds since a worker loop (pull, push, approvals, webhooks) last beat, in "
            "whichever worker process runs it; a loop no worker has run yet is absent.",
            labels=["loop"],
        )
        for loop, beat in sorted(beats.items()):
            family.add_metric([loop], max((now - beat).total_seconds(), 0))
        metrics.append(family)
        return metrics


class Exposition:
    """What `/metrics` answers: this process's (or all processes') counters and the figures."""

    def __init__(self, db: Database, cache_seconds: float) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_ProcessCounters())
        self.registry.register(BusinessFigures(db, cache_seconds))

    def render(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)


def serve_apart(settings: Settings) -> None:
    """Serve /metrics on `metrics.port`, in a thread of this process (no key asked there)."""
    port = settings.metrics.port
    assert port is not None
    db = Database(settings.database_url, pool_size=1)
    exposition = Exposition(db, settings.metrics.cache_seconds)
    start_http_server(port, settings.metrics.host, registry=exposition.registry)
