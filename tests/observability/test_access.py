"""One request, followed through the logs: its id on every line it causes (the worker's lines
for the job it queued included), one access line, and no secret anywhere."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from tests.conftest import Keys
from tests.driver import HOOK, SECRET_PARTS, configure_group, deal_body, put_deal

from governance import worker
from governance.auth.schemas import Role
from governance.db import Database
from governance.logs import LineFormatter, RedactSecrets, RequestIdFilter, configured_secrets
from governance.playbooks.registry import PlaybookRegistry
from governance.settings import Settings

DEAL = "0065g00000TracedAA"


class Captured:
    def __init__(self) -> None:
        self.sink = io.StringIO()

    def text(self) -> str:
        return self.sink.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines() if line]

    def clear(self) -> None:
        self.sink.seek(0)
        self.sink.truncate()


@pytest.fixture
def logs(settings: Settings) -> Iterator[Captured]:
    """Every log line of the process, as `governance serve` writes them in production."""
    captured = Captured()
    handler = logging.StreamHandler(captured.sink)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactSecrets(configured_secrets(settings)))
    handler.setFormatter(LineFormatter(json_lines=True))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield captured
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.usefixtures("demo_published")
async def test_one_requests_id_is_on_every_line_it_causes_and_no_secret_is(
    client: httpx.AsyncClient,
    keys: Keys,
    logs: Captured,
    db: Database,
    registry: PlaybookRegistry,
    settings: Settings,
    webhook: respx.MockRouter,  # no post leaves the test
    http: httpx.Client,
) -> None:
    keys.create("sam", Role.approver, ["sales_director"])
    await configure_group(client, keys, "sales_director", webhook_url=HOOK)
    await put_deal(client, keys, DEAL, deal_body(terms={"discount_pct": 20, "contract_months": 12}))
    logs.clear()

    # The submission opens a request for the sales directors and queues their notification.
    secret = keys.secrets["rep"]
    response = await client.post(
        f"/v1/deals/{DEAL}/submit",
        headers={**keys.headers("rep"), "X-Request-ID": "req-7f3a9c"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-ID"] == "req-7f3a9c"
    during = logs.lines()
    worker.run_once(db, registry, settings, client=http)  # posts the queued notification

    lines = logs.lines()
    assert {line["request_id"] for line in lines} == {"req-7f3a9c"}
    access = [line for line in during if line["logger"] == "governance.access"]
    assert len(access) == 1
    assert (
        access[0]
        | {
            "method": "POST",
            "route": "/v1/deals/{external_id}/submit",
            "status": response.status_code,
            "key_name": "rep",
            "path": f"/v1/deals/{DEAL}/submit",
        }
        == access[0]
    )
    assert isinstance(access[0]["key_id"], int)
    assert access[0]["duration_ms"] >= 0
    # The worker's line for the job the request queued (a post, or its retry: the example
    # host does not resolve here).
    job = [line for line in lines[len(during) :] if "approval.requested" in line["message"]]
    assert job, lines
    assert job[0]["logger"] == "governance.notifications.service"
    # A careless client that also puts its key in the query string is refused (an unknown
    # parameter), and its line shows the path with the value blanked.
    logs.clear()
    refused = await client.get(f"/v1/deals?api_key={secret}", headers=keys.headers("rep"))
    assert refused.status_code == 422
    (careless,) = [line for line in logs.lines() if line["logger"] == "governance.access"]
    assert careless["path"] == "/v1/deals?api_key=[REDACTED]"
    assert careless["request_id"] == refused.headers["X-Request-ID"]
    text = "\n".join(json.dumps(line) for line in lines + logs.lines())
    for part in (secret, *SECRET_PARTS):
        assert part not in text


async def test_an_unsafe_incoming_request_id_is_replaced(
    client: httpx.AsyncClient, logs: Captured
) -> None:
    forged = await client.get("/healthz", headers={"X-Request-ID": 'x" level=error fake=1'})
    replaced = forged.headers["X-Request-ID"]
    assert replaced != 'x" level=error fake=1'
    assert len(replaced) == 32
    fresh = await client.get("/healthz")
    assert fresh.headers["X-Request-ID"] not in ("", replaced)
    assert [line["request_id"] for line in logs.lines()] == [
        replaced,
        fresh.headers["X-Request-ID"],
    ]


def test_development_lines_are_readable_text() -> None:
    record = logging.LogRecord(
        "governance.access", logging.INFO, "", 0, "GET %s %s", ("/healthz", 200), None
    )
    record.request_id = "req-1"
    record.route = "/healthz"
    line = LineFormatter(json_lines=False).format(record)
    assert "INFO" in line
    assert "[req-1] governance.access: GET /healthz 200 route=/healthz" in line
