"""An approval group's settings: its SLA, its webhook (a secret URL, never shown back) and the
group it escalates to."""

from __future__ import annotations

import httpx
from tests.conftest import Keys
from tests.driver import (  # noqa: F401  (example_hooks_settings: the fixture `settings`)
    FINANCE_HOOK,
    HOOK,
    SECRET_PARTS,
    configure_group,
    example_hooks_settings,
)


async def test_group_settings_never_show_the_webhook_url(
    client: httpx.AsyncClient, people: Keys
) -> None:
    refused = await client.put(
        "/v1/approval-groups/sales_director",
        json={"webhook_url": HOOK},
        headers=people.headers("approver_finance"),
    )
    assert refused.status_code == 403
    created = await configure_group(client, people, "sales_director", webhook_url=HOOK, sla_hours=4)
    assert created.status_code == 201
    changed = await configure_group(client, people, "sales_director", webhook_url=HOOK, sla_hours=6)
    assert changed.status_code == 200
    listed = await client.get("/v1/approval-groups", headers=people.headers("sam"))
    assert listed.status_code == 200
    groups = {g["name"]: g for g in listed.json()}
    assert groups["sales_director"] == {
        "name": "sales_director",
        "sla_hours": 6,
        "sla_hours_set": True,
        "webhook_configured": True,
        "webhook_host": "hooks.example.com",
        "escalation_group": None,
    }
    # Groups that only exist through their members' keys are listed with the defaults.
    assert groups["legal"]["webhook_configured"] is False
    assert groups["legal"]["sla_hours"] == 24
    entries = await client.get(
        "/v1/audit", params={"action": "approval_group.saved"}, headers=people.headers("admin")
    )
    for text in (created.text, changed.text, listed.text, entries.text):
        for secret in SECRET_PARTS[:3]:
            assert secret not in text
    not_a_url = await client.put(
        "/v1/approval-groups/legal",
        json={"webhook_url": "javascript:alert(1)"},
        headers=people.headers("admin"),
    )
    assert not_a_url.status_code == 422
    assert not_a_url.json()["errors"][0]["field"] == "webhook_url"


async def test_leaving_out_the_webhook_keeps_it_and_null_removes_it(
    client: httpx.AsyncClient, people: Keys
) -> None:
    await configure_group(client, people, "finance", webhook_url=FINANCE_HOOK, sla_hours=8)
    kept = await configure_group(client, people, "finance", sla_hours=12)
    assert kept.json()["webhook_configured"] is True
    assert kept.json()["sla_hours"] == 12
    removed = await configure_group(client, people, "finance", webhook_url=None, sla_hours=12)
    assert removed.json()["webhook_configured"] is False
