"""The cost expression language: arithmetic, precedence, unknowns and clear parse errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.driver import discount_term

from governance.engine.document import PlaybookDocument, semantic_problems
from governance.engine.expression import MAX_DEPTH, MAX_LENGTH, ExpressionError, parse

D = Decimal


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", D(7)),
        ("(1 + 2) * 3", D(9)),
        ("10 - 4 - 3", D(3)),  # left-associative
        ("24 / 4 / 2", D(3)),
        ("-2 * -3", D(6)),
        ("--5", D(5)),
        ("0.1 + 0.2", D("0.3")),  # exact decimals, not floats
        ("value / 100 * amount", D(15000)),
        ("value * amount / 12", D("125000")),
        ("min(value, 10) + max(amount, 0)", D(100010)),
        ("min(1, 2) * max(-1, -2)", D(-1)),
        ("value/365*amount*0.05", D("205.4794520547945205479452054794520547945205479452")),
    ],
)
def test_evaluates(text: str, expected: Decimal) -> None:
    assert parse(text).evaluate({"value": D(15), "amount": D(100000)}) == expected


def test_lists_the_variables_it_reads() -> None:
    assert parse("value * amount / 12 + min(x, 3)").variables == {"value", "amount", "x"}
    # `min` without a call is an ordinary name.
    assert parse("min + 1").variables == {"min"}


@pytest.mark.parametrize(
    "text", ["amount * value", "1 / 0", "0 / 0", "amount / (amount - amount)", "min(1, missing)"]
)
def test_unknowns_give_none(text: str) -> None:
    # A missing variable or a division by zero is an unknown figure, not an error.
    assert parse(text).evaluate({"amount": D(3)}) is None


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("", 0, "empty"),
        ("1 +", 3, "ends too early"),
        ("1 + * 2", 4, "expected a number"),
        ("(1 + 2", 6, "expected ')'"),
        ("1 2", 2, "expected an operator"),
        ("amount $ 2", 7, "unexpected character '$'"),
        ("Amount", 0, "unexpected character 'A'"),
        ("amoUnt", 3, "lower_snake_case"),
        ("1.2.3", 3, "one decimal point"),
        ("max(1)", 5, "expected ','"),
        ("__import__('os')", 0, "unexpected character '_'"),
        ("value ** 2", 7, "expected a number"),
        ("1e9", 1, "expected an operator"),
    ],
)
def test_parse_errors_name_the_position(text: str, position: int, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert caught.value.position == position
    assert message in str(caught.value)


def test_caps_length_and_depth() -> None:
    with pytest.raises(ExpressionError, match="at most 500 characters"):
        parse("1+" * 250 + "1")
    assert len("1+" * 249 + "1") <= MAX_LENGTH
    parse("1+" * 249 + "1")
    parse("(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH)
    with pytest.raises(ExpressionError, match="nested more than"):
        parse("(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(ExpressionError, match="nested more than"):
        parse("-" * (MAX_DEPTH + 1) + "1")
    with pytest.raises(ExpressionError, match="at most 30 digits"):
        parse("1" * 31)


decimals = st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False)


@given(decimals, decimals)
def test_matches_decimal_arithmetic(a: Decimal, b: Decimal) -> None:
    variables = {"a": a, "b": b}
    assert parse("a + b * 2").evaluate(variables) == a + b * 2
    assert parse("-(a - b)").evaluate(variables) == b - a
    assert parse("max(a, b) - min(a, b)").evaluate(variables) == abs(a - b)
    quotient = parse("a / b").evaluate(variables)
    if b == 0:
        assert quotient is None
    else:
        assert quotient is not None
        assert abs(quotient * b - a) < D("1e-30")


def _doc(cost: str | None) -> PlaybookDocument:
    term = discount_term()
    if cost is not None:
        term["cost"] = cost
    return PlaybookDocument.model_validate({"key": "p", "name": "P", "terms": [term]})


def test_a_playbook_names_the_cost_that_does_not_parse() -> None:
    problems = semantic_problems(_doc("value / 100 * * amount"))
    assert [(p.loc, p.message) for p in problems] == [
        (
            ("terms", 0, "cost"),
            "cost: expected a number, a name or '(', found '*' (at position 14)",
        )
    ]
    assert semantic_problems(_doc("value / 100 * amount")) == []


def test_documents_without_cost_dump_as_before() -> None:
    # Stored documents (and their hashes) are dumped without nulls, so adding the field changes
    # nothing for playbooks that do not use it.
    assert "cost" not in _doc(None).model_dump(mode="json", exclude_none=True)["terms"][0]


@pytest.mark.parametrize("text", ["²", "1²", "1١", "١٢"])
def test_digits_other_than_ascii_are_refused_not_crashed(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse(text)
