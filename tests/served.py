"""A real `governance serve` process on a free port, its output captured, for tests that need
the server itself (timeouts, headers on the wire, logs)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ADMIN_KEY = "gov_served-test-admin-key-0000000"


@dataclass
class Served:
    port: int
    key: str
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self, timeout: float = 10) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> str:
        """Stop the server (gracefully) and return everything it printed."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        return self.output()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(port: int, seconds: int = 30) -> None:
    for _ in range(seconds * 10):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError(f"the server did not come up in {seconds} s")


@contextmanager
def serve(tmp_path: Path, *, workers: int = 1, **env: str) -> Iterator[Served]:
    """Migrate a fresh SQLite database, load the demo playbook and serve it (with `workers`
    processes)."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    environment.update(
        GOVERNANCE_DATABASE_URL=f"sqlite:///{tmp_path}/served.db",
        GOVERNANCE_PORT=str(port),
        GOVERNANCE_BOOTSTRAP_ADMIN_KEY=ADMIN_KEY,
        GOVERNANCE_LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
        **env,
    )
    governance = str(Path(sys.executable).with_name("governance"))
    for step in (["migrate"], ["demo", "--if-empty"]):
        subprocess.run([governance, *step], env=environment, check=True, capture_output=True)
    log = tmp_path / "served.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [governance, "serve", "--workers", str(workers)],
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    served = Served(port, ADMIN_KEY, log, process)
    try:
        wait_until_up(port, 30 * workers)  # each worker process imports the app on its own
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
