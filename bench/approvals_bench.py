"""Approvals: time to submit a deal, the approver's queue at 10,000 pending, SQL per queue page.

    python bench/approvals_bench.py [--deals 200] [--pending 10000] [--decided 30000]
        [--queue-requests 200] [--no-sqlite] [--json out.json]
        [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/governance_bench]

Served as bench/http_bench.py serves it: one uvicorn worker pinned to one core, driven from the
other core, here by one keep-alive client sending one request at a time.

1. POST /v1/deals/{id}/submit on fresh deals whose terms open three requests (sales_director
   step 1 pending, finance step 2 waiting, legal step 1 pending): p50/p99 ms on SQLite (an empty
   database) and on PostgreSQL (the database seeded for 2, so submits land next to 10,000 pending
   requests and their history).
2. GET /v1/approvals?limit=50 with 10,000 pending requests on PostgreSQL. Template deals are
   submitted (and some decided) through the API, then copied row for row (deals, deal_checks,
   approval_requests) with SQLAlchemy Core: first a history of fully approved deals (--decided
   decided requests, dated over the past year), then the pending templates interleaved by weight
   (dated over the past week) until 10,000 requests are pending over five groups. Three callers
   page through their whole queue by cursor: a `finance` approver (about a quarter of the
   pending requests), a `finance`+`legal` approver and an admin (every group). p50/p99 for the
   first page, the deeper pages and all pages; the target is p99 < 50 ms for a page of 50.
3. SQL statements per queue page for limit 10, 50 and 200, counted in-process with a
   `before_cursor_execute` listener on the app's engine, on warm requests (the API key is cached
   after the first call): the count must not grow with the page size. Then EXPLAIN ANALYZE of
   each statement of a page, with the parameters the app sent, and the full garbage
   collections seen in-process (the app freezes its start-up objects out of the collector, as
   its lifespan does when served).

The PostgreSQL database named in --pg-url (default: $GOVERNANCE_BENCH_PG_URL, else
governance_bench on 127.0.0.1) is dropped and created afresh: use a scratch one.
Without a reachable PostgreSQL server only the SQLite part runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

# Allow running from a checkout without installing the package.
_SRC = Path(__file__).resolve().parent.parent / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

import httpx  # noqa: E402
from sqlalchemy import (  # noqa: E402
    Connection,
    Table,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import make_url  # noqa: E402

from governance.app import create_app  # noqa: E402  (also maps every model, for the Core tables)
from governance.approvals import service as approval_service  # noqa: E402
from governance.approvals.models import ApprovalRequest  # noqa: E402
from governance.auth import service as auth_service  # noqa: E402
from governance.auth.principal import SYSTEM  # noqa: E402
from governance.auth.schemas import ApiKeyCreate, Role  # noqa: E402
from governance.db import Database, utcnow  # noqa: E402
from governance.deals.models import Deal, DealCheck  # noqa: E402
from governance.settings import Settings  # noqa: E402
from http_bench import ADMIN_KEY, ensure_key, start_server  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/governance_bench"
QUEUE_TARGET_MS = 50.0

ATTRIBUTES = {"region": "EMEA", "segment": "enterprise", "amount": "240000", "currency": "EUR"}
# tests/approvals/test_story.py's deal: sales_director step 1 (pending), finance step 2
# (waiting) and legal step 1 (pending).
THREE_REQUESTS = {
    "discount_pct": 30,
    "billing_frequency": "annual_upfront",
    "contract_months": 12,
    "liability_cap_multiple": "1.5",
}
JUSTIFY = {"justifications": {"discount_pct": "Competitive bake-off against a cheaper rival"}}

# Queue templates: (name, terms, attributes, copies per cycle). Each is submitted once through
# the API; "three_sd_approved" also has its sales_director request approved, so its finance
# step 2 is pending with a decision in the deal's history.
TEMPLATES: list[tuple[str, dict[str, object], dict[str, object], int]] = [
    ("three_requests", THREE_REQUESTS, ATTRIBUTES, 3),  # sales_director + legal pending
    ("three_sd_approved", THREE_REQUESTS, ATTRIBUTES, 2),  # finance (step 2) + legal pending
    (
        "payment_and_billing",  # finance: one request covering two terms
        {"payment_terms_days": 55, "billing_frequency": "quarterly", "contract_months": 12},
        ATTRIBUTES,
        2,
    ),
    (
        "support_and_sla",  # product
        {"support_level": "platinum", "sla_uptime_pct": "99.95", "contract_months": 24},
        ATTRIBUTES,
        1,
    ),
    ("residency", {"data_residency": "customer_region"}, ATTRIBUTES, 1),  # security
    ("uncapped", {"uncapped_liability": True}, ATTRIBUTES, 1),  # legal; general_counsel waits
    (
        "free_month_short_term",  # sales_director: one request covering two terms
        {"free_months": 1, "contract_months": 6},
        ATTRIBUTES,
        1,
    ),
]


# --- plumbing ----------------------------------------------------------------------------------


def external_id(prefix: str, n: int) -> str:
    """An 18-character Opportunity Id (18-character ids are used as given)."""
    return f"006{prefix}{n:0{15 - len(prefix)}d}"


class Client:
    """One keep-alive HTTP/1.1 connection; each call returns (status, body, seconds)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(
        self,
        method: str,
        path: str,
        key: str,
        body: object | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes, float]:
        headers = {"Authorization": f"Bearer {key}", **(extra or {})}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        self.conn.request(method, path, body=payload, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, data, time.perf_counter() - started

    def json(
        self,
        method: str,
        path: str,
        key: str,
        body: object | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> Any:
        status, data, _ = self.call(method, path, key, body, extra)
        if status >= 300:
            raise SystemExit(f"{method} {path} -> {status}: {data[:500]!r}")
        return json.loads(data)

    def close(self) -> None:
        self.conn.close()


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def make_keys(db_url: str) -> dict[str, str]:
    ensure_key(db_url)  # the admin key, as `governance serve` makes it
    db = Database(db_url)
    secrets = {"admin": ADMIN_KEY}
    with db.unit_of_work() as session:
        for name, role, groups in (
            ("rita_rep", Role.rep, []),
            ("fiona_finance", Role.approver, ["finance"]),
            ("fin_legal", Role.approver, ["finance", "legal"]),
            ("sam_sales_director", Role.approver, ["sales_director"]),
        ):
            secrets[name] = auth_service.create_key(
                session,
                SYSTEM,
                ApiKeyCreate(name=name, role=role, groups=groups),
                groups=approval_service.known_groups,
            )[1]
    db.dispose()
    return secrets


def recreate_pg_database(url: str) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def pg_reachable(url: str) -> str | None:
    """None when the server answers, else why not."""
    engine = create_engine(make_url(url).set(database="postgres"))
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "skip PostgreSQL"
        return str(exc).splitlines()[0]
    finally:
        engine.dispose()
    return None


CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def serve(db_url: str, port: int) -> Any:
    """Migrate, publish the demo playbook and start uvicorn on `db_url`, as http_bench does:
    the server pinned to the first core, then this process (the client) to the second."""
    if len(CORES) > 1:
        os.sched_setaffinity(0, set(CORES))  # start_server pins to the first core it sees
    saved = os.environ.get("GOVERNANCE_DATABASE_URL")
    os.environ["GOVERNANCE_DATABASE_URL"] = db_url
    try:
        server = start_server(port, db_url)
    finally:
        if saved is None:
            os.environ.pop("GOVERNANCE_DATABASE_URL", None)
        else:
            os.environ["GOVERNANCE_DATABASE_URL"] = saved
    if len(CORES) > 1:
        os.sched_setaffinity(0, {CORES[1]})
    return server


# --- 1. submit -----------------------------------------------------------------------------------


def bench_submit(
    client: Client, keys: Mapping[str, str], prefix: str, deals: int
) -> dict[str, Any]:
    """PUT `deals` + 10 warm-up deals, then time each one's submit (one request at a time)."""
    rep = keys["rita_rep"]
    warmup = 10
    ids = [external_id(prefix, n) for n in range(deals + warmup)]
    for n, deal in enumerate(ids):
        client.json(
            "PUT",
            f"/v1/deals/{deal}",
            rep,
            {"name": f"Bench deal {n}", "attributes": ATTRIBUTES, "terms": THREE_REQUESTS},
        )
    timings = []
    for n, deal in enumerate(ids):
        status, data, seconds = client.call("POST", f"/v1/deals/{deal}/submit", rep, JUSTIFY)
        if status != 200:
            raise SystemExit(f"submit {deal} -> {status}: {data[:500]!r}")
        if n == 0:
            body = json.loads(data)
            opened = sorted((r["chain_group"], r["step"], r["status"]) for r in body["requests"])
            expected = [
                ("finance", 2, "waiting"),
                ("legal", 1, "pending"),
                ("sales_director", 1, "pending"),
            ]
            if opened != expected:
                raise SystemExit(f"submit opened {opened}, expected {expected}")
        if n >= warmup:
            timings.append(seconds)
    return percentiles(timings)


# --- 2. seeding 10,000 pending requests -----------------------------------------------------------


def submit_templates(client: Client, keys: Mapping[str, str]) -> dict[str, str]:
    """Submit each template (and the fully approved one) through the API; name -> deal id."""
    rep = keys["rita_rep"]
    out = {}
    for n, (name, terms, attributes, _weight) in enumerate([*TEMPLATES, APPROVED]):
        deal = external_id("T", n)
        client.json(
            "PUT",
            f"/v1/deals/{deal}",
            rep,
            {"name": name, "attributes": attributes, "terms": terms},
        )
        submitted = client.json(
            "POST", f"/v1/deals/{deal}/submit", rep, JUSTIFY if "discount_pct" in terms else {}
        )
        if name in ("three_sd_approved", APPROVED[0]):
            by_group = {r["group"]: r["id"] for r in submitted["requests"]}
            deciders = [("sales_director", "sam_sales_director")]
            if name == APPROVED[0]:  # legal, then finance (open once the director approved)
                deciders += [("legal", "fin_legal"), ("finance", "fin_legal")]
            for group, who in deciders:
                path = f"/v1/approvals/{by_group[group]}"
                read = client.json("GET", path, keys[who])  # decisions name the version read
                client.json(
                    "POST",
                    f"{path}/decision",
                    keys[who],
                    {"decision": "approve"},
                    {"If-Match": f'"{read["version"]}"'},
                )
        out[name] = deal
    return out


# The history: deals approved before the pending week, three decided requests each, so
# approval_requests holds decided rows older (lower ids) than the queue, as it does in production.
APPROVED: tuple[str, dict[str, object], dict[str, object], int] = (
    "approved_history",
    THREE_REQUESTS,
    ATTRIBUTES,
    0,
)


def _shifted(row: Mapping[str, Any], delta: timedelta) -> dict[str, Any]:
    """A copy of a row without its id, every timestamp moved by `delta`."""
    return {k: v + delta if isinstance(v, datetime) else v for k, v in row.items() if k != "id"}


def _insert_returning_ids(
    connection: Connection, table: Table, rows: list[dict[str, Any]]
) -> list[int]:
    result = connection.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
    )
    return [row[0] for row in result]


TABLES: tuple[Table, Table, Table] = (
    Deal.__table__,  # type: ignore[assignment]
    DealCheck.__table__,  # type: ignore[assignment]
    ApprovalRequest.__table__,  # type: ignore[assignment]
)


class Template:
    """A submitted deal read back with Core: its row, its checks' rows, its requests' rows."""

    def __init__(self, connection: Connection, name: str, external: str) -> None:
        self.name = name
        deals_t, checks_t, requests_t = TABLES
        self.deal = (
            connection.execute(select(deals_t).where(deals_t.c.external_id == external))
            .mappings()
            .one()
        )
        self.checks = (
            connection.execute(
                select(checks_t).where(checks_t.c.deal_id == self.deal["id"]).order_by("id")
            )
            .mappings()
            .all()
        )
        self.requests = (
            connection.execute(
                select(requests_t).where(requests_t.c.deal_id == self.deal["id"]).order_by("id")
            )
            .mappings()
            .all()
        )
        self.pending = sum(r["status"] == "pending" for r in self.requests)


def copy_deals(connection: Connection, copies: Sequence[tuple[Template, datetime]]) -> None:
    """Insert each template's rows again as a new deal created at the given time, in order."""
    deals_t, checks_t, requests_t = TABLES
    batch = 1000
    for start in range(0, len(copies), batch):
        chunk = [
            (k, template, when - template.deal["created_at"])
            for k, (template, when) in enumerate(copies[start : start + batch], start)
        ]
        deal_ids = _insert_returning_ids(
            connection,
            deals_t,
            [
                {
                    **_shifted(t.deal, delta),
                    "external_id": external_id("Q", k),
                    "name": f"{t.name} copy {k}",
                }
                for k, t, delta in chunk
            ],
        )
        check_rows, check_keys = [], []
        for (_k, t, delta), deal_id in zip(chunk, deal_ids, strict=True):
            for check in t.checks:
                check_rows.append({**_shifted(check, delta), "deal_id": deal_id})
                check_keys.append((deal_id, check["id"]))
        check_ids = dict(
            zip(check_keys, _insert_returning_ids(connection, checks_t, check_rows), strict=True)
        )
        connection.execute(
            insert(requests_t),
            [
                {
                    **_shifted(request, delta),
                    "deal_id": deal_id,
                    "check_id": check_ids[(deal_id, request["check_id"])],
                }
                for (_k, t, delta), deal_id in zip(chunk, deal_ids, strict=True)
                for request in t.requests
            ],
        )


def seed(db_url: str, submitted: Mapping[str, str], pending: int, decided: int) -> dict[str, Any]:
    """Copy the template deals row for row until `pending` requests are pending.

    First `decided` / 3 copies of the fully approved deal (the history, dated over the year
    before), then the pending templates interleaved by weight, so each group's requests are
    spread over the id range as in production, dated over the past week, oldest first. Audit
    entries and webhook outbox rows are not copied: the queue does not read them.
    """
    requests_t = TABLES[2]
    engine = create_engine(db_url)
    started = time.perf_counter()
    with engine.begin() as connection:
        history = Template(connection, APPROVED[0], submitted[APPROVED[0]])
        schedule = [
            template
            for name, *_rest, weight in TEMPLATES
            for template in [Template(connection, name, submitted[name])] * weight
        ]
        already = connection.execute(
            select(func.count()).select_from(requests_t).where(requests_t.c.status == "pending")
        ).scalar_one()
        queue: list[Template] = []
        count = already
        for template in itertools.cycle(schedule):
            if count >= pending:
                break
            queue.append(template)
            count += template.pending
        now = utcnow()
        week, year = timedelta(days=7), timedelta(days=365)
        archive = max(0, decided // max(1, len(history.requests)))
        copies = [
            (history, now - year + (year - week) * (k / max(1, archive))) for k in range(archive)
        ]
        copies += [(t, now - week + week * (k / len(queue))) for k, t in enumerate(queue)]
        copy_deals(connection, copies)
        by_status = dict(
            connection.execute(
                select(requests_t.c.status, func.count()).group_by(requests_t.c.status)
            )
            .tuples()
            .all()
        )
        by_group = dict(
            connection.execute(
                select(requests_t.c.group, func.count())
                .where(requests_t.c.status == "pending")
                .group_by(requests_t.c.group)
            )
            .tuples()
            .all()
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        # What autovacuum does shortly after a bulk load; the plans below assume fresh statistics.
        connection.execute(text("VACUUM ANALYZE deals, deal_checks, approval_requests"))
    engine.dispose()
    return {
        "deals_copied": len(copies),
        "pending_by_group": dict(sorted(by_group.items())),
        "by_status": dict(sorted(by_status.items())),
        "pending": by_status.get("pending", 0),
        "request_rows": sum(by_status.values()),
        "seconds": time.perf_counter() - started,
    }


# --- 2. the queue --------------------------------------------------------------------------------


def walk_queue(
    client: Client, key: str, limit: int, requests: int, first_pages: int = 50
) -> dict[str, Any]:
    """Page through the caller's whole queue by cursor, from the top again at the end, until
    `requests` pages were read and the last walk finished ("all pages"); then read the first
    page `first_pages` times more, since every approver opens their queue there."""
    client.close()  # uvicorn drops connections idle for 5 s; start on a fresh one
    client.json("GET", "/v1/approvals?limit=1", key)  # untimed: connect, cache the key

    def page(cursor: str | None) -> tuple[dict[str, Any], float]:
        path = f"/v1/approvals?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        status, data, seconds = client.call("GET", path, key)
        if status != 200:
            raise SystemExit(f"GET {path} -> {status}: {data[:500]!r}")
        return json.loads(data), seconds

    first: list[float] = []
    deeper: list[float] = []
    pages_per_walk = items_seen = walks = 0
    cursor = None
    while len(first) + len(deeper) < requests or cursor is not None:
        body, seconds = page(cursor)
        (deeper if cursor else first).append(seconds)
        if walks == 0:
            items_seen += len(body["items"])
            pages_per_walk += 1
        cursor = body["next_cursor"]
        if cursor is None:
            walks += 1
    walked = first + deeper
    first += [page(None)[1] for _ in range(first_pages)]
    return {
        "first": percentiles(first),
        "deeper": percentiles(deeper),
        "all": percentiles(walked),
        "queue_items": items_seen,
        "pages_per_walk": pages_per_walk,
        "walks": walks,
    }


# --- 3. statements per page ----------------------------------------------------------------------


def count_statements(db_url: str, keys: Mapping[str, str], limits: Sequence[int]) -> dict[str, Any]:
    """SQL statements per warm queue request, per limit, counted on the app's own engine.

    Also keeps each caller's statements for a first page of 50 (for EXPLAIN), and times a
    page of 50 in-process to split its time between SQL and Python.
    """
    app = create_app(Settings(database_url=db_url))
    # In-process (ASGI transport) runs no lifespan: freeze as the served app's lifespan does.
    gc.collect()
    gc.freeze()
    engine = app.state.db.engine
    statements: list[tuple[str, Any]] = []
    sql_seconds: list[float] = []
    began: list[float] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        statements.append((statement, parameters))
        began.append(time.perf_counter())

    def after(*_args: Any) -> None:
        sql_seconds.append(time.perf_counter() - began.pop())

    full_gcs: list[float] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        elif info["generation"] == 2:
            full_gcs.append(time.perf_counter() - gc_started[0])

    async def run() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:

            async def get(who: str, path: str) -> dict[str, Any]:
                statements.clear()
                sql_seconds.clear()
                response = await http.get(path, headers={"Authorization": f"Bearer {keys[who]}"})
                response.raise_for_status()
                page: dict[str, Any] = response.json()
                return page

            for who in keys:  # warm: each key lookup is cached from here on
                await get(who, "/v1/approvals?limit=1")
            event.listen(engine, "before_cursor_execute", before)
            event.listen(engine, "after_cursor_execute", after)
            try:
                counts: dict[int, dict[str, Any]] = {}
                for limit in limits:
                    page = await get("fiona_finance", f"/v1/approvals?limit={limit}")
                    first = list(statements)
                    cursor = page["next_cursor"]
                    deep = await get(
                        "fiona_finance", f"/v1/approvals?limit={limit}&cursor={cursor}"
                    )
                    counts[limit] = {
                        "items": len(page["items"]),
                        "next_items": len(deep["items"]),
                        "first_page": first,
                        "next_page": list(statements),
                    }
                callers = {}
                for who in keys:
                    await get(who, "/v1/approvals?limit=50")
                    callers[who] = list(statements)
                # Where a page of 50 spends its time, in-process (no HTTP, no client), and how
                # long the full (generation 2) garbage collections in between take.
                totals, sql = [], []
                gc.callbacks.append(on_gc)
                for _ in range(100):
                    started = time.perf_counter()
                    await get("fiona_finance", "/v1/approvals?limit=50")
                    totals.append(time.perf_counter() - started)
                    sql.append(sum(sql_seconds))
            finally:
                event.remove(engine, "before_cursor_execute", before)
                event.remove(engine, "after_cursor_execute", after)
                if on_gc in gc.callbacks:
                    gc.callbacks.remove(on_gc)
            return {
                "counts": counts,
                "callers": callers,
                "inprocess": percentiles(totals),
                "inprocess_sql_p50_ms": statistics.median(sql) * 1000,
                "full_gcs": len(full_gcs),
                "full_gc_max_ms": max(full_gcs, default=0.0) * 1000,
                "gc_tracked_objects": len(gc.get_objects()),
            }

    try:
        return asyncio.run(run())
    finally:
        app.state.db.dispose()


def explain(db_url: str, captured: Sequence[tuple[str, Any]]) -> list[dict[str, Any]]:
    """EXPLAIN ANALYZE of each captured statement, with the parameters the app sent."""
    engine = create_engine(db_url)
    out = []
    with engine.connect() as connection:
        for statement, parameters in captured:
            plan = [
                row[0]
                for row in connection.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                )
            ]
            execution = next(line for line in plan if line.startswith("Execution Time"))
            out.append(
                {
                    "statement": " ".join(statement.split()),
                    "plan": plan,
                    "execution_ms": float(execution.split(": ")[1].split()[0]),
                }
            )
    engine.dispose()
    return out


# --- main ------------------------------------------------------------------------------------------


def run_sqlite(port: int, deals: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/bench.db"
        server = serve(db_url, port)
        try:
            keys = make_keys(db_url)
            client = Client(port)
            try:
                return bench_submit(client, keys, "S", deals)
            finally:
                client.close()
        finally:
            server.terminate()
            server.wait(10)


def run_postgres(args: argparse.Namespace) -> dict[str, Any]:
    db_url = args.pg_url
    recreate_pg_database(db_url)
    server = serve(db_url, args.port)
    out: dict[str, Any] = {}
    try:
        keys = make_keys(db_url)
        client = Client(args.port)
        try:
            submitted = submit_templates(client, keys)
            out["seed"] = seed(db_url, submitted, args.pending, args.decided)
            out["queue"] = {
                who: walk_queue(client, keys[who], 50, args.queue_requests // share)
                for who, share in (("fiona_finance", 1), ("fin_legal", 2), ("admin", 2))
            }
            callers = {who: keys[who] for who in QUEUE_CALLERS}
            stm = count_statements(db_url, callers, (10, 50, 200))
            # Last, so the queue above holds exactly the seeded requests: submits into a
            # database that already holds the history and the 10,000 pending requests.
            client.close()
            out["submit"] = bench_submit(client, keys, "P", args.deals)
        finally:
            client.close()
    finally:
        server.terminate()
        server.wait(10)
    out["statements"] = stm
    out["explain"] = {
        "finance_first_page": explain(db_url, stm["counts"][50]["first_page"]),
        "queue_statement": {
            who: explain(db_url, [s for s in captured if " JOIN deals " in s[0]])[0]
            for who, captured in stm["callers"].items()
        },
    }
    for counts in stm["counts"].values():  # plain text for --json
        for part in ("first_page", "next_page"):
            counts[part] = [" ".join(sql.split()) for sql, _ in counts[part]]
    stm["callers"] = {who: len(captured) for who, captured in stm["callers"].items()}
    return out


QUEUE_CALLERS = {
    "fiona_finance": "finance approver",
    "fin_legal": "finance+legal approver",
    "admin": "admin (every group)",
}


def report(results: Mapping[str, Any], args: argparse.Namespace) -> None:
    print(
        "approvals bench: one uvicorn worker pinned to one core, one keep-alive client on the "
        "other core, one request at a time"
        + " (the app freezes its start-up objects out of the garbage collector)"
    )
    print()
    print(
        f"1. POST /v1/deals/{{id}}/submit: {args.deals} fresh deals (+10 warm-up), 3 requests "
        "each (SQLite: empty database; PostgreSQL: after seeding 2)"
    )
    print(f"{'database':<12}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name in ("postgresql", "sqlite"):
        if name in results:
            r = results[name]["submit"] if name == "postgresql" else results[name]
            print(f"{name:<12}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['max_ms']:>10.2f}")
    pg = results.get("postgresql")
    if pg is None:
        print()
        print(f"PostgreSQL skipped: {results.get('postgresql_skipped')}")
        return
    seed = pg["seed"]
    print()
    print(
        f"2. GET /v1/approvals?limit=50 on PostgreSQL: {seed['pending']} pending requests "
        f"(seeded in {seed['seconds']:.1f} s)"
    )
    print("   requests by status: " + ", ".join(f"{k} {n}" for k, n in seed["by_status"].items()))
    print(
        "   pending by group:   "
        + ", ".join(f"{k} {n}" for k, n in seed["pending_by_group"].items())
    )
    print(f"{'caller / pages':<34}{'n':>5}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for who, label in QUEUE_CALLERS.items():
        q = pg["queue"][who]
        print(
            f"{label}: queue of {q['queue_items']}, {q['pages_per_walk']} pages, {q['walks']} walk(s)"
        )
        for part, name in (
            ("first", "first page"),
            ("deeper", "deeper pages"),
            ("all", "all pages (the walks)"),
        ):
            r = q[part]
            print(
                f"  {name:<32}{r['n']:>5}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['max_ms']:>10.2f}"
            )
    finance = pg["queue"]["fiona_finance"]
    for part, name in (("all", "walking the queue"), ("first", "first page")):
        p99 = finance[part]["p99_ms"]
        print(
            f"target p99 < {QUEUE_TARGET_MS:.0f} ms, finance approver, {name}: "
            f"{'met' if p99 < QUEUE_TARGET_MS else 'NOT met'} ({p99:.2f} ms)"
        )
    stm = pg["statements"]
    inproc = stm["inprocess"]
    print(
        f"in-process (ASGI, no HTTP), finance first page x{inproc['n']}: p50 "
        f"{inproc['p50_ms']:.2f} ms (SQL execute + fetch {stm['inprocess_sql_p50_ms']:.2f} ms), "
        f"p99 {inproc['p99_ms']:.2f} ms"
    )
    print(
        f"full garbage collections meanwhile: {stm['full_gcs']}, longest "
        f"{stm['full_gc_max_ms']:.2f} ms ({stm['gc_tracked_objects']} objects tracked"
        ", start-up objects frozen)"
    )
    print()
    print("3. SQL statements per warm GET /v1/approvals (finance approver, PostgreSQL)")
    print(f"{'limit':>6}{'items':>7}{'first page':>12}{'next page':>11}")
    for limit, c in stm["counts"].items():
        print(f"{limit:>6}{c['items']:>7}{len(c['first_page']):>12}{len(c['next_page']):>11}")
    sizes = {len(c[p]) for c in stm["counts"].values() for p in ("first_page", "next_page")}
    print("constant in page size: " + ("yes" if len(sizes) == 1 else "NO"))
    print()
    print("EXPLAIN ANALYZE, finance approver's first page of 50, each statement:")
    for e in pg["explain"]["finance_first_page"]:
        print(f"  {e['execution_ms']:>8.3f} ms  {e['statement'][:90]}…")
    print("EXPLAIN ANALYZE of the queue statement, first page of 50, per caller:")
    for who, e in pg["explain"]["queue_statement"].items():
        print(f"  {QUEUE_CALLERS[who]}: {e['execution_ms']:.3f} ms")
        for line in e["plan"]:
            if "Scan" in line or "Removed by Filter" in line or "Sort Key" in line:
                print(f"    {line.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=200)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument(
        "--decided", type=int, default=30_000, help="decided requests of older deals (history)"
    )
    parser.add_argument("--queue-requests", type=int, default=200)
    parser.add_argument(
        "--pg-url", default=os.environ.get("GOVERNANCE_BENCH_PG_URL", DEFAULT_PG_URL)
    )
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--port", type=int, default=18766)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    results: dict[str, Any] = {}
    if not args.no_sqlite:
        results["sqlite"] = run_sqlite(args.port, args.deals)
    why_not = pg_reachable(args.pg_url)
    if why_not is None:
        results["postgresql"] = run_postgres(args)
    else:
        results["postgresql_skipped"] = why_not
    report(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
