"""No secret reaches a log line: the served process's access log, and the app's own loggers."""

from __future__ import annotations

import io
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.served import ADMIN_KEY, serve

from governance.logs import RedactSecrets

OUTBOUND_SECRET = "om-shared-secret-4f9a2c"
ORG = "00D5g000004ABCDEAA"


def call(url: str, key: str | None = None, data: bytes | None = None) -> int:
    headers = {"Content-Type": "text/xml"} if data is not None else {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_query_string_secrets_and_keys_never_reach_the_served_logs(tmp_path: Path) -> None:
    with serve(
        tmp_path,
        GOVERNANCE_SALESFORCE__OUTBOUND_MESSAGE_SECRET=OUTBOUND_SECRET,
        GOVERNANCE_SALESFORCE__ORGANIZATION_ID=ORG,
    ) as served:
        outbound = f"{served.base}/v1/salesforce/outbound-messages"
        # The real secret (a malformed message, so nothing is queued) and a guess.
        assert call(f"{outbound}?secret={OUTBOUND_SECRET}", data=b"<not-soap/>") == 400
        assert call(f"{outbound}?secret=guessed-secret-77", data=b"<x/>") == 403
        # A client that puts its key and a token in the query string as well: refused (unknown
        # parameters), and logged with the values blanked.
        listed = f"{served.base}/v1/deals?api_key={ADMIN_KEY}&access_token=tok-5551234&limit=5"
        assert call(listed, key=ADMIN_KEY) == 422
        assert call(f"{served.base}/healthz?password=hunter2hunter2") == 200
        output = served.stop()
    for secret in (OUTBOUND_SECRET, "guessed-secret-77", ADMIN_KEY, "tok-5551234", "hunter2"):
        assert secret not in output, secret
    # The requests are still logged, with the values blanked.
    assert "/v1/salesforce/outbound-messages?secret=[REDACTED]" in output
    assert "/v1/deals?api_key=[REDACTED]&access_token=[REDACTED]&limit=5" in output
    assert "/healthz?password=[REDACTED]" in output


@pytest.fixture
def app_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A `governance.*` logger writing through the redaction filter the served process uses."""
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.addFilter(RedactSecrets(["chosen-bootstrap-key-123"]))
    logger = logging.getLogger("governance.tests.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, sink
    logger.removeHandler(handler)


def test_the_apps_own_log_lines_are_redacted_too(
    app_log: tuple[logging.Logger, io.StringIO],
) -> None:
    log, sink = app_log
    log.info("posting to %s", "https://hooks.example/in?token=abc123XYZ&channel=deals")
    log.warning("refused: %s", ValueError("key gov_AbCdEfGhIjKlMnOp is revoked"))
    log.info("header was %r", "Authorization: Bearer some.jwt.value")
    log.info("bootstrap key chosen-bootstrap-key-123 in use")
    try:
        raise RuntimeError("fetch of https://org.example/x?signature=s1gn3d failed")
    except RuntimeError:
        log.exception("unexpected")
    text = sink.getvalue()
    for secret in ("abc123XYZ", "gov_AbCdEf", "some.jwt.value", "chosen-bootstrap", "s1gn3d"):
        assert secret not in text, secret
    assert "channel=deals" in text  # other parameters are left alone
    assert "RuntimeError" in text  # the traceback is kept, redacted
