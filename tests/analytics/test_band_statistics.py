"""The extended statistics migration 0004 creates on PostgreSQL only help while their
expressions are exactly the ones the reports group by."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from sqlalchemy.dialects import postgresql

from governance.analytics.fact_repository import SCORE_BANDS, amount_band, banded
from governance.outcomes.models import Outcome, OutcomeTerm

MIGRATION = (
    Path(__file__).resolve().parents[2]
    / "migrations/versions/2026_11_27_0004_outcomes_analytics.py"
)


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("migration_0004", MIGRATION)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sql(expression: object, table: str) -> str:
    compiled = str(expression.compile(dialect=postgresql.dialect()))  # type: ignore[attr-defined]
    return compiled.replace(f"{table}.", "")


def test_statistics_cover_the_band_expressions_the_reports_use() -> None:
    statistics = _migration().STATISTICS
    assert statistics["st_deal_outcome_terms_amount_band"][1] == _sql(
        amount_band(OutcomeTerm.amount_cents), "deal_outcome_terms"
    )
    assert statistics["st_deal_outcome_terms_score_band"][1] == _sql(
        banded(OutcomeTerm.deal_variance_micro, SCORE_BANDS, True), "deal_outcome_terms"
    )
    assert statistics["st_deal_outcomes_score_band"][1] == _sql(
        banded(Outcome.variance_micro, SCORE_BANDS, True), "deal_outcomes"
    )
