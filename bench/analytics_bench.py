"""Analytics over a generated history on PostgreSQL: p50/p90 ms per report and query shape.

    python bench/analytics_bench.py [--deals 1000000] [--seed 7] [--repeat 7] [--reuse]
        [--json out.json]
        [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/governance_analytics_bench]

1. The database named in --pg-url (default: $GOVERNANCE_ANALYTICS_BENCH_PG_URL, else
   governance_analytics_bench on 127.0.0.1) is dropped, migrated and filled by
   `governance demo --deals N --seed S --as-of 2026-11-01` (the same history every run), then
   VACUUM ANALYZE. With --reuse, a database that already holds exactly N deals is kept as it is.
   The generation time and the size of each analytics table are printed.
2. Every report is asked for through the app in-process (httpx over ASGI: routing, validation,
   SQL and serialisation, no network), with an admin key, in four shapes: no filter; grouped by
   region; grouped by team and style (the rep-profile join); and one quarter of one region.
   Each shape runs once to warm up, then --repeat times: p50 and p90 in ms, and the rows
   returned. The CSV form is timed for the unfiltered shape.
The target (issue 5) is every report under 1 s at p50 over 1,000,000 deals.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, text

from governance import migrate
from governance.app import create_app
from governance.auth import service as auth_service
from governance.auth.principal import SYSTEM
from governance.db import Database
from governance.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BENCH_KEY = "gov_analytics-bench-admin-key-0123456789"
REPORTS = (
    "variance", "verdicts", "concessions", "approvals", "outcomes", "versions", "reviews",
    "consistency",
)  # fmt: skip
Param = tuple[str, str | int | float | bool | None]
SHAPES: dict[str, list[Param]] = {
    "all": [],
    "by region": [("group_by", "region")],
    "by team, style": [("group_by", "team"), ("group_by", "style")],
    "EMEA, one quarter": [("region", "EMEA"), ("from", "2026-07-01"), ("to", "2026-09-30")],
}
TABLES = (
    "deals", "deal_term_checks", "deal_outcomes", "deal_outcome_terms", "approval_requests",
    "deal_reviews", "deal_checks",
)  # fmt: skip


def _deal_count(url: str) -> int | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM deals")).scalar_one())
    except Exception:  # no database or no schema yet
        return None
    finally:
        engine.dispose()


def prepare(url: str, deals: int, seed: int, reuse: bool) -> dict[str, Any]:
    """A database with the generated history; returns how long generation took."""
    if reuse and _deal_count(url) == deals:
        print(f"reusing {make_url(url).database} with {deals:,} deals", flush=True)
        return {"generated": False}
    name = make_url(url).database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    migrate.upgrade(url)
    started = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).with_name("governance")), "demo", "--deals", str(deals),
         "--seed", str(seed), "--as-of", "2026-11-01"],
        check=True, env={**os.environ, "GOVERNANCE_DATABASE_URL": url}, cwd=ROOT,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    print(f"generated {deals:,} deals in {seconds:.0f} s ({deals / seconds:,.0f}/s)", flush=True)
    return {"generated": True, "seconds": round(seconds, 1)}


def sizes(url: str) -> dict[str, dict[str, Any]]:
    engine = create_engine(url)
    out = {}
    with engine.connect() as connection:
        for table in TABLES:
            rows = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            size = connection.execute(
                text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": table}
            ).scalar_one()
            out[table] = {"rows": int(rows), "mb": round(size / 2**20)}
    engine.dispose()
    return out


async def measure(url: str, repeat: int) -> list[dict[str, Any]]:
    db = Database(url)
    with db.unit_of_work() as session:
        auth_service.ensure_admin_key(session, SYSTEM, BENCH_KEY)
    db.dispose()
    app = create_app(Settings(database_url=url))
    headers = {"Authorization": f"Bearer {BENCH_KEY}"}
    results = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", timeout=120
    ) as client:
        for report in REPORTS:
            shapes = dict(SHAPES)
            if report in ("versions", "consistency"):  # no grouping there
                shapes = {k: v for k, v in SHAPES.items() if not any(p == "group_by" for p, _ in v)}
            for shape, params in [*shapes.items(), ("all, as CSV", [])]:
                extra = {"Accept": "text/csv"} if shape.endswith("CSV") else {}
                path = f"/v1/analytics/{report}"
                timings = []
                body = None
                for attempt in range(repeat + 1):
                    started = time.perf_counter()
                    response = await client.get(path, params=params, headers={**headers, **extra})
                    elapsed = (time.perf_counter() - started) * 1000
                    if response.status_code != 200:
                        raise SystemExit(f"{path} {params}: {response.status_code} {response.text}")
                    if attempt:
                        timings.append(elapsed)
                    body = response
                assert body is not None
                rows = len(body.text.splitlines()) - 1 if extra else len(body.json()["rows"])
                timings.sort()
                result = {
                    "report": report,
                    "shape": shape,
                    "p50_ms": round(statistics.median(timings), 1),
                    "p90_ms": round(timings[min(len(timings) - 1, int(0.9 * len(timings)))], 1),
                    "rows": rows,
                }
                results.append(result)
                print(
                    f"  {report:12} {shape:18} p50 {result['p50_ms']:8.1f} ms  "
                    f"p90 {result['p90_ms']:8.1f} ms  rows {rows}",
                    flush=True,
                )
    app.state.db.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "GOVERNANCE_ANALYTICS_BENCH_PG_URL",
            "postgresql+psycopg://postgres@127.0.0.1:5432/governance_analytics_bench",
        ),
    )
    args = parser.parse_args()
    print(f"analytics over {args.deals:,} generated deals on PostgreSQL", flush=True)
    generation = prepare(args.pg_url, args.deals, args.seed, args.reuse)
    tables = sizes(args.pg_url)
    for table, figures in tables.items():
        print(f"  {table:20} {figures['rows']:>12,} rows {figures['mb']:>8,} MB", flush=True)
    results = asyncio.run(measure(args.pg_url, args.repeat))
    slowest = max(results, key=lambda r: r["p50_ms"])
    over = [r for r in results if r["p50_ms"] >= 1000]
    print(
        f"slowest p50: {slowest['report']} ({slowest['shape']}) {slowest['p50_ms']:.0f} ms; "
        f"{len(over)} of {len(results)} at or over 1 s",
        flush=True,
    )
    if args.json:
        args.json.write_text(
            json.dumps({"generation": generation, "tables": tables, "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
