"""The counters each process keeps: HTTP requests, their latency, on-demand checks.

In multiprocess mode (`PROMETHEUS_MULTIPROC_DIR` set before this is imported) each process
writes them to its own file in that directory and `/metrics` adds them up (see `metrics`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# The counters of this process (or, in multiprocess mode, of its file in the shared directory).
LOCAL = CollectorRegistry(auto_describe=True)
HTTP_REQUESTS = Counter(
    "governance_http_requests",
    "HTTP requests answered, by method, route template and status class.",
    ["method", "route", "status_class"],
    registry=LOCAL,
)
HTTP_LATENCY = Histogram(
    "governance_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template and status class.",
    ["method", "route", "status_class"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=LOCAL,
)
CHECKS = Counter(
    "governance_checks",
    "On-demand checks (POST /v1/checks) answered, by verdict.",
    ["verdict"],
    registry=LOCAL,
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request."""
    status_class = f"{status // 100}xx"
    HTTP_REQUESTS.labels(method, route, status_class).inc()
    HTTP_LATENCY.labels(method, route, status_class).observe(seconds)


def count_check(verdict: str) -> None:
    """Count one on-demand check."""
    CHECKS.labels(verdict).inc()
