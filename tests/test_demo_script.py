"""`make demo` (scripts/demo.py): the loop runs, its sample lines name every term out of band, it
keeps running and says how to call the service, and a SIGTERM stops it leaving nothing in the
temporary folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "demo.py"
RUNNING = "keep running; Ctrl-C stops them"


def test_the_demo_runs_until_stopped_and_leaves_nothing_behind(tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    output = tmp_path / "demo.out"
    environment = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    environment.update(TMPDIR=str(temporary), DEMO_OPPORTUNITIES="20", PYTHONUNBUFFERED="1")
    with output.open("wb") as sink:
        demo = subprocess.Popen(
            [sys.executable, str(SCRIPT)], env=environment, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        for _ in range(1800):  # a guard against a hung demo, not a measure of speed
            if RUNNING in output.read_text() or demo.poll() is not None:
                break
            time.sleep(0.1)
        printed = output.read_text()
        assert RUNNING in printed, printed
        assert demo.poll() is None
        assert list(temporary.iterdir()), "the demo keeps its database in the temporary folder"
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=60)
    assert demo.returncode == 0, output.read_text()
    assert list(temporary.iterdir()) == []

    out_of_band = "\n".join(line for line in printed.splitlines() if "out of band:" in line)
    assert "discount_pct" in out_of_band
    others = ("payment_terms_days", "liability_cap_multiple", "uncapped_liability", "support_level")
    assert any(term in out_of_band for term in others), out_of_band
    assert "Authorization: Bearer gov_demo-admin-key" in printed
    assert "/docs" in printed
