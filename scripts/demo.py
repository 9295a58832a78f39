"""`make demo`: the whole Salesforce loop on one machine, in one command.

Starts the local fake org (the fake_salesforce package) with a few hundred sample opportunities,
the service (uvicorn, SQLite in a temporary folder) and `governance worker`, which pulls the
opportunities, checks them against the demo playbook and writes the governance fields back.
Then it edits one opportunity in the "org" and shows the change come back, prints what to open
and how to call the service, and keeps everything running until Ctrl-C (`--once` stops after the
round trip). Whatever way it ends (Ctrl-C, SIGTERM, an error), it stops the processes and removes
its temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from types import FrameType
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


def out_of_band(base: str, external_id: str) -> str:
    """Every term of the deal's latest check outside its band: value and who must approve."""
    checks = get(f"{base}/v1/deals/{external_id}/checks?limit=1")["items"]
    terms = checks[0]["result"]["terms"] if checks else []
    outside = [t for t in terms if t["status"] in ("exception", "blocked")]
    return ", ".join(f"{term_value(t)} ({who_approves(t)})" for t in outside)


def term_value(term: dict[str, Any]) -> str:
    if term["kind"] == "flag":
        return str(term["key"]) if term["value"] else f"no {term['key']}"
    unit = term["unit"] or ""
    return f"{term['key']} {term['value']}{unit if unit == '%' else ' ' + unit}".rstrip()


def who_approves(term: dict[str, Any]) -> str:
    return "blocked" if term["status"] == "blocked" else " or ".join(term["approvers"])


def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="stop after the round trip")
    once = parser.parse_args().once
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    folder = Path(tempfile.mkdtemp(prefix="governance-demo-"))
    processes: list[subprocess.Popen[bytes]] = []
    fake = FakeSalesforce("59.0")
    try:
        return run(folder, fake, processes, once=once)
    except KeyboardInterrupt:
        print("\nstopping…")
        return 0
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        fake.stop()
        shutil.rmtree(folder, ignore_errors=True)


def run(
    folder: Path, fake: FakeSalesforce, processes: list[subprocess.Popen[bytes]], *, once: bool
) -> int:
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
    for command, log in (("serve", "server.log"), ("worker", "worker.log")):
        with (folder / log).open("wb") as sink:
            processes.append(
                subprocess.Popen([governance, command], env=env, stdout=sink, stderr=sink)
            )
    wait_for("the API", lambda: get(f"{base}/healthz"))
    print(f"service on {base}; worker running; logs in {folder} (removed on exit)")

    def synced() -> Any:
        status = get(f"{base}/v1/salesforce/status")
        pulled = any(r["kind"] == "pull" and r["status"] == "done" for r in status["runs"])
        return status if pulled and status["outbox"]["pending"] == 0 else None

    status = wait_for("the first pull and push", synced)
    pulls = [r for r in status["runs"] if r["kind"] == "pull"]
    run = next((r for r in pulls if any(r["counts"].values())), pulls[0])
    print(f"\npull: {', '.join(f'{k} {v}' for k, v in run['counts'].items() if v)}")
    records = fake.records(include_deleted=False)
    written = [r for r in records if r.get("Governance_Status__c")]
    print(f"push: {len(written)} of {len(records)} opportunities carry governance fields")
    verdicts = Counter(r["Governance_Status__c"] for r in written)
    print("verdicts written back: " + ", ".join(f"{k} {v}" for k, v in verdicts.items()))
    print("\na few opportunities as reps now see them in Salesforce, with every term out of band:")
    samples = [r for r in written if r["Governance_Status__c"] != "auto_approved"][:4]
    samples += [r for r in written if r["Governance_Status__c"] == "auto_approved"][:1]
    for record in samples:
        print(
            f"  {record['Name'][:38]:<38} {record['Governance_Status__c']:<15} "
            f"variance {record['Governance_Variance__c']}\n"
            f"  {'':<38} out of band: {out_of_band(base, record['Id']) or 'nothing'}"
        )

    target = next((r for r in written if r["Governance_Status__c"] == "auto_approved"), None)
    if target is not None:
        print(f"\nnow a rep raises the discount on {target['Name']!r} to 30% in Salesforce…")
        fake.update_opportunity(target["Id"], {"Discount__c": 30, "Contract_Months__c": 12})
        changed = wait_for(
            "the change to come back",
            lambda: (r := fake.get(target["Id"]))["Governance_Status__c"] != "auto_approved" and r,
        )
        print(
            f"…and the worker wrote back: {changed['Governance_Status__c']}, variance "
            f"{changed['Governance_Variance__c']}, out of band: {out_of_band(base, target['Id'])}"
        )
    print(f"\nAPI calls the org counted: {fake.calls['total']}")
    print(
        f"""
open {base}/ and sign in with the admin key {KEY}
  (the inbox, the deals above, the simulator, playbooks, analytics); API docs at {base}/docs
call it:
  curl -H "Authorization: Bearer {KEY}" '{base}/v1/deals?limit=5'
  curl -H "Authorization: Bearer {KEY}" {base}/v1/salesforce/status
the fake org: {fake.url} (edit an opportunity there and the worker brings the change back)"""
    )
    if once:
        return 0
    print("\nthe service, the worker and the fake org keep running; Ctrl-C stops them")
    while all(process.poll() is None for process in processes):
        time.sleep(1)
    for process, log in zip(processes, ("server.log", "worker.log"), strict=True):
        if process.poll() is not None:
            print(f"{log} ended:\n{(folder / log).read_text(errors='replace')[-3000:]}")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
