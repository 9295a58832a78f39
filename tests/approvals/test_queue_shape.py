"""The queue is served without pydantic: its items must be exactly what the schema promises."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from tests.conftest import Keys

from governance.approvals.schemas import ApprovalPage
from governance.auth.schemas import Role


@pytest.mark.usefixtures("demo_published")
async def test_queue_items_match_the_schema_and_the_single_read(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    keys.create("lee", Role.approver, ["legal"])
    for n, extra in enumerate(({"extra_flag": True}, {})):
        deal = f"0065g00000Shape{n:03d}"
        created = await client.put(
            f"/v1/deals/{deal}",
            json={
                "name": f"Shape {n}",
                "attributes": {
                    "region": "EMEA",
                    "amount": "120000.50",
                    "close_date": "2026-12-31",
                    "value_position": "weak",
                    **extra,
                },
                "terms": {"liability_cap_multiple": "1.5", "uncapped_liability": True},
            },
            headers=keys.headers("rep"),
        )
        assert created.status_code == 201, created.text
        submitted = await client.post(
            f"/v1/deals/{deal}/submit",
            json={"justifications": {"uncapped_liability": "Regulated buyer"}},
            headers=keys.headers("rep"),
        )
        assert submitted.status_code == 200, submitted.text

    response = await client.get("/v1/approvals", headers=keys.headers("lee"))
    assert response.status_code == 200
    page = ApprovalPage.model_validate(response.json())  # raises if the shape drifts
    assert len(page.items) == 2
    for item in page.items:
        single = await client.get(f"/v1/approvals/{item.id}", headers=keys.headers("lee"))
        assert single.json() == item.model_dump(mode="json")
        assert single.headers["ETag"] == f'"{item.version}"'
    first = page.items[0]
    assert first.deal.attributes.amount == Decimal("120000.50")
    assert first.deal.attributes.model_extra == {"extra_flag": True}
    assert [t.key for t in first.terms] == ["uncapped_liability", "liability_cap_multiple"]
    assert first.terms[0].justification == "Regulated buyer"
