"""A served process with two workers: /metrics on its own port adds up both workers' counts, and
every line it writes is a JSON object with a request id."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from tests.served import free_port, serve


def healthz_count(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "governance_http_requests_total" and sample.labels["route"] == "/healthz"
    )


def test_two_workers_counts_add_up_on_the_metrics_port(tmp_path: Path) -> None:
    metrics_port = free_port()
    with serve(tmp_path, workers=2, GOVERNANCE_METRICS__PORT=str(metrics_port)) as served:
        for _ in range(12):  # new connections: both workers answer some
            with urllib.request.urlopen(f"{served.base}/healthz", timeout=10) as response:
                assert response.headers["X-Request-ID"]
        # 13 with the one that saw the server up. A request is counted once its answer is
        # sent, so the last may land a moment after the client has it.
        counted = 0.0
        for _ in range(50):
            counted = healthz_count(metrics_port)
            if counted >= 13:
                break
            time.sleep(0.1)
        assert counted == 13
        try:
            urllib.request.urlopen(f"{served.base}/metrics", timeout=10)
            raise AssertionError("/metrics is still on the API's port")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
        output = served.stop()
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "governance.access"]
    assert len(access) >= 12
    assert all(len(line["request_id"]) == 32 for line in access)
