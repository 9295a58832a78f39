"""A check's per-term figures as deals keep them: rows, or bits of `zero_terms` at ratio 0."""

from __future__ import annotations

from decimal import Decimal

from governance.deals.repository import zero_term_mask
from governance.deals.service import term_figures
from governance.demo.playbooks import demo_document
from governance.engine import CheckResult
from governance.engine.compiler import compile_playbook
from governance.engine.evaluator import evaluate


def _check(terms: dict[str, object]) -> CheckResult:
    compiled = compile_playbook(demo_document(), 1)
    return evaluate(compiled, compiled.parse_terms(terms), {"amount": Decimal(50_000)})


def test_stated_terms_only_with_ratios_in_millionths() -> None:
    result = _check({"discount_pct": 20, "contract_months": 12})
    figures = {key: (status, ratio) for key, status, ratio in term_figures(result)}
    assert set(figures) == {"discount_pct", "contract_months"}
    assert figures["contract_months"] == ("within", 0)
    status, ratio = figures["discount_pct"]
    assert status == "exception"
    assert ratio > 0


def test_terms_at_ratio_zero_with_a_bit_become_the_mask() -> None:
    rows = [("a", "within", 0), ("b", "exception", 250_000), ("c", "within", 0)]
    assert zero_term_mask(rows, {"a": 0, "b": 1}) == (1, rows[1:])
    assert zero_term_mask(rows, {"a": 3, "c": 5}) == (0b101000, [rows[1]])
    assert zero_term_mask(rows, {}) == (0, rows)
