"""The analytics dashboards: who may see them, their charts over a generated history, their
filters, and a CSV download that is exactly the table shown (and the API's CSV)."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable
from datetime import date

import httpx
import pytest
from tests.conftest import Keys
from tests.web.conftest import Console

from governance.auth.principal import SYSTEM
from governance.auth.schemas import Role
from governance.db import Database
from governance.demo import generator
from governance.playbooks import publication
from governance.web.dashboards import DASHBOARDS

AS_OF = date(2026, 11, 1)
DEALS = 300
SLUGS = [d.slug for d in DASHBOARDS]
REPORT = re.compile(r'<table class="report" id="report-table">(.*?)</table>', re.DOTALL)
ROW = re.compile(r"<tr>(.*?)</tr>", re.DOTALL)
CELL = re.compile(r"<td>(.*?)</td>", re.DOTALL)


@pytest.fixture
def history(database_url: str, keys: Keys) -> None:
    """The demo playbook (two versions) and a sample history of deals, reviews and outcomes."""
    db = Database(database_url)
    with db.unit_of_work() as session:
        publication.import_document(session, SYSTEM, generator._demo_document(), publish_now=True)
    generator.generate(db, DEALS, seed=7, as_of=AS_OF)
    db.dispose()


async def signed_in(consoles: Callable[[], Console], keys: Keys, name: str) -> Console:
    console = consoles()
    assert (await console.sign_in(keys.secrets[name])).status_code == 303
    return console


def shown_rows(page: str) -> list[list[str]]:
    """The report table's cells, as text."""
    found = REPORT.search(page)
    assert found, "no report table on the page"
    return [
        [html.unescape(c) for c in CELL.findall(row)] for row in ROW.findall(found.group(1))[1:]
    ]


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))[1:]


# --- who sees them ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
async def test_dashboards_are_for_leadership_approvers_and_admins(
    consoles: Callable[[], Console], keys: Keys, role: Role
) -> None:
    console = await signed_in(consoles, keys, role.value)
    allowed = role in (Role.admin, Role.leadership, Role.approver)
    for path in ("/analytics", "/analytics/variance", "/analytics/verdicts.csv"):
        response = await console.page(path)
        assert response.status_code == (200 if allowed else 403), path
        if not allowed:
            assert "This page is not for your role" in response.text
    deals = (await console.page("/deals")).text
    assert ('href="/analytics"' in deals) is allowed
    assert ('href="/audit"' in deals) is (role in (Role.admin, Role.leadership))


async def test_signed_out_visitors_are_sent_to_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/analytics/outcomes?region=EMEA")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=/analytics/outcomes%3Fregion%3DEMEA"


async def test_an_unknown_dashboard_is_a_404_page(
    consoles: Callable[[], Console], keys: Keys
) -> None:
    console = await signed_in(consoles, keys, "leadership")
    for path in ("/analytics/horoscope", "/analytics/horoscope.csv"):
        response = await console.page(path)
        assert response.status_code == 404
        assert "No such dashboard" in response.text


# --- what they show ----------------------------------------------------------------------------


@pytest.mark.usefixtures("history")
async def test_every_dashboard_draws_its_charts_over_the_history(
    consoles: Callable[[], Console], keys: Keys
) -> None:
    console = await signed_in(consoles, keys, "approver")
    index = (await console.page("/analytics")).text
    for board in DASHBOARDS:
        assert f'href="/analytics/{board.slug}"' in index
        page = await console.page(f"/analytics/{board.slug}")
        assert page.status_code == 200, board.slug
        text = page.text
        assert f"<h1>{board.title}</h1>" in text
        charts = re.findall(r'<svg class="chart chart-(\w+)"', text)
        assert charts, board.slug
        assert "empty" not in charts, board.slug
        assert text.count('role="img"') == len(charts)
        assert text.count("Figures of this chart") == len(charts)  # each chart's table
        assert 'class="bar-rect' in text or 'class="dot' in text
        assert shown_rows(text), board.slug


# Each dashboard with some filters, and the API call (its default grouping spelt out) that
# answers the same report.
DOWNLOADS: list[tuple[str, dict[str, str], dict[str, str]]] = [
    ("variance", {"group_by": "team"}, {"group_by": "team"}),
    ("verdicts", {"region": "EMEA"}, {"group_by": "month", "region": "EMEA"}),
    ("concessions", {"currency": "USD"}, {"group_by": "style", "currency": "USD"}),
    ("approvals", {}, {}),
    ("outcomes", {"group_by": "segment"}, {"group_by": "segment"}),
    ("versions", {}, {}),
    ("reviews", {"style": "closer"}, {"group_by": "region", "style": "closer"}),
    (
        "consistency",
        {"across": "team", "min_deals": "2", "min_spread": "0.05"},
        {"across": "team", "min_deals": "2", "min_spread": "0.05"},
    ),
]


@pytest.mark.usefixtures("history")
async def test_each_download_is_the_table_shown_and_the_apis_csv(
    client: httpx.AsyncClient, consoles: Callable[[], Console], keys: Keys
) -> None:
    console = await signed_in(consoles, keys, "leadership")
    for slug, params, api_params in DOWNLOADS:
        await _download_matches(client, console, keys, slug, params, api_params)


async def _download_matches(
    client: httpx.AsyncClient,
    console: Console,
    keys: Keys,
    slug: str,
    params: dict[str, str],
    api_params: dict[str, str],
) -> None:
    page = await console.page(f"/analytics/{slug}", params=params)
    assert page.status_code == 200
    link = re.search(r'href="(/analytics/[a-z]+\.csv[^"]*)" download', page.text)
    assert link, "no CSV link"
    download = await console.page(html.unescape(link.group(1)))
    assert download.status_code == 200
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    assert download.headers["content-disposition"].startswith(f'attachment; filename="{slug}-')
    shown = shown_rows(page.text)
    assert shown, slug
    assert csv_rows(download.text) == shown
    api = await client.get(
        f"/v1/analytics/{slug}",
        params=api_params,
        headers={**keys.headers("leadership"), "Accept": "text/csv"},
    )
    assert api.text == download.text


@pytest.mark.usefixtures("history")
async def test_a_filter_narrows_the_figures_and_the_form_keeps_it(
    consoles: Callable[[], Console], keys: Keys
) -> None:
    console = await signed_in(consoles, keys, "leadership")
    every = shown_rows((await console.page("/analytics/variance")).text)
    page = (await console.page("/analytics/variance", params={"region": "EMEA"})).text
    emea = shown_rows(page)
    assert {row[0] for row in every} > {"EMEA"}
    assert {row[0] for row in emea} == {"EMEA"}
    assert emea == [row for row in every if row[0] == "EMEA"]  # the same figures, narrowed
    assert 'name="region" value="EMEA"' in page
    assert "/analytics/variance.csv?region=EMEA" in page
    by_team = (await console.page("/analytics/variance", params={"group_by": "team"})).text
    assert '<option value="team" selected>' in by_team
    assert "Variance score by team" in by_team
    # No grouping: the whole history at once, each term on its own.
    nothing = re.search(r'<option value="([^"]+)">nothing', by_team)
    assert nothing
    ungrouped = await console.page("/analytics/variance", params={"group_by": nothing.group(1)})
    assert ungrouped.status_code == 200
    assert f'<option value="{nothing.group(1)}" selected>nothing' in ungrouped.text
    assert "Deals with the term outside its band" in ungrouped.text
    total = shown_rows(ungrouped.text)[0]  # term empty: every deal, every region
    assert total[0] == ""
    assert int(total[1]) == sum(int(row[2]) for row in every if row[1] == "")


async def test_invalid_filters_are_shown_at_their_fields(
    consoles: Callable[[], Console], keys: Keys
) -> None:
    console = await signed_in(consoles, keys, "leadership")
    page = await console.page(
        "/analytics/variance",
        params={"from": "2026-13-01", "version": "0", "currency": "eur", "group_by": "galaxy"},
    )
    assert page.status_code == 422
    for name in ("from", "version", "currency", "group_by"):
        assert f'aria-describedby="f-{name}-error"' in page.text, name
    assert "Enter three capital letters, like EUR." in page.text
    assert '<svg class="chart' not in page.text
    assert "Download CSV" not in page.text
    reversed_dates = await console.page(
        "/analytics/verdicts", params={"from": "2026-05-01", "to": "2026-04-01"}
    )
    assert reversed_dates.status_code == 422
    assert "The end date is before the start date." in reversed_dates.text
    spread = await console.page("/analytics/consistency", params={"min_spread": "lots"})
    assert spread.status_code == 422
    assert "Enter a share from 0 to 1" in spread.text
    download = await console.page("/analytics/variance.csv", params={"currency": "eur"})
    assert download.status_code == 422
    assert "These filters are not valid" in download.text


async def test_with_no_deals_every_dashboard_says_so(
    consoles: Callable[[], Console], keys: Keys
) -> None:
    console = await signed_in(consoles, keys, "admin")
    for slug in SLUGS:
        page = await console.page(f"/analytics/{slug}")
        assert page.status_code == 200, slug
        assert "No data for these filters" in page.text or "No version has" in page.text, slug
        download = await console.page(f"/analytics/{slug}.csv")
        assert len(download.text.splitlines()) == 1  # the header only
