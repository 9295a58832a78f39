"""Rule conditions: compiling a rule's `when` and testing it against a deal (conditions_hold)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from governance.engine.document import (
    ChoiceTerm,
    Condition,
    FlagTerm,
    NumberTerm,
    Operator,
    PlaybookDocument,
)
from governance.engine.numbers import to_decimal
from governance.engine.results import TermValue


# `operator.contains` takes its operands the other way round (container first).
def _in(a: object, b: Any) -> bool:
    return a in b


def _not_in(a: object, b: Any) -> bool:
    return a not in b


_OPERATORS: dict[Operator, Callable[[Any, Any], bool]] = {
    Operator.eq: operator.eq,
    Operator.ne: operator.ne,
    Operator.ge: operator.ge,
    Operator.gt: operator.gt,
    Operator.le: operator.le,
    Operator.lt: operator.lt,
    Operator.in_: _in,
    Operator.not_in: _not_in,
}


# A condition as the evaluator reads it: (on_term, name, test, expected value, numeric).
ConditionPlan = tuple[bool, str, Callable[[Any, Any], bool], Any, bool]


def conditions_hold(
    conditions: tuple[ConditionPlan, ...],
    terms: Mapping[str, TermValue],
    attributes: Mapping[str, object],
) -> bool:
    """Whether every condition holds for the deal; runs for every rule of every check."""
    for on_term, name, test, expected, numeric in conditions:
        actual: object = terms.get(name) if on_term else attributes.get(name)
        if actual is None:
            return False  # a condition on something the deal does not state is false
        if numeric and not isinstance(actual, Decimal):
            actual = to_decimal(actual)
            if actual is None:
                return False
        try:
            if not test(actual, expected):
                return False
        except (TypeError, ArithmeticError):
            return False  # mismatched types (text vs number) or a NaN: not met
    return True


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    on_term: bool
    name: str
    op: Operator
    test: Callable[[Any, Any], bool]
    value: Any
    numeric: bool

    @property
    def plan(self) -> ConditionPlan:
        return (self.on_term, self.name, self.test, self.value, self.numeric)

    def holds(self, terms: Mapping[str, TermValue], attributes: Mapping[str, object]) -> bool:
        return conditions_hold((self.plan,), terms, attributes)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    index: int
    key: str
    conditions: tuple[CompiledCondition, ...]
    shifts: tuple[tuple[str, Decimal], ...]
    approvers: tuple[tuple[str, int | None, str], ...]
    touches: frozenset[str]
    plan: tuple[ConditionPlan, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "plan", tuple(c.plan for c in self.conditions))

    def holds(self, terms: Mapping[str, TermValue], attributes: Mapping[str, object]) -> bool:
        return conditions_hold(self.plan, terms, attributes)


def compile_condition(cond: Condition, doc: PlaybookDocument) -> CompiledCondition:
    """A condition with its value coerced to what the deal's value will be compared with."""
    term = doc.term(cond.term) if cond.term is not None else None
    raw = cond.value
    values = raw if isinstance(raw, list) else [raw]
    numeric = False
    if isinstance(term, NumberTerm):
        coerced: list[Any] = [to_decimal(v) for v in values]
        numeric = True
    elif isinstance(term, ChoiceTerm):
        coerced = [str(v) for v in values]
    elif isinstance(term, FlagTerm):
        coerced = list(values)
    else:
        # Attribute: compare numerically when the rule's value is a number, else as text
        # (ISO dates compare correctly as text).
        decimals = [to_decimal(v) for v in values]
        if all(d is not None for d in decimals) and not any(isinstance(v, bool) for v in values):
            coerced, numeric = decimals, True
        else:
            coerced = [v if isinstance(v, bool) else str(v) for v in values]
    value: Any = frozenset(coerced) if isinstance(raw, list) else coerced[0]
    name = cond.term if cond.term is not None else cond.attribute
    assert name is not None
    return CompiledCondition(
        cond.term is not None, name, cond.op, _OPERATORS[cond.op], value, numeric
    )
