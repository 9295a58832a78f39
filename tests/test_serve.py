"""What a new user does: start the service with `governance serve` and call it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def _wait_until_up(port: int) -> None:
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError("the server did not come up in 30 s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_with_bootstrap_key_answers_checks(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/serve.db"  # its own embedded database, as `make run` uses
    port = _free_port()
    key = "gov_serve-test-admin-key-0000"
    env = {
        **os.environ,
        "GOVERNANCE_DATABASE_URL": url,
        "GOVERNANCE_PORT": str(port),
        "GOVERNANCE_BOOTSTRAP_ADMIN_KEY": key,
    }
    governance = str(Path(sys.executable).with_name("governance"))
    subprocess.run([governance, "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([governance, "demo", "--if-empty"], env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [governance, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(port)
        request = urllib.request.Request(
            f"{base}/v1/checks",
            data=json.dumps({"terms": {"discount_pct": "18"}}).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        body = json.loads(urllib.request.urlopen(request, timeout=5).read())
        assert body["verdict"] == "needs_approval"
        assert body["playbook"]["key"] == "standard"
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0].decode()
    assert key not in output  # the chosen key is never printed


def test_first_serve_prints_a_generated_key_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/first.db"
    port = _free_port()
    env = {**os.environ, "GOVERNANCE_DATABASE_URL": url, "GOVERNANCE_PORT": str(port)}
    env.pop("GOVERNANCE_BOOTSTRAP_ADMIN_KEY", None)
    governance = str(Path(sys.executable).with_name("governance"))
    subprocess.run([governance, "migrate"], env=env, check=True, capture_output=True)
    outputs = []
    for _ in range(2):
        server = subprocess.Popen(
            [governance, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            _wait_until_up(port)
        finally:
            server.terminate()
        outputs.append(server.communicate(timeout=10)[0].decode())
    assert "gov_" in outputs[0]
    assert "gov_" not in outputs[1]
