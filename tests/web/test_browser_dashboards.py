"""The analytics dashboards and the audit log in a real browser (the setup of test_browser.py):
a dashboard draws its charts over a generated history, a filter redraws it, and the CSV it
downloads holds the figures of the table shown. No console errors, no other host."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.conftest import Keys
from tests.web.test_browser import (
    CHROMIUM,
    PHONE,
    Server,
    Watch,
    chromium,  # noqa: F401 (a fixture)
    person,
    shot,
    sign_in,
    watch,  # noqa: F401 (a fixture)
)

from governance.auth.principal import SYSTEM
from governance.db import Database
from governance.demo import generator
from governance.playbooks import publication

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser tests need Chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


@pytest.fixture
def server(database_url: str, people: Keys) -> Iterator[Server]:
    """The app over a sample history: the demo playbook's two versions and 300 deals."""
    db = Database(database_url)
    with db.unit_of_work() as session:
        publication.import_document(session, SYSTEM, generator._demo_document(), publish_now=True)
    generator.generate(db, 300, seed=7, as_of=date(2026, 11, 1))
    db.dispose()
    served = Server(database_url)
    try:
        yield served
    finally:
        served.stop()


def table_cells(page: Any) -> list[list[str]]:
    rows = page.locator("#report-table tbody tr")
    return [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]


def bar_values(page: Any) -> list[str]:
    values: list[str] = page.locator("svg.chart rect.bar-rect").evaluate_all(
        "rects => rects.map(r => r.getAttribute('data-value'))"
    )
    return values


def downloaded(page: Any, link: str) -> list[list[str]]:
    with page.expect_download() as info:
        page.get_by_role("link", name=link).click()
    path = Path(info.value.path())
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))[1:]


def test_a_dashboard_draws_filters_and_downloads_what_it_shows(
    chromium: Any,  # noqa: F811
    server: Server,
    people: Keys,
    watch: Watch,  # noqa: F811
) -> None:
    page = person(chromium, server, watch)
    sign_in(page, people.secrets["leadership"])
    page.get_by_role("link", name="Analytics", exact=True).click()
    expect(page.get_by_role("heading", name="Analytics", exact=True)).to_be_visible()
    shot(page, "analytics-index")
    page.get_by_role("link", name="Verdict mix over time").first.click()

    charts = page.locator("svg.chart[role=img]")
    expect(charts).to_have_count(2)
    expect(page.get_by_role("img", name="Verdict mix by month")).to_be_visible()
    expect(page.locator("svg.chart-stacked rect.bar-rect").first).to_be_visible()
    everywhere = table_cells(page)
    assert everywhere
    drawn = bar_values(page)
    assert len(drawn) == 3 * len(everywhere)  # a segment per verdict and month
    shot(page, "analytics-verdicts")

    # Each chart's figures, as a table, open under it.
    page.get_by_text("Figures of this chart").first.click()
    expect(page.locator("details.chart-data table").first).to_be_visible()

    page.locator("#f-region").fill("EMEA")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"region=EMEA"))
    expect(page.locator("#f-region")).to_have_value("EMEA")
    expect(charts).to_have_count(2)
    emea = table_cells(page)
    assert emea
    assert emea != everywhere
    assert bar_values(page) != drawn  # the chart is redrawn for the filter
    # Fewer deals in each month: every month's total is at most what it was.
    totals = {row[0]: int(row[1]) for row in everywhere}
    assert all(int(row[1]) <= totals[row[0]] for row in emea)
    assert sum(int(row[1]) for row in emea) < sum(totals.values())
    shot(page, "analytics-verdicts-emea")

    assert downloaded(page, "Download CSV") == emea

    page.goto("/analytics/concessions?group_by=team")
    expect(page.get_by_role("img", name="Concessions by team")).to_be_visible()
    assert downloaded(page, "Download CSV") == table_cells(page)
    shot(page, "analytics-concessions")
    page.context.close()


@pytest.mark.parametrize(("width", "viewport"), [("phone", PHONE)])
def test_dashboards_and_the_audit_log_render_on_a_phone(
    chromium: Any,  # noqa: F811
    server: Server,
    people: Keys,
    watch: Watch,  # noqa: F811
    width: str,
    viewport: dict[str, int],
) -> None:
    page = person(chromium, server, watch, viewport)
    sign_in(page, people.secrets["admin"])
    for slug in ("variance", "approvals", "outcomes", "versions", "reviews", "consistency"):
        page.goto(f"/analytics/{slug}")
        expect(page.locator("svg.chart").first).to_be_visible()
        shot(page, f"analytics-{slug}-{width}")
    page.goto("/audit")
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    page.locator("#a-action").fill("api_key.created")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("table.audit tbody tr")).to_have_count(len(people.secrets))
    shot(page, f"audit-{width}")
    page.context.close()
