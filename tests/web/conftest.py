"""Console fixtures: browsers (one cookie jar each) signed in with the suite's keys, and deals
under review to decide."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.conftest import Keys

from governance.auth.schemas import Role

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
SIGN_IN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Console:
    """One person's browser on the console: its own cookies, and the page's CSRF token."""

    def __init__(self, app: FastAPI, base_url: str = "http://testserver") -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.http = httpx.AsyncClient(transport=transport, base_url=base_url)
        self.csrf = ""

    async def sign_in(self, secret: str, next_path: str = "/") -> httpx.Response:
        form = await self.http.get("/sign-in")
        found = SIGN_IN_TOKEN.search(form.text)
        assert found, form.text
        response = await self.http.post(
            "/sign-in",
            data={"api_key": secret, "csrf_token": found.group(1), "next": next_path},
        )
        if response.status_code == 303:
            await self.page("/deals")  # any page: it carries the session's CSRF token
        return response

    async def page(self, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.get(path, **kwargs)
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    async def post(
        self, path: str, data: dict[str, Any] | list[tuple[str, str]], *, token: bool = True,
        htmx: bool = False,
    ) -> httpx.Response:  # fmt: skip
        fields: dict[str, list[str]] = {}
        for name, value in data.items() if isinstance(data, dict) else data:
            fields.setdefault(name, []).append(str(value))
        if token:
            fields["csrf_token"] = [self.csrf]
        headers = {"HX-Request": "true"} if htmx else {}
        return await self.http.post(path, data=fields, headers=headers)

    async def close(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def consoles(app: FastAPI) -> AsyncIterator[Callable[[], Console]]:
    """Open as many browsers as a test needs; closed at the end."""
    opened: list[Console] = []

    def open_one() -> Console:
        console = Console(app)
        opened.append(console)
        return console

    yield open_one
    for console in opened:
        await console.close()


@pytest.fixture
def people(keys: Keys) -> Keys:
    keys.create("sam_sales_director", Role.approver, ["sales_director"])
    keys.create("sara_sales_director", Role.approver, ["sales_director"])
    keys.create("fiona_finance", Role.approver, ["finance"])
    keys.create("lee_legal", Role.approver, ["legal"])
    keys.create("rita_rep", Role.rep)
    return keys


def deal_id(n: int) -> str:
    return f"0065g00000Web{n:03d}AA"


async def submit_deal(
    client: httpx.AsyncClient,
    keys: Keys,
    n: int,
    *,
    discount: int = 30,
    liability: str = "1.5",
    name: str | None = None,
) -> dict[str, Any]:
    """A deal under review (rep rita): discount needs the sales director (and finance past 28
    with annual prepayment), a liability cap above 1 needs legal."""
    rep = keys.headers("rita_rep")
    stored = await client.put(
        f"/v1/deals/{deal_id(n)}",
        json={
            "name": name or f"Web deal {n}",
            "attributes": {"region": "EMEA", "amount": "240000", "currency": "EUR"},
            "terms": {
                "discount_pct": discount,
                "billing_frequency": "annual_upfront",
                "contract_months": 12,
                "liability_cap_multiple": liability,
                "payment_terms_days": 30,
            },
        },
        headers=rep,
    )
    assert stored.status_code == 201, stored.text
    submitted = await client.post(
        f"/v1/deals/{deal_id(n)}/submit",
        json={"justifications": {"discount_pct": "Bake-off against a cheaper rival"}},
        headers=rep,
    )
    assert submitted.status_code == 200, submitted.text
    body: dict[str, Any] = submitted.json()
    return body


def request_of(submission: dict[str, Any], group: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in submission["requests"] if r["chain_group"] == group)
    return found
