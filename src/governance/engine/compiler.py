"""Compile a playbook document into an immutable form that evaluates a deal quickly.

Everything that does not depend on the deal is worked out here once: values are normalised so
that "larger is worse" for every number term, approval chains are pre-deduplicated per tier,
choice and flag results are precomputed per value, missing-term results are prebuilt, and rules
are flattened into plain tuples (`rule_plan`, `trade_plan`) that the evaluator unpacks without
attribute lookups or method calls.
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from governance.engine.document import (
    ChoiceTerm,
    Condition,
    Direction,
    FlagTerm,
    NumberTerm,
    Operator,
    PlaybookDocument,
    Problem,
)
from governance.engine.results import Ask, EffectiveBand, Status, TermResult, TermValue

ZERO = Decimal(0)
ONE = Decimal(1)

# Deal numbers must be below 10**MAX_DIGITS in size. Anything larger is not a commercial term,
# and refusing it here keeps every later subtraction and weighted sum far from Decimal's exponent
# limit, so `evaluate` can never raise Overflow for a value `parse_terms` accepted.
MAX_DIGITS = 18
# ... and have at most this many decimal places ("1e-999999999" would be a billion-digit text).
MAX_PLACES = 12
PLACES_QUANTUM = Decimal(1).scaleb(-MAX_PLACES)

# Enum member lookups cost ~200 ns each on Python 3.11; the hot path uses these names.
_WITHIN, _BETTER, _EXCEPTION = Status.within, Status.better, Status.exception
_BLOCKED, _MISSING = Status.blocked, Status.missing

# NamedTuple's generated constructor handles keywords and is ~2x slower than this.
_new = tuple.__new__

# (shift, edge, walk-away, tier limits, span, band) of a number term after a shift.
ShiftedGeometry = tuple[Decimal, Decimal, Decimal, tuple[Decimal, ...], Decimal, EffectiveBand]
_MAX_SHIFTED = 64


class DealInputError(ValueError):
    """The deal's terms do not fit the playbook (unknown term, wrong type, unknown option)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = list(problems)


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


def _dedupe(groups: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(groups))


def _to_decimal(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int | float | str):
        try:
            parsed = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            return None
        return parsed if parsed.is_finite() else None
    return None


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
            actual = _to_decimal(actual)
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


class CompiledTerm(ABC):
    """Base for compiled terms; subclasses evaluate one value."""

    __slots__ = (
        "approver_list",
        "key",
        "kind",
        "missing_result",
        "owner",
        "precomputed",
        "priority",
        "weight",
    )

    def __init__(
        self, key: str, kind: str, owner: str, priority: int, approvers: list[str]
    ) -> None:
        self.key = key
        self.kind = kind
        self.owner = owner
        self.priority = priority
        self.weight = ONE / Decimal(priority)
        self.approver_list = approvers
        # Results per value for terms whose outcome never depends on the value's size (choices
        # and flags); None for numbers.
        self.precomputed: dict[Any, TermResult] | None = None

    def _finish(self) -> None:
        """Prebuild what subclasses can only build once their own fields are set."""
        self.missing_result = self.missing(())

    def _chain(
        self, reached: int, overrides: list[tuple[int | None, str]] | None
    ) -> tuple[str, ...]:
        approvers = list(self.approver_list)
        if overrides:
            for tier, group in overrides:
                if tier is None:
                    approvers = [group] * len(approvers)
                else:
                    approvers[tier - 1] = group
        return _dedupe(approvers[:reached])

    def missing(self, rules: tuple[str, ...], shift: Decimal = ZERO) -> TermResult:
        """A term the deal does not state, with its band after any rules that fired."""
        return _new(
            TermResult,
            (
                self.key,
                self.kind,
                self.owner,
                self.priority,
                None,
                _MISSING,
                ZERO,
                ZERO,
                None,
                (),
                self.band(shift),
                rules,
            ),
        )

    @abstractmethod
    def band(self, shift: Decimal) -> EffectiveBand:
        """Implemented by each kind."""

    @abstractmethod
    def parse(self, raw: object) -> TermValue:
        """Implemented by each kind."""

    @abstractmethod
    def evaluate(
        self,
        value: TermValue,
        shift: Decimal,
        overrides: list[tuple[int | None, str]] | None,
        rules: tuple[str, ...],
    ) -> TermResult:
        """Implemented by each kind."""

    @abstractmethod
    def severity(self, value: TermValue) -> Decimal:
        """How bad `value` is for us: larger is worse, comparable only within this term."""

    def no_worse(self, value: TermValue, than: TermValue) -> bool:
        """True when `value` is at least as good for us as `than` (smart re-approval)."""
        return self.severity(value) <= self.severity(than)


class CompiledNumber(CompiledTerm):
    """A number term in normalised space: x = sign·v, so larger x is always worse for us."""

    __slots__ = (
        "chains",
        "edge",
        "edge_unit",
        "good",
        "good_unit",
        "limits",
        "lower",
        "plain_band",
        "plain_edge_value",
        "shifted",
        "span",
        "walk",
    )

    def __init__(self, term: NumberTerm) -> None:
        super().__init__(
            term.key, "number", term.owner, term.priority, [t.approver for t in term.tiers]
        )
        self.lower = term.direction is Direction.lower_is_better
        sign = 1 if self.lower else -1
        self.good = sign * (term.band.low if self.lower else term.band.high)
        self.edge = sign * term.band_edge()
        self.walk = sign * term.effective_walk_away()
        self.limits = tuple(sign * t.limit for t in term.tiers)
        self.span = self.walk - self.edge
        self.chains = tuple(_dedupe(self.approver_list[: i + 1]) for i in range(len(self.limits)))
        self.plain_band = self._band(self.good, self.edge, self.walk)
        # The band's edges in the term's own unit, so the evaluator can tell "inside the band"
        # without negating the value of a higher-is-better term.
        self.edge_unit = term.band_edge()
        self.good_unit = term.band.low if self.lower else term.band.high
        self.plain_edge_value = self.edge_value(ZERO)
        # Shifted geometry per combination of fired rules (see `_geometry`).
        self.shifted: dict[tuple[str, ...], ShiftedGeometry] = {}
        self._finish()

    def _band(self, good: Decimal, edge: Decimal, walk: Decimal) -> EffectiveBand:
        if self.lower:
            return EffectiveBand(low=good, high=edge, walk_away=walk)
        return EffectiveBand(low=-edge, high=-good, walk_away=-walk)

    def band(self, shift: Decimal) -> EffectiveBand:
        if not shift:
            return self.plain_band
        good = self.good
        return self._band(good, max(self.edge + shift, good), max(self.walk + shift, good))

    def edge_value(self, shift: Decimal) -> Decimal:
        """The band's worse edge in the term's own unit after `shift`."""
        edge = max(self.edge + shift, self.good)
        return edge if self.lower else -edge

    def parse(self, raw: object) -> TermValue:
        # Exact-type fast paths for what JSON and parsed payloads carry; subclasses and
        # anything else take the general route.
        kind = type(raw)
        if kind is Decimal:
            value: Decimal | None = raw  # type: ignore[assignment]
        elif kind is int:
            value = Decimal(raw)  # type: ignore[arg-type]
        elif kind is str:
            try:
                value = Decimal(raw.strip())  # type: ignore[attr-defined]
            except (InvalidOperation, ValueError):
                value = None
        else:
            value = _to_decimal(raw)
        if value is None or not value.is_finite():
            raise ValueError(f"{self.key} is a number term; {raw!r} is not a finite number")
        if value and value.adjusted() >= MAX_DIGITS:
            raise ValueError(
                f"{self.key}: {raw!r} is out of range; numbers must be below 10^{MAX_DIGITS}"
            )
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -MAX_PLACES:
            if value != value.quantize(PLACES_QUANTUM):
                raise ValueError(f"{self.key}: {raw!r} has more than {MAX_PLACES} decimal places")
            value = value.quantize(PLACES_QUANTUM)
        return value

    def severity(self, value: TermValue) -> Decimal:
        number = self.parse(value)
        assert isinstance(number, Decimal)
        return number if self.lower else -number

    def measure(self, x: Decimal, shift: Decimal) -> tuple[Status, Decimal, int | None]:
        """Status, variance and tier reached for a normalised value under `shift`."""
        edge = self.edge
        if shift:
            good = self.good
            edge = max(edge + shift, good)
            walk = max(self.walk + shift, good)
        else:
            walk = self.walk
        if x <= edge:
            return (_BETTER if x < self.good else _WITHIN), ZERO, None
        variance = x - edge
        if x > walk:
            return _BLOCKED, variance, None
        tier = 1
        for limit in self.limits:
            if shift:
                limit = max(limit + shift, self.good)
            if x <= limit:
                break
            tier += 1
        return _EXCEPTION, variance, tier

    def evaluate(
        self,
        value: TermValue,
        shift: Decimal,
        overrides: list[tuple[int | None, str]] | None,
        rules: tuple[str, ...],
    ) -> TermResult:
        x: Decimal = value if self.lower else -value  # type: ignore[assignment,operator]
        if shift:
            return self._evaluate_shifted(value, x, shift, overrides, rules)
        if x <= self.edge:
            return _new(
                TermResult,
                (
                    self.key,
                    "number",
                    self.owner,
                    self.priority,
                    value,
                    _BETTER if x < self.good else _WITHIN,
                    ZERO,
                    ZERO,
                    None,
                    (),
                    self.plain_band,
                    rules,
                ),
            )
        return self.outside(value, x, overrides, rules)

    def outside(
        self,
        value: TermValue,
        x: Decimal | None = None,
        overrides: list[tuple[int | None, str]] | None = None,
        rules: tuple[str, ...] = (),
    ) -> TermResult:
        """An unshifted value past the band edge (x > edge): an exception or blocked."""
        if x is None:
            x = value if self.lower else -value  # type: ignore[assignment,operator]
            assert x is not None
        variance = x - self.edge
        if x > self.walk:
            return _new(
                TermResult,
                (
                    self.key,
                    "number",
                    self.owner,
                    self.priority,
                    value,
                    _BLOCKED,
                    variance,
                    variance / self.span if self.span else ONE,
                    None,
                    (),
                    self.plain_band,
                    rules,
                ),
            )
        tier = 1
        for limit in self.limits:
            if x <= limit:
                break
            tier += 1
        return _new(
            TermResult,
            (
                self.key,
                "number",
                self.owner,
                self.priority,
                value,
                _EXCEPTION,
                variance,
                variance / self.span,
                tier,
                self._chain(tier, overrides) if overrides else self.chains[tier - 1],
                self.plain_band,
                rules,
            ),
        )

    def _geometry(self, shift: Decimal, rules: tuple[str, ...]) -> ShiftedGeometry:
        """Edge, walk-away, tier limits, span and band after `shift`, normalised.

        The same rules always add up to the same shift, so the result is kept per combination of
        fired rules (a handful per playbook; capped in case rules combine in many ways).
        """
        cached = self.shifted.get(rules)
        if cached is not None and cached[0] == shift:
            return cached
        good = self.good
        edge = max(self.edge + shift, good)
        walk = max(self.walk + shift, good)
        # Shifting moves the edge and walk-away together, so the span only changes when clamped.
        geometry = (
            shift,
            edge,
            walk,
            tuple(max(limit + shift, good) for limit in self.limits),
            walk - edge,
            self._band(good, edge, walk),
        )
        if cached is None and len(self.shifted) < _MAX_SHIFTED:
            self.shifted[rules] = geometry
        return geometry

    def _evaluate_shifted(
        self,
        value: TermValue,
        x: Decimal,
        shift: Decimal,
        overrides: list[tuple[int | None, str]] | None,
        rules: tuple[str, ...],
    ) -> TermResult:
        _, edge, walk, limits, span, band = self._geometry(shift, rules)
        if x <= edge:
            return _new(
                TermResult,
                (
                    self.key,
                    "number",
                    self.owner,
                    self.priority,
                    value,
                    _BETTER if x < self.good else _WITHIN,
                    ZERO,
                    ZERO,
                    None,
                    (),
                    band,
                    rules,
                ),
            )
        variance = x - edge
        if x > walk:
            status = _BLOCKED
            tier: int | None = None
            approvers: tuple[str, ...] = ()
        else:
            status = _EXCEPTION
            tier = 1
            for limit in limits:
                if x <= limit:
                    break
                tier += 1
            approvers = self._chain(tier, overrides) if overrides else self.chains[tier - 1]
        return _new(
            TermResult,
            (
                self.key,
                "number",
                self.owner,
                self.priority,
                value,
                status,
                variance,
                variance / span if span else ONE,
                tier,
                approvers,
                band,
                rules,
            ),
        )


class CompiledChoice(CompiledTerm):
    """A choice term: every option's result is known ahead; rules can only swap approvers."""

    __slots__ = ("outcomes", "plain_band", "ranks")

    def __init__(self, term: ChoiceTerm) -> None:
        super().__init__(
            term.key, "choice", term.owner, term.priority, [t.approver for t in term.tiers]
        )
        rank = {o: i for i, o in enumerate(term.options)}
        self.ranks = {o: Decimal(i) for o, i in rank.items()}
        best_allowed = min(rank[o] for o in term.band.allowed)
        steps = Decimal(len(term.tiers) + 1)
        self.outcomes: dict[str, tuple[Status, Decimal, Decimal, int | None]] = {}
        for option in term.options:
            if option in term.band.allowed:
                self.outcomes[option] = (_WITHIN, ZERO, ZERO, None)
            elif rank[option] < best_allowed:
                self.outcomes[option] = (_BETTER, ZERO, ZERO, None)
            else:
                reached = next(
                    (i + 1 for i, t in enumerate(term.tiers) if option in t.options), None
                )
                if reached is None:
                    self.outcomes[option] = (_BLOCKED, steps, ONE, None)
                else:
                    count = Decimal(reached)
                    self.outcomes[option] = (_EXCEPTION, count, count / steps, reached)
        self.plain_band = EffectiveBand(allowed=tuple(term.band.allowed))
        self.precomputed = {o: self._result(o, None, ()) for o in term.options}
        self._finish()

    def band(self, shift: Decimal) -> EffectiveBand:
        return self.plain_band

    def parse(self, raw: object) -> TermValue:
        if not isinstance(raw, str) or raw not in self.outcomes:
            raise ValueError(
                f"{raw!r} is not an option of {self.key}; options are {list(self.outcomes)}"
            )
        return raw

    def severity(self, value: TermValue) -> Decimal:
        return self.ranks[str(self.parse(value))]

    def _result(
        self, option: str, overrides: list[tuple[int | None, str]] | None, rules: tuple[str, ...]
    ) -> TermResult:
        status, variance, ratio, tier = self.outcomes[option]
        approvers = self._chain(tier, overrides) if tier is not None else ()
        return TermResult(
            self.key,
            "choice",
            self.owner,
            self.priority,
            option,
            status,
            variance,
            ratio,
            tier,
            approvers,
            self.plain_band,
            rules,
        )

    def evaluate(
        self,
        value: TermValue,
        shift: Decimal,
        overrides: list[tuple[int | None, str]] | None,
        rules: tuple[str, ...],
    ) -> TermResult:
        if rules:
            return self._result(value, overrides, rules)  # type: ignore[arg-type]
        assert self.precomputed is not None
        return self.precomputed[value]


class CompiledFlag(CompiledTerm):
    """A flag term: within at its preferred value, otherwise every tier in order (or blocked)."""

    __slots__ = ("plain_band", "preferred")

    def __init__(self, term: FlagTerm) -> None:
        super().__init__(
            term.key, "flag", term.owner, term.priority, [t.approver for t in term.tiers]
        )
        self.preferred = term.preferred
        self.plain_band = EffectiveBand(preferred=term.preferred)
        self.precomputed = {v: self._result(v, None, ()) for v in (True, False)}
        self._finish()

    def band(self, shift: Decimal) -> EffectiveBand:
        return self.plain_band

    def parse(self, raw: object) -> TermValue:
        if raw is True or raw is False:
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ValueError(f"{self.key} is a flag term; {raw!r} is not true or false")

    def severity(self, value: TermValue) -> Decimal:
        return ZERO if self.parse(value) == self.preferred else ONE

    def _result(
        self, value: bool, overrides: list[tuple[int | None, str]] | None, rules: tuple[str, ...]
    ) -> TermResult:
        if value == self.preferred:
            return TermResult(
                self.key,
                "flag",
                self.owner,
                self.priority,
                value,
                _WITHIN,
                ZERO,
                ZERO,
                None,
                (),
                self.plain_band,
                rules,
            )
        tiers = len(self.approver_list)
        steps = Decimal(tiers + 1)
        if not tiers:
            return TermResult(
                self.key,
                "flag",
                self.owner,
                self.priority,
                value,
                _BLOCKED,
                steps,
                ONE,
                None,
                (),
                self.plain_band,
                rules,
            )
        count = Decimal(tiers)
        return TermResult(
            self.key,
            "flag",
            self.owner,
            self.priority,
            value,
            _EXCEPTION,
            count,
            count / steps,
            tiers,
            self._chain(tiers, overrides),
            self.plain_band,
            rules,
        )

    def evaluate(
        self,
        value: TermValue,
        shift: Decimal,
        overrides: list[tuple[int | None, str]] | None,
        rules: tuple[str, ...],
    ) -> TermResult:
        if rules:
            return self._result(bool(value), overrides, rules)
        assert self.precomputed is not None
        return self.precomputed[bool(value)]


def _compile_condition(cond: Condition, doc: PlaybookDocument) -> CompiledCondition:
    term = doc.term(cond.term) if cond.term is not None else None
    raw = cond.value
    values = raw if isinstance(raw, list) else [raw]
    numeric = False
    if isinstance(term, NumberTerm):
        coerced: list[Any] = [_to_decimal(v) for v in values]
        numeric = True
    elif isinstance(term, ChoiceTerm):
        coerced = [str(v) for v in values]
    elif isinstance(term, FlagTerm):
        coerced = list(values)
    else:
        # Attribute: compare numerically when the rule's value is a number, else as text
        # (ISO dates compare correctly as text).
        decimals = [_to_decimal(v) for v in values]
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
                    tuple(_compile_condition(c, doc) for c in rule.when),
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
