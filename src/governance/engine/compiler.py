"""Compile a playbook document into an immutable form that evaluates a deal quickly.

Everything that does not depend on the deal is worked out here once: values are normalised so
that "larger is worse" for every number term, approval chains are pre-deduplicated per tier,
choice and flag results are precomputed per value, missing-term results are prebuilt, and rules
are flattened into plain tuples (`rule_plan`, `trade_plan`) that the evaluator unpacks without
attribute lookups or method calls. Each term kind compiles in its own module (`numbers`,
`choices`, `flags`, on the shared base in `terms`); rule conditions compile in `conditions`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from decimal import Decimal
from typing import Any

from governance.engine.choices import CompiledChoice
from governance.engine.conditions import (
    CompiledCondition,
    CompiledRule,
    ConditionPlan,
    compile_condition,
)
from governance.engine.document import ChoiceTerm, NumberTerm, PlaybookDocument
from governance.engine.flags import CompiledFlag
from governance.engine.numbers import CompiledNumber
from governance.engine.results import Ask, EffectiveBand, TermResult, TermValue
from governance.engine.terms import ZERO, CompiledTerm
from governance.problems import Problem


class DealInputError(ValueError):
    """The deal's terms do not fit the playbook (unknown term, wrong type, unknown option)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = list(problems)


# How the evaluator walks the terms: (key, term, weight, touchable, precomputed, lower, good, edge,
# owner, priority, band), with good and edge the band's edges in the term's unit. `touchable`
# says whether any rule acts on the term. `precomputed` is None for numbers; the fields after it
# are only read for numbers (None for choices and flags).
TermPlan = tuple[
    str,
    CompiledTerm,
    Decimal,
    bool,
    dict[Any, TermResult] | None,
    bool | None,
    Decimal | None,
    Decimal | None,
    str,
    int,
    EffectiveBand | None,
]
# A rule as the evaluator applies it: (key, conditions, shifts, approvers, terms it touches).
RulePlan = tuple[
    str,
    tuple[ConditionPlan, ...],
    tuple[tuple[str, Decimal], ...],
    tuple[tuple[str, int | None, str], ...],
    tuple[str, ...],
]
# A condition of a trade rule: its plan, its operator as written, and the ready-made Ask (None
# for list values, whose Ask gets a fresh list each time so callers may keep or change it).
TradeCondition = tuple[ConditionPlan, str, Ask | None]
# A rule that widens a term, as a trade: (rule key, total shift on the term, conditions, the asks
# when they never vary, and the term's band edge in its unit, normalised edge and normalised
# walk-away after the shift, precomputed for the usual case where no fired rule already shifts
# the term).
TradePlan = tuple[
    str, Decimal, tuple[TradeCondition, ...], tuple[Ask, ...] | None, Decimal, Decimal, Decimal
]


def _trade_condition(condition: CompiledCondition) -> TradeCondition:
    value = condition.value
    ask = None if isinstance(value, frozenset) else Ask(condition.name, condition.op.value, value)
    return (condition.plan, condition.op.value, ask)


def _trade_plan(number: CompiledNumber, rule: CompiledRule, extra: Decimal) -> TradePlan:
    conditions = tuple(_trade_condition(c) for c in rule.conditions)
    # A one-condition rule that did not fire has exactly that condition unmet: its asks are
    # known ahead.
    (_, _, fixed), *others = conditions
    asks = (fixed,) if fixed is not None and not others and rule.conditions[0].on_term else None
    shift = ZERO + extra  # as the evaluator adds it up, so edges read back identically
    return (
        rule.key,
        extra,
        conditions,
        asks,
        number.edge_value(shift),
        max(number.edge + shift, number.good),
        max(number.walk + shift, number.good),
    )


class CompiledPlaybook:
    """An immutable, evaluation-ready playbook version."""

    __slots__ = (
        "_parsers",
        "_rule_plan",
        "_term_plan",
        "_trade_plan",
        "by_key",
        "document",
        "key",
        "rules",
        "scope",
        "terms",
        "total_weight",
        "trade_rules",
        "version",
    )

    def __init__(self, doc: PlaybookDocument, version: int) -> None:
        self.key = doc.key
        self.version = version
        self.document = doc
        self.scope = dict(doc.scope)
        compiled: list[CompiledTerm] = []
        for term in doc.terms:
            if isinstance(term, NumberTerm):
                compiled.append(CompiledNumber(term))
            elif isinstance(term, ChoiceTerm):
                compiled.append(CompiledChoice(term))
            else:
                compiled.append(CompiledFlag(term))
        compiled.sort(key=lambda t: t.priority)
        self.terms = tuple(compiled)
        self.by_key = {t.key: t for t in compiled}
        self.total_weight = sum((t.weight for t in compiled), ZERO)
        rules = []
        for index, rule in enumerate(doc.rules):
            shifts = tuple((a.term, a.shift) for a in rule.then if a.shift is not None)
            approvers = tuple(
                (a.term, a.tier, a.approver) for a in rule.then if a.approver is not None
            )
            rules.append(
                CompiledRule(
                    index,
                    rule.key,
                    tuple(compile_condition(c, doc) for c in rule.when),
                    shifts,
                    approvers,
                    frozenset(a.term for a in rule.then),
                )
            )
        self.rules = tuple(rules)
        # Rules that widen a number term are the trades a rep could ask for.
        trade_rules: dict[str, list[tuple[CompiledRule, Decimal]]] = {}
        for compiled_rule in self.rules:
            widen: dict[str, Decimal] = {}
            for term_key, shift in compiled_rule.shifts:
                widen[term_key] = widen.get(term_key, ZERO) + shift
            for term_key, total in widen.items():
                if total > 0:
                    trade_rules.setdefault(term_key, []).append((compiled_rule, total))
        self.trade_rules = {k: tuple(v) for k, v in trade_rules.items()}

        # Flat plans for the evaluator (see the type aliases above).
        touchable = {key for r in self.rules for key in r.touches}
        self._term_plan: tuple[TermPlan, ...] = tuple(
            (
                t.key,
                t,
                t.weight,
                t.key in touchable,
                None,
                t.lower,
                t.good_unit,
                t.edge_unit,
                t.owner,
                t.priority,
                t.plain_band,
            )
            if isinstance(t, CompiledNumber)
            else (
                t.key,
                t,
                t.weight,
                t.key in touchable,
                t.precomputed,
                None,
                None,
                None,
                t.owner,
                t.priority,
                None,
            )
            for t in compiled
        )
        self._rule_plan: tuple[RulePlan, ...] = tuple(
            (r.key, r.plan, r.shifts, r.approvers, tuple(dict.fromkeys(a.term for a in rule.then)))
            for r, rule in zip(self.rules, doc.rules, strict=True)
        )
        # Trades per term. A rule whose conditions are all on deal attributes can never be one:
        # had they held, it would have fired.
        self._trade_plan: dict[str, tuple[CompiledNumber, tuple[TradePlan, ...]]] = {}
        for key, candidates in self.trade_rules.items():
            number = self.by_key[key]
            assert isinstance(number, CompiledNumber)
            plans = tuple(
                _trade_plan(number, r, extra)
                for r, extra in candidates
                if any(c.on_term for c in r.conditions)
            )
            if plans:
                self._trade_plan[key] = (number, plans)
        self._parsers: dict[str, Callable[[object], TermValue]] = {t.key: t.parse for t in compiled}

    def ladder(self, term_key: str, fired: Collection[str]) -> tuple[str, ...]:
        """A term's whole approver ladder after the approver changes of the rules that fired.

        Escalation walks it: an overdue step goes to the next group on the deal's own ladder.
        """
        term = self.by_key[term_key]
        overrides: list[tuple[int | None, str]] = [
            (tier, group)
            for rule in self.rules
            if rule.key in fired
            for key, tier, group in rule.approvers
            if key == term_key
        ]
        return term._chain(len(term.approver_list), overrides or None)

    def parse_terms(self, raw: Mapping[str, object]) -> dict[str, TermValue]:
        """Typed term values from a deal's raw ones; nulls are missing. Raises DealInputError."""
        parsed: dict[str, TermValue] = {}
        parsers = self._parsers
        problems: list[Problem] | None = None
        for key, value in raw.items():
            parse = parsers.get(key)
            if parse is None:
                known = ", ".join(sorted(self.by_key))
                problems = problems or []
                problems.append(
                    Problem(
                        ("terms", key), f"unknown term {key!r}: playbook {self.key} knows {known}"
                    )
                )
                continue
            if value is None:
                continue
            try:
                parsed[key] = parse(value)
            except ValueError as exc:
                problems = problems or []
                problems.append(Problem(("terms", key), str(exc)))
        if problems:
            raise DealInputError(problems)
        return parsed


def compile_playbook(doc: PlaybookDocument, version: int) -> CompiledPlaybook:
    """Compile a semantically valid document (see `semantic_problems`)."""
    return CompiledPlaybook(doc, version)
