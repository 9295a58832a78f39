"""Measure POST /v1/checks against a running uvicorn, next to a bare echo route.

Starts one uvicorn worker on a fresh SQLite database with the demo playbook, pinned to one
core, and drives it from the other core with 32 keep-alive connections (a minimal asyncio
HTTP/1.1 client, so the load generator costs less than the server). Prints requests per second,
p50 and p99 for each route and the ratio of the two.

    python bench/http_bench.py [--seconds 10] [--concurrency 32] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ADMIN_KEY = "gov_bench-admin-key-not-secret-000000"

DEAL = {
    "attributes": {
        "region": "EMEA",
        "segment": "enterprise",
        "amount": "120000",
        "currency": "EUR",
        "value_position": "parity",
    },
    "terms": {
        "discount_pct": "22",
        "uncapped_liability": False,
        "liability_cap_multiple": "1.5",
        "payment_terms_days": 60,
        "contract_months": 24,
        "support_level": "premium",
        "price_increase_cap_pct": "5",
        "free_months": 1,
        "termination_for_convenience": False,
        "sla_uptime_pct": "99.9",
        "data_residency": "eu_or_us",
        "billing_frequency": "quarterly",
    },
}


def start_server(port: int, db_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GOVERNANCE_DATABASE_URL": db_url,
        "GOVERNANCE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "GOVERNANCE_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT / "bench"),
    }
    governance = str(Path(sys.executable).with_name("governance"))
    for step in (["migrate"], ["demo", "--if-empty"]):
        subprocess.run([governance, *step], env=env, check=True, capture_output=True)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_core = {cores[0]} if len(cores) > 1 else None

    def pin() -> None:
        if server_core:
            os.sched_setaffinity(0, server_core)

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench_app:create_bench_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ],
        env=env,
        preexec_fn=pin,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("server did not start")


def ensure_key(db_url: str) -> None:
    from governance.auth import service as auth_service
    from governance.auth.principal import SYSTEM
    from governance.db import Database

    db = Database(db_url)
    with db.unit_of_work() as session:
        auth_service.ensure_admin_key(session, SYSTEM, ADMIN_KEY)
    db.dispose()


def request_bytes(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def one_client(
    port: int, payload: bytes, stop_at: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def drive(
    port: int, path: str, body: bytes, seconds: float, concurrency: int
) -> dict[str, Any]:
    payload = request_bytes(path, body)
    warm: list[float] = []
    await asyncio.gather(
        *(
            one_client(port, payload, time.perf_counter() + 1.5, warm, [])
            for _ in range(concurrency)
        )
    )
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(
            one_client(port, payload, started + seconds, latencies, errors)
            for _ in range(concurrency)
        )
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/bench.db"
        env_url = os.environ.get("GOVERNANCE_DATABASE_URL")
        os.environ["GOVERNANCE_DATABASE_URL"] = db_url
        try:
            server = start_server(args.port, db_url)
        finally:
            if env_url is None:
                os.environ.pop("GOVERNANCE_DATABASE_URL", None)
            else:
                os.environ["GOVERNANCE_DATABASE_URL"] = env_url
        try:
            ensure_key(db_url)  # as `governance serve` does with GOVERNANCE_BOOTSTRAP_ADMIN_KEY
            cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
            if len(cores) > 1:
                os.sched_setaffinity(0, {cores[1]})
            body = json.dumps(DEAL).encode()
            check = urllib.request.Request(
                f"http://127.0.0.1:{args.port}/v1/checks",
                data=body,
                headers={
                    "Authorization": f"Bearer {ADMIN_KEY}",
                    "Content-Type": "application/json",
                },
            )
            verdict = json.loads(urllib.request.urlopen(check).read())["verdict"]
            results = {}
            for name, path in (("echo", "/bench/echo"), ("checks", "/v1/checks")):
                results[name] = asyncio.run(
                    drive(args.port, path, body, args.seconds, args.concurrency)
                )
        finally:
            server.terminate()
            server.wait(10)

    ratio = results["checks"]["rps"] / results["echo"]["rps"]
    print(
        f"POST /v1/checks over HTTP: 12-term deal ({verdict}), {args.concurrency} clients, "
        f"{args.seconds:.0f} s, one uvicorn worker pinned to one core"
    )
    print(f"{'route':<16}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for name, label in (("checks", "/v1/checks"), ("echo", "bare echo")):
        r = results[name]
        print(
            f"{label:<16}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['errors']:>8}"
        )
    print(f"ratio checks/echo: {ratio:.2f} (target ≥ 0.70)")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "ratio": ratio}, indent=2))


if __name__ == "__main__":
    main()
