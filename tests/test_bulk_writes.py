"""Many rows at once (`db.insert_rows`, `db.insert_many`: COPY on PostgreSQL from 50 rows): a row
the database refuses raises what an INSERT raises, so a page of the sync can fall back to one
record at a time and the API can answer 409 or 422, and the rest of the transaction goes on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from governance.db import Database, insert_many, insert_rows, savepoint
from governance.deals.models import DealTermCheck
from governance.outcomes.models import Outcome

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def term_rows(count: int, deal_id: int) -> list[dict[str, object]]:
    return [
        {
            "deal_id": deal_id,
            "term_key": f"term_{i}",
            "status": "exception",
            "variance_ratio_micro": 1000 + i,
            "region": "EMEA",
            "segment": None,
            "team": None,
            "owner_rep": None,
            "playbook_key": "standard",
            "playbook_version": 1,
            "checked_at": NOW,
            "created_at": NOW,
            "updated_at": NOW,
        }
        for i in range(count)
    ]


@pytest.mark.parametrize("count", [1, 49, 50, 300])
def test_a_refused_row_raises_what_an_insert_raises_and_the_transaction_goes_on(
    db: Database, count: int
) -> None:
    with db.unit_of_work() as session:
        with pytest.raises(IntegrityError), savepoint(session):
            insert_rows(session, DealTermCheck, term_rows(count, deal_id=987_654))  # no such deal
        assert session.scalar(select(func.count()).select_from(DealTermCheck)) == 0


@pytest.mark.parametrize("count", [1, 50])
def test_rows_with_ids_drawn_first_are_refused_whole(db: Database, count: int) -> None:
    rows = [
        {
            "deal_id": 987_654,
            "won": True,
            "closed_at": NOW,
            "close_date": NOW.date(),
            "final_terms": {},
            "source": "salesforce",
            "recorded_by": "test",
            "created_at": NOW,
            "updated_at": NOW,
        }
    ] * count
    with db.unit_of_work() as session:
        with pytest.raises(IntegrityError), savepoint(session):
            insert_many(session, Outcome, rows)
        assert session.scalar(select(func.count()).select_from(Outcome)) == 0
