"""`make demo`: the whole Salesforce loop on one machine, in one command.

Starts the local fake org (the fake_salesforce package) with a few hundred sample opportunities,
the service (uvicorn, SQLite in a temporary folder) and `governance worker`, which pulls the
opportunities, checks them against the demo playbook and writes the governance fields back.
Then it edits one opportunity in the "org" and shows the change come back. Ctrl-C stops it all.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from fake_salesforce import FakeSalesforce, sample_opportunities

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
KEY = "gov_demo-admin-key-0000000000"
OPPORTUNITIES = int(os.environ.get("DEMO_OPPORTUNITIES", "300"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def wait_for(what: str, test: Any, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = test()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise SystemExit(f"gave up waiting for {what}")


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="governance-demo-"))
    fake = FakeSalesforce("59.0")
    fake.add_opportunities(sample_opportunities(OPPORTUNITIES, seed=7))
    print(f"fake Salesforce org at {fake.url} with {OPPORTUNITIES} opportunities")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "GOVERNANCE_DATABASE_URL": f"sqlite:///{folder}/demo.db",
        "GOVERNANCE_PORT": str(port),
        "GOVERNANCE_PUBLIC_URL": base,
        "GOVERNANCE_BOOTSTRAP_ADMIN_KEY": KEY,
        "GOVERNANCE_WORKER_INTERVAL_SECONDS": "1",
        "GOVERNANCE_SALESFORCE__LOGIN_URL": fake.url,
        "GOVERNANCE_SALESFORCE__AUTH": "client_credentials",
        "GOVERNANCE_SALESFORCE__CONSUMER_KEY": "demo-consumer-key",
        "GOVERNANCE_SALESFORCE__CONSUMER_SECRET": "demo-consumer-secret",
        "GOVERNANCE_SALESFORCE__MAPPING_FILE": str(
            ROOT / "src" / "governance" / "salesforce" / "mapping.example.yaml"
        ),
        "GOVERNANCE_SALESFORCE__PULL_INTERVAL_SECONDS": "3",
        "GOVERNANCE_SALESFORCE__OVERLAP_SECONDS": "2",
    }
    governance = str(BIN / "governance")
    for step in (["migrate"], ["demo", "--if-empty"], ["salesforce", "validate-mapping"]):
        done = subprocess.run([governance, *step], env=env, capture_output=True, text=True)
        print(f"$ governance {' '.join(step)}\n{(done.stdout + done.stderr).strip()}")
        if done.returncode:
            return done.returncode
    logs = (folder / "server.log").open("w"), (folder / "worker.log").open("w")
    server = subprocess.Popen([governance, "serve"], env=env, stdout=logs[0], stderr=logs[0])
    worker = subprocess.Popen([governance, "worker"], env=env, stdout=logs[1], stderr=logs[1])
    try:
        wait_for("the API", lambda: get(f"{base}/healthz"))
        print(f"service on {base} (admin key {KEY}); worker running; logs in {folder}")

        def synced() -> Any:
            status = get(f"{base}/v1/salesforce/status")
            pulled = any(r["kind"] == "pull" and r["status"] == "done" for r in status["runs"])
            return status if pulled and status["outbox"]["pending"] == 0 else None

        status = wait_for("the first pull and push", synced)
        run = next(r for r in status["runs"] if r["kind"] == "pull")
        print(f"\npull: {', '.join(f'{k} {v}' for k, v in run['counts'].items() if v)}")
        records = fake.records(include_deleted=False)
        written = [r for r in records if r.get("Governance_Status__c")]
        print(f"push: {len(written)} of {len(records)} opportunities carry governance fields")
        verdicts = Counter(r["Governance_Status__c"] for r in written)
        print("verdicts written back: " + ", ".join(f"{k} {v}" for k, v in verdicts.items()))
        print("\na few opportunities as reps now see them in Salesforce:")
        for record in written[:5]:
            print(
                f"  {record['Name'][:38]:<38} discount {record['Discount__c']!s:>5}%  "
                f"{record['Governance_Status__c']:<15} variance {record['Governance_Variance__c']}  "
                f"approvers: {record['Governance_Approvers__c'] or '-'}"
            )

        target = next(r for r in written if r["Governance_Status__c"] == "auto_approved")
        print(f"\nnow a rep raises the discount on {target['Name']!r} to 30% in Salesforce…")
        fake.update_opportunity(target["Id"], {"Discount__c": 30, "Contract_Months__c": 12})
        changed = wait_for(
            "the change to come back",
            lambda: (r := fake.get(target["Id"]))["Governance_Status__c"] != "auto_approved" and r,
        )
        print(
            f"…and the worker wrote back: {changed['Governance_Status__c']}, variance "
            f"{changed['Governance_Variance__c']}, approvers {changed['Governance_Approvers__c']}"
        )
        print(f"\nAPI calls the org counted: {fake.calls['total']}; Ctrl-C to stop, or wait 5 s")
        time.sleep(5)
    except KeyboardInterrupt:
        pass
    finally:
        for process in (worker, server):
            process.send_signal(signal.SIGTERM)
        for process in (worker, server):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
