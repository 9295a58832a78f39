"""The audit log page: for the roles the audit API admits, filtered, paged newest first."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from tests.conftest import Keys
from tests.web.conftest import Console

from governance.auth.schemas import Role
from governance.web import audit as audit_page

ENTRY = re.compile(r'<td class="num">(\d+)</td>')
OLDER = re.compile(r'href="([^"]+)" rel="next"')


async def signed_in(consoles: Callable[[], Console], keys: Keys, name: str) -> Console:
    console = consoles()
    assert (await console.sign_in(keys.secrets[name])).status_code == 303
    return console


def ids(page: str) -> list[int]:
    return [int(n) for n in ENTRY.findall(page)]


@pytest.mark.parametrize("role", list(Role))
async def test_the_audit_log_is_for_the_roles_the_audit_api_admits(
    consoles: Callable[[], Console], keys: Keys, role: Role
) -> None:
    console = await signed_in(consoles, keys, role.value)
    page = await console.page("/audit")
    allowed = role in (Role.admin, Role.leadership)
    assert page.status_code == (200 if allowed else 403)
    if allowed:
        assert "<h1>Audit log</h1>" in page.text
        # The keys the suite created, newest first.
        assert "api_key.created" in page.text
        assert ids(page.text) == sorted(ids(page.text), reverse=True)
    else:
        assert "This page is not for your role" in page.text


async def test_filters_by_action_actor_and_object(
    consoles: Callable[[], Console], keys: Keys
) -> None:
    console = await signed_in(consoles, keys, "leadership")
    signed = (await console.page("/audit", params={"action": "web.signed_in"})).text
    assert "web.signed_in" in signed
    assert "api_key.created" not in signed
    assert 'name="action" value="web.signed_in"' in signed
    # Every actor, action and object is a link that filters by it.
    created = (await console.page("/audit", params={"action": "api_key.created"})).text
    assert len(ids(created)) == len(keys.secrets)
    link = re.search(r'href="(/audit\?[^"]*entity_id=[^"]*)"', created)
    assert link
    one = (await console.page(html.unescape(link.group(1)))).text
    assert len(ids(one)) >= 1
    assert ids(one) != ids(created)
    by_actor = (await console.page("/audit", params={"actor": "cli"})).text
    assert "api_key.created" in by_actor
    assert "web.signed_in" not in by_actor  # signing in is recorded as the key's own


async def test_dates_filter_whole_days_and_bad_ones_are_named(
    consoles: Callable[[], Console], keys: Keys
) -> None:
    console = await signed_in(consoles, keys, "admin")
    today = datetime.now(UTC).date()
    tomorrow = (today + timedelta(days=1)).isoformat()
    today_only = await console.page("/audit", params={"from": today.isoformat(), "to": today})
    assert ids(today_only.text)
    later = await console.page("/audit", params={"from": tomorrow})
    assert later.status_code == 200
    assert "No entries match these filters." in later.text
    bad = await console.page("/audit", params={"from": "yesterday", "to": "2026-01-01"})
    assert bad.status_code == 422
    assert 'aria-describedby="a-from-error"' in bad.text
    assert "Enter a date as YYYY-MM-DD." in bad.text
    backwards = await console.page("/audit", params={"from": tomorrow, "to": today})
    assert backwards.status_code == 422
    assert "The end date is before the start date." in backwards.text
    forged = await console.page("/audit", params={"cursor": "not-ours"})
    assert forged.status_code == 422
    assert "That page link is not valid" in forged.text


async def test_pages_go_back_in_time_without_gaps_or_repeats(
    consoles: Callable[[], Console], keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_page, "PAGE", 4)
    console = await signed_in(consoles, keys, "admin")
    seen: list[int] = []
    page = (await console.page("/audit", params={"action": "api_key.created"})).text
    assert "Newest entries" not in page
    while True:
        seen += ids(page)
        older = OLDER.search(page)
        if older is None:
            break
        assert "action=api_key.created" in older.group(1)  # the filters carry over
        page = (await console.page(html.unescape(older.group(1)))).text
        assert "Newest entries" in page
    assert len(seen) == len(keys.secrets)
    assert seen == sorted(set(seen), reverse=True)
