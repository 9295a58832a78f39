"""The README's shell examples work as written on a fresh `make run`: every ```sh block, in order,
in one bash script against a served process with the demo playbook, failing on any error (the
examples call `curl -fsS`). A block right after a `<!-- not tested: why -->` line is left out
(make targets, a real Salesforce org)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.served import serve

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```sh\n(?P<body>.*?)\n```", re.DOTALL)


def shell_examples(text: str) -> list[str]:
    return [
        match["body"]
        for match in BLOCK.finditer(text)
        if not match["before"].startswith("<!-- not tested")
    ]


def test_the_readme_has_examples_to_run_and_leaves_out_only_marked_blocks() -> None:
    text = README.read_text(encoding="utf-8")
    examples = shell_examples(text)
    assert len(examples) >= 4
    assert len(examples) + text.count("<!-- not tested") == text.count("```sh")
    assert not any(re.search(r"^\S*make ", example, re.MULTILINE) for example in examples)


@pytest.mark.skipif(shutil.which("jq") is None, reason="the README's examples read answers with jq")
def test_the_readme_examples_work_on_a_fresh_make_run(tmp_path: Path) -> None:
    with serve(tmp_path, GOVERNANCE_ENVIRONMENT="development") as served:
        script = "\n".join(shell_examples(README.read_text(encoding="utf-8")))
        script = script.replace("localhost:8000", f"127.0.0.1:{served.port}")
        script = script.replace("gov_…", served.key)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr + done.stdout[-2000:] + served.output()[-3000:]
