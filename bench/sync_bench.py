"""Salesforce sync: a full-load pull of N opportunities and a push of N updates against the fake.

    python bench/sync_bench.py [--sizes 10000,100000] [--pg-sizes 10000,100000]
        [--no-sqlite] [--no-postgres] [--push-concurrency 1]
        [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/governance_sync_bench]
        [--json out.json]

For each database (SQLite in a temporary file; PostgreSQL too when reachable) and each N:

1. a fresh fake org (`python -m fake_salesforce --opportunities N`) in its own process,
   so its memory (it holds every record) is not counted; its `GET /_fake/stats` counters
   cross-check the API calls the service reports;
2. a fresh database: migrated, with the demo playbook published (`setup`, in a child process);
3. the floor: the same query pages fetched from the same fake and parsed (JSON, then each
   record through the mapping) with no database work (`floor`, in a fresh child process);
   then `inbound.pull`: the first run, so the full load (`pull`, in a fresh child process),
   with the Bulk threshold off so that both read the same REST pages;
4. the push's floor: the same N Ids sent in the same Collections calls (200 a call, the same
   number at once) with no database work (`push_floor`); then `outbound.push`: drains the
   outbox the pull filled, one row per deal, so N updates in sObject Collections calls of 200
   (`push`, in a fresh child process).

It prints, per database, N and phase: records per second against the targets (pull at least
1,500/s, push at least 5,000/s), each one's ratio to its floor; API calls (the service's report,
the fake's counters) against the target of ceil(N/2000)+2 for the pull and ceil(N/200) for the
push; and peak memory. Then whether each phase's peak at the largest N is within 1.5x its peak
at the smallest N.

Peak memory is the phase's child process's peak resident set (`VmHWM` in /proc/self/status,
which a fresh process starts from zero; `ru_maxrss` elsewhere). It is what the service costs
the machine, interpreter, imports and caches included; and a phase that kept its records would
show there whatever it kept them in (ORM objects, JSON, C buffers of the database driver),
which tracemalloc, counting Python allocations only, would not all see. The resident set just
before the phase starts (imports done, settings, client logged in) is printed as `base`.

The PostgreSQL database named in --pg-url (default: $GOVERNANCE_SYNC_BENCH_PG_URL, else
governance_sync_bench on 127.0.0.1) is dropped and created afresh: use a scratch one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/governance_sync_bench"
FLAT_RATIO = 1.5
PAGE = 2000  # records per query page (Salesforce's and the fake's)
COLLECTION = 200  # records per sObject Collections call
RATE_TARGETS = {"pull": 1500, "push": 5000}  # records per second (issue 14)

# tests/salesforce/conftest.py's mapping, for the fake org's default custom fields.
MAPPING: dict[str, Any] = {
    "sobject": "Opportunity",
    "filter": "Amount > 0",
    "submit_field": "Submit_For_Approval__c",
    "terms": {
        "discount_pct": {"field": "Discount__c"},
        "payment_terms_days": {"field": "Payment_Terms_Days__c"},
        "contract_months": {"field": "Contract_Months__c"},
        "liability_cap_multiple": {"field": "Liability_Cap_Multiple__c"},
        "uncapped_liability": {"field": "Uncapped_Liability__c"},
        "support_level": {
            "field": "Support_Level__c",
            "values": {"Standard": "standard", "Premium": "premium", "Platinum": "platinum"},
        },
    },
    "attributes": {
        "name": {"field": "Name"},
        "amount": {"field": "Amount"},
        "stage": {"field": "StageName"},
        "close_date": {"field": "CloseDate"},
        "region": {
            "field": "Account.BillingCountry",
            "values": {"France": "EMEA", "Germany": "EMEA", "United States": "NA"},
            "default": "OTHER",
        },
    },
    "outputs": {
        "status": "Governance_Status__c",
        "variance": "Governance_Variance__c",
        "approvers": "Governance_Approvers__c",
        "approval_status": "Governance_Approval_Status__c",
        "check_url": "Governance_Check_URL__c",
        "outcome": "Governance_Outcome__c",
    },
}


# --- the phases, each run in a fresh child process ---------------------------------------------


def memory_kib() -> dict[str, int]:
    """This process's resident set now and at its peak, in KiB."""
    status: dict[str, int] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                status[name] = int(value.split()[0])
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":
        peak //= 1024  # bytes there
    return {"rss": status.get("VmRSS", 0), "peak": status.get("VmHWM", peak), "maxrss": peak}


def phase_setup(db_url: str) -> dict[str, Any]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from governance import migrate
    from governance.auth.principal import SYSTEM
    from governance.db import Database
    from governance.playbooks import formats, publication

    if db_url.startswith("postgresql"):
        target = make_url(db_url)
        if target.database in (None, "", "postgres", "test", "template0", "template1"):
            raise SystemExit(f"refusing to recreate database {target.database!r}")
        admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{target.database}"'))
        admin.dispose()
    migrate.upgrade(db_url)
    db = Database(db_url)
    try:
        text_ = (ROOT / "src" / "governance" / "demo" / "standard.yaml").read_text(encoding="utf-8")
        doc = formats.parse_text(text_, "application/yaml")
        with db.unit_of_work() as session:
            version, outcome = publication.import_document(session, SYSTEM, doc, publish_now=True)
            published = f"{doc.key} v{version.number} {outcome} ({version.status})"
    finally:
        db.dispose()
    return {"playbook": published}


def _sync_parts(db_url: str, fake_url: str, mapping_file: Path) -> tuple[Any, ...]:
    from pydantic import SecretStr

    from governance.db import Database
    from governance.playbooks.registry import PlaybookRegistry
    from governance.salesforce.client import SimpleSalesforceClient
    from governance.salesforce.mapping import load
    from governance.settings import SalesforceSettings, Settings

    settings = Settings(
        database_url=db_url,
        salesforce=SalesforceSettings(
            login_url=fake_url,
            auth="client_credentials",
            consumer_key=SecretStr("bench-consumer-key"),
            consumer_secret=SecretStr("bench-consumer-secret"),
            timeout_seconds=60.0,
            mapping_file=mapping_file,
            bulk_threshold=0,  # REST pages, as the floor reads them
            push_concurrency=int(os.environ.get("SYNC_BENCH_PUSH_CONCURRENCY", "1")),
        ),
    )
    db = Database(db_url)
    registry = PlaybookRegistry(db, settings.playbook_cache_seconds)
    client = SimpleSalesforceClient(settings.salesforce)
    return settings, db, registry, client, load(mapping_file)


def phase_floor(db_url: str, fake_url: str, mapping_file: Path) -> dict[str, Any]:
    """The same pages from the same fake, fetched and parsed (JSON, then each record as the
    pull maps it) with no database work: what the pull could not go faster than."""
    from governance.salesforce import inbound

    _settings, db, _registry, client, mapping = _sync_parts(db_url, fake_url, mapping_file)
    db.dispose()
    soql = (
        f"SELECT {', '.join(mapping.source_fields())} FROM {mapping.sobject}"
        + (f" WHERE ({mapping.filter})" if mapping.filter else "")
        + " ORDER BY SystemModstamp, Id"
    )
    base = memory_kib()
    started = time.perf_counter()
    page = client.query(soql, include_deleted=True)
    records, calls = 0, 1
    while True:
        for record in page.records:
            inbound.deal_payload(mapping, record)
            records += 1
        if page.next_url is None:
            break
        page = client.query_more(page.next_url)
        calls += 1
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "records": records,
        "api_calls": calls,
        "base_kib": base["rss"],
        **{f"{k}_kib": v for k, v in memory_kib().items()},
    }


def phase_pull(db_url: str, fake_url: str, mapping_file: Path) -> dict[str, Any]:
    from governance.salesforce import inbound

    settings, db, registry, client, mapping = _sync_parts(db_url, fake_url, mapping_file)
    base = memory_kib()
    started = time.perf_counter()
    report, run = inbound.pull(db, client, registry, settings, mapping)
    seconds = time.perf_counter() - started
    db.dispose()
    return {
        "seconds": seconds,
        "records": report.read,
        "api_calls": report.api_calls,
        "counts": report.counts(),
        "status": run.status,
        "problems": report.problems[:5],
        "base_kib": base["rss"],
        **{f"{k}_kib": v for k, v in memory_kib().items()},
    }


def phase_push(db_url: str, fake_url: str, mapping_file: Path) -> dict[str, Any]:
    from governance.salesforce import outbound

    settings, db, _registry, client, mapping = _sync_parts(db_url, fake_url, mapping_file)
    base = memory_kib()
    started = time.perf_counter()
    report = outbound.push(db, client, mapping, settings.salesforce, settings.public_url)
    seconds = time.perf_counter() - started
    db.dispose()
    return {
        "seconds": seconds,
        "records": report.pushed,
        "api_calls": report.api_calls,
        "counts": {
            "pushed": report.pushed,
            "failed": report.failed,
            "dead": report.dead,
            "skipped": report.skipped,
        },
        "paused": report.paused,
        "base_kib": base["rss"],
        **{f"{k}_kib": v for k, v in memory_kib().items()},
    }


def phase_push_floor(db_url: str, fake_url: str, mapping_file: Path) -> dict[str, Any]:
    """The push's Collections calls (N records, 200 a call, `push_concurrency` at once) with
    values of the same shape, and no database work: what the push could not go faster than."""
    from decimal import Decimal

    from sqlalchemy import select

    from governance.deals.models import Deal
    from governance.salesforce import outbound
    from governance.salesforce.models import OutboxItem

    settings, db, _registry, client, mapping = _sync_parts(db_url, fake_url, mapping_file)
    with db.unit_of_work() as session:  # untimed: the Ids the push will write to
        external_ids = list(
            session.scalars(select(Deal.external_id).where(Deal.id.in_(select(OutboxItem.deal_id))))
        )
    db.dispose()
    sample: dict[str, Any] = {  # what `values_for` writes for a typical open deal
        "status": "needs_approval",
        "variance": Decimal("0.125"),
        "approvers": "finance, legal",
        "approval_status": "draft",
        "outcome": None,
        "concession_cost": None,
    }
    url = settings.public_url.rstrip("/")
    records = [
        {
            "id": e,
            **{
                field: f"{url}/v1/deals/{e}/checks" if key == "check_url" else sample[key]
                for key, field in mapping.outputs.items()
            },
        }
        for e in external_ids
    ]
    batches: list[outbound.Batch] = [
        [(0, 0, None, r) for r in records[i : i + COLLECTION]]
        for i in range(0, len(records), COLLECTION)
    ]
    concurrency = settings.salesforce.push_concurrency
    base = memory_kib()
    started = time.perf_counter()
    calls = 0
    for i in range(0, len(batches), concurrency):
        answers = outbound._send(client, mapping.sobject, batches[i : i + concurrency], concurrency)
        calls += len(answers)
        assert all(isinstance(a, list) and all(r.success for r in a) for a in answers), answers
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "records": len(records),
        "api_calls": calls,
        "base_kib": base["rss"],
        **{f"{k}_kib": v for k, v in memory_kib().items()},
    }


def run_phase(args: argparse.Namespace) -> None:
    if args.phase == "setup":
        out = phase_setup(args.db_url)
    elif args.phase == "pull":
        out = phase_pull(args.db_url, args.fake_url, args.mapping)
    elif args.phase == "floor":
        out = phase_floor(args.db_url, args.fake_url, args.mapping)
    elif args.phase == "push_floor":
        out = phase_push_floor(args.db_url, args.fake_url, args.mapping)
    else:
        out = phase_push(args.db_url, args.fake_url, args.mapping)
    print("RESULT=" + json.dumps(out, default=str), flush=True)


# --- the driver (stays small: no governance imports) ---------------------------------------------


def child(phase: str, db_url: str, fake_url: str = "", mapping: Path | None = None) -> Any:
    command = [sys.executable, __file__, "--phase", phase, "--db-url", db_url]
    if fake_url:
        command += ["--fake-url", fake_url, "--mapping", str(mapping)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT="):
            return json.loads(line[len("RESULT=") :])
    raise SystemExit(f"{phase} failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-4000:]}")


class Fake:
    """`python -m fake_salesforce` in its own process, with N sample opportunities."""

    def __init__(self, opportunities: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fake_salesforce", "--opportunities", str(opportunities)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("FAKE_SALESFORCE_URL="):
            self.stop()
            raise SystemExit(f"the fake org did not start: {line!r}")
        self.url = line.strip().split("=", 1)[1]

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_fake/stats", timeout=30) as response:
            data: dict[str, Any] = json.load(response)
        return data

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def calls_between(before: Mapping[str, Any], after: Mapping[str, Any], kinds: Sequence[str]) -> int:
    return sum(after["calls"].get(k, 0) - before["calls"].get(k, 0) for k in kinds)


def run_size(db_url: str, n: int, mapping_file: Path) -> dict[str, Any]:
    started = time.perf_counter()
    fake = Fake(n)
    try:
        loaded = time.perf_counter() - started
        out: dict[str, Any] = {"fake_start_s": loaded, "setup": child("setup", db_url)}
        for phase, kinds, target in (
            ("floor", ("query", "query_more"), math.ceil(n / PAGE) + 2),
            ("pull", ("query", "query_more"), math.ceil(n / PAGE) + 2),
            ("push_floor", ("collections",), math.ceil(n / COLLECTION)),
            ("push", ("collections",), math.ceil(n / COLLECTION)),
        ):
            before = fake.stats()
            result = child(phase, db_url, fake.url, mapping_file)
            after = fake.stats()
            result["fake_calls"] = calls_between(before, after, kinds)
            result["org_calls"] = after["api_usage"] - before["api_usage"]
            result["target_calls"] = target
            out[phase] = result
            print(
                f"  {n:>7} {phase}: {result['records']} records in {result['seconds']:.1f} s, "
                f"{result['api_calls']} calls, peak {result['peak_kib'] / 1024:.0f} MiB",
                file=sys.stderr,
                flush=True,
            )
        return out
    finally:
        fake.stop()


def pg_reachable(url: str) -> str | None:
    """None when the server answers, else why not (checked in a child: no driver imports here)."""
    probe = (
        "import sys\nfrom sqlalchemy import create_engine, text\n"
        "from sqlalchemy.engine import make_url\n"
        "e = create_engine(make_url(sys.argv[1]).set(database='postgres'))\n"
        "with e.connect() as c: c.execute(text('SELECT 1'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, url], capture_output=True, text=True, check=False
    )
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {done.returncode}"


def report(results: Mapping[str, Any]) -> bool:
    """Print the table and the flatness verdicts; True when every target is met."""
    print(
        "sync bench: inbound.pull (full load) and outbound.push (drains the outbox) against the "
        "fake org in its own process; each phase in a fresh child process"
    )
    print(
        "floor: the same pages fetched from the same fake and parsed (JSON, the mapping), no "
        "database work; push_floor: the push's Collections calls (same records, same concurrency) "
        "with no database work; /floor: the pull's rate over floor's, the push's over push_floor's"
    )
    print(
        "calls: the service's report; org: API calls the fake org counted against its quota; "
        "peak: the phase process's peak RSS (VmHWM); base: its RSS when the phase began"
    )
    ok = True
    for name, by_size in results.items():
        if isinstance(by_size, str):
            print(f"\n{name}: skipped ({by_size})")
            continue
        sizes = sorted(by_size)
        print(f"\n{name}")
        print(
            f"{'N':>8} {'phase':<10} {'seconds':>8} {'records/s':>10} {'target':>7} "
            f"{'/floor':>6} {'calls':>6} {'org':>5} {'target':>7}  {'base MiB':>8} {'peak MiB':>8}"
        )
        for n in sizes:
            floors = {
                phase: by_size[n][floor]["records"] / by_size[n][floor]["seconds"]
                for phase, floor in (("pull", "floor"), ("push", "push_floor"))
            }
            for phase in ("floor", "pull", "push_floor", "push"):
                r = by_size[n][phase]
                rate = r["records"] / r["seconds"]
                met = r["api_calls"] <= r["target_calls"] and r["org_calls"] == r["api_calls"]
                fast = rate >= RATE_TARGETS.get(phase, 0)
                ok &= met and fast and r["records"] == n
                wanted = f"≥{RATE_TARGETS[phase]}" if phase in RATE_TARGETS else ""
                ratio = f"{rate / floors[phase]:.2f}" if phase in floors else ""
                print(
                    f"{n:>8} {phase:<10} {r['seconds']:>8.1f} {rate:>10.0f} {wanted:>7}"
                    f"{' ' if fast else '!'}{ratio:>6} "
                    f"{r['api_calls']:>6} {r['org_calls']:>5} {'≤' + str(r['target_calls']):>7}"
                    f"{' ' if met else '!'} {r['base_kib'] / 1024:>8.1f} "
                    f"{r['peak_kib'] / 1024:>8.1f}"
                )
        for n in sizes:
            pull, push = by_size[n]["pull"], by_size[n]["push"]
            counts = ", ".join(f"{k} {v}" for k, v in pull["counts"].items() if v)
            print(f"  pull {n}: {counts}")
            if pull["problems"]:
                print(f"    first problems: {pull['problems']}")
            counts = ", ".join(f"{k} {v}" for k, v in push["counts"].items())
            print(
                f"  push {n}: {counts}" + (f"; paused: {push['paused']}" if push["paused"] else "")
            )
        small, large = sizes[0], sizes[-1]
        if small == large:
            print(f"memory flat: not measured on {name} (one size; --pg-sizes 10000,100000)")
            continue
        for phase in ("pull", "push"):
            lo, hi = by_size[small][phase], by_size[large][phase]
            a, b = lo["peak_kib"], hi["peak_kib"]
            flat = b <= FLAT_RATIO * a
            ok &= flat
            print(
                f"memory flat, {phase}: peak at {large} = {b / 1024:.1f} MiB, "
                f"{b / a:.2f}x the peak at {small} ({a / 1024:.1f} MiB): "
                + ("yes" if flat else "NO")
                + f" (target ≤ {FLAT_RATIO}x); above base: "
                f"{(a - lo['base_kib']) / 1024:.1f} → {(b - hi['base_kib']) / 1024:.1f} MiB"
            )
    return ok


def sizes_of(text: str) -> list[int]:
    return sorted({int(s.replace("_", "")) for s in text.split(",") if s.strip()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="N on SQLite")
    parser.add_argument("--pg-sizes", default="10000,100000", help="N on PostgreSQL")
    parser.add_argument(
        "--pg-url", default=os.environ.get("GOVERNANCE_SYNC_BENCH_PG_URL", DEFAULT_PG_URL)
    )
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--push-concurrency", type=int, default=1, help="Collections calls the push runs at once"
    )
    parser.add_argument(
        "--phase", choices=("setup", "floor", "pull", "push_floor", "push"), help=argparse.SUPPRESS
    )
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    parser.add_argument("--fake-url", help=argparse.SUPPRESS)
    parser.add_argument("--mapping", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        run_phase(args)
        return

    os.environ["SYNC_BENCH_PUSH_CONCURRENCY"] = str(args.push_concurrency)  # the children's
    started = time.perf_counter()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        mapping_file = Path(tmp) / "mapping.json"  # JSON is YAML
        mapping_file.write_text(json.dumps(MAPPING), encoding="utf-8")
        databases: list[tuple[str, list[int], Any]] = []
        if not args.no_sqlite:
            databases.append(
                ("sqlite", sizes_of(args.sizes), lambda n: f"sqlite:///{tmp}/sync_{n}.db")
            )
        if not args.no_postgres:
            why_not = pg_reachable(args.pg_url)
            if why_not is None:
                databases.append(("postgresql", sizes_of(args.pg_sizes), lambda n: args.pg_url))
            else:
                results["postgresql"] = why_not
        for name, sizes, url_for in databases:
            results[name] = {}
            for n in sizes:
                print(f"{name}, N = {n} …", file=sys.stderr, flush=True)
                results[name][n] = run_size(url_for(n), n, mapping_file)
    ok = report(results)
    print(f"\nwhole bench: {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    if not ok:
        print("some targets NOT met (marked !)")


if __name__ == "__main__":
    main()
