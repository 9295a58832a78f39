"""A rep in Salesforce sees their own concessions across deals, and nobody else's.

The package's integration key reads `GET /v1/analytics/concessions` only for the Salesforce user
it acts for (`X-Acting-User`), named again in `rep`; every other report stays refused to it.
"""

from __future__ import annotations

import httpx
import pytest
from tests.conftest import Keys

ME = "005Dn000001AbCdIAK"
OTHER = "005Dn000001AbCeIAK"
REPORT = "/v1/analytics/concessions"

pytestmark = pytest.mark.usefixtures("demo_published")


async def _won_deal(
    client: httpx.AsyncClient, keys: Keys, external_id: str, owner: str, discount: int
) -> None:
    rep = keys.headers("rep")
    path = f"/v1/deals/{external_id}"
    deal = {
        "attributes": {"region": "EMEA", "segment": "smb", "amount": "100000", "owner_rep": owner},
        "terms": {"discount_pct": discount, "payment_terms_days": 30},
    }
    assert (await client.put(path, json=deal, headers=rep)).status_code == 201
    checked = await client.post(f"{path}/checks", headers=rep)
    assert checked.status_code == 201, checked.text
    closed = await client.post(
        f"{path}/outcome", json={"won": True, "close_date": "2026-11-20"}, headers=rep
    )
    assert closed.status_code == 201, closed.text


def _acting(keys: Keys, user: str) -> dict[str, str]:
    return {**keys.headers("integration"), "X-Acting-User": user}


@pytest.fixture
async def two_reps(client: httpx.AsyncClient, keys: Keys, demo_published: object) -> None:
    await _won_deal(client, keys, "0065g00000Own01AAA", ME, 20)
    await _won_deal(client, keys, "0065g00000Own02AAA", OTHER, 30)
    await _won_deal(client, keys, "0065g00000Own03AAA", OTHER, 10)


@pytest.mark.usefixtures("two_reps")
async def test_the_acting_rep_reads_their_own_concessions(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    response = await client.get(REPORT, params={"rep": ME}, headers=_acting(keys, ME))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["filters"]["rep"] == ME
    totals, *terms = body["rows"]
    # One won deal of theirs, not the other rep's two.
    assert (totals["term"], totals["deals"], totals["cost"]) == (None, 1, "20000.00")
    assert terms[0]["term"] == "discount_pct"
    assert terms[0]["conceded"] == 1
    # The same figures leadership sees for that rep.
    theirs = await client.get(REPORT, params={"rep": ME}, headers=keys.headers("leadership"))
    assert theirs.json()["rows"] == body["rows"]


@pytest.mark.usefixtures("two_reps")
@pytest.mark.parametrize(
    ("params", "acting"),
    [
        ({"rep": OTHER}, ME),  # another rep's figures
        ({}, ME),  # everyone's figures
        ({"rep": ME, "group_by": "rep"}, OTHER),  # naming a rep that is not the acting user
        ({"rep": "005Dn000001AbCd"}, ME),  # the 15-character form matches no deal: refused too
    ],
)
async def test_other_reps_figures_stay_refused(
    client: httpx.AsyncClient, keys: Keys, params: dict[str, str], acting: str
) -> None:
    response = await client.get(REPORT, params=params, headers=_acting(keys, acting))
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "acts for" in response.json()["detail"]


async def test_the_integration_key_must_act_for_someone(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    response = await client.get(REPORT, params={"rep": ME}, headers=keys.headers("integration"))
    assert response.status_code == 403
    assert "X-Acting-User" in response.json()["detail"]


async def test_a_malformed_acting_user_is_400_naming_the_header(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    response = await client.get(REPORT, params={"rep": "ana"}, headers=_acting(keys, "ana"))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "header.X-Acting-User"


@pytest.mark.parametrize(
    "report", ["variance", "verdicts", "approvals", "outcomes", "reviews", "consistency"]
)
async def test_other_reports_stay_refused_to_the_integration_key(
    client: httpx.AsyncClient, keys: Keys, report: str
) -> None:
    response = await client.get(
        f"/v1/analytics/{report}", params={"rep": ME}, headers=_acting(keys, ME)
    )
    assert response.status_code == 403


async def test_reps_still_do_not_read_analytics(client: httpx.AsyncClient, keys: Keys) -> None:
    response = await client.get(REPORT, params={"rep": ME}, headers=keys.headers("rep"))
    assert response.status_code == 403
    # Nor may they borrow the header: only an integration key vouches for a Salesforce user.
    borrowed = await client.get(
        REPORT, params={"rep": ME}, headers={**keys.headers("rep"), "X-Acting-User": ME}
    )
    assert borrowed.status_code == 403
