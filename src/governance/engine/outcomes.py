"""What a closed deal's terms say: per term what was offered, conceded, held and what it cost.

Pure, like the rest of the engine. The opening and the target come from the playbook document
as declared, so a deal that used a rule's wider band still shows what it gave against the
standard; the walk-away is the check's effective one (after the rules that fired), the bottom
line the check itself judged the term against, so the check and the outcome name the same one.

- `conceded` is the distance from the opening toward the walk-away, in the term's unit (option
  rank steps for choices, 0 or 1 for flags), and 0 when the final value is better than the
  opening. `conceded_share` divides it by the opening-to-walk-away range (0 = held the opening,
  1 = at the bottom line, above 1 beyond it).
- `held` is true when the final value is at or better than the target.
- `cost` is the money conceded: the term's cost expression at the final value minus at the
  opening (other terms keep their final values, so it is this term's own share), rounded to 8
  places.
- `gets` are inferred trades: for a conceded term, the terms named by the conditions of the
  rules that fired and widened it (the rep gave the concession and got, say, 36 months).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

from governance.engine.compiler import CompiledPlaybook
from governance.engine.document import ChoiceTerm, Direction, FlagTerm, NumberTerm
from governance.engine.evaluator import evaluate
from governance.engine.expression import Expression, parse
from governance.engine.results import CheckResult, EffectiveBand, Status, TermValue, Verdict

ZERO = Decimal(0)
ONE = Decimal(1)
MONEY_PLACES = Decimal("0.00000001")

AnyTerm = NumberTerm | ChoiceTerm | FlagTerm


@dataclass(frozen=True, slots=True)
class TermOutcome:
    """One stated term of a closed deal."""

    key: str
    kind: str
    unit: str | None
    opening: TermValue | None
    target: TermValue | None
    walk_away: TermValue | None
    final: TermValue
    status: Status
    variance_ratio: Decimal
    conceded: Decimal | None
    conceded_share: Decimal | None
    held: bool | None
    cost: Decimal | None
    gets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OutcomeFigures:
    """Every stated term's figures (by priority), and the deal's totals."""

    playbook: str
    version: int
    verdict: Verdict
    variance_score: Decimal
    terms: tuple[TermOutcome, ...]
    cost: Decimal | None

    def term(self, key: str) -> TermOutcome | None:
        return next((t for t in self.terms if t.key == key), None)

    @property
    def conceded_terms(self) -> int:
        """How many terms gave something away (a conceded share above 0)."""
        return sum(1 for t in self.terms if t.conceded_share)

    @property
    def missed_targets(self) -> int:
        """How many terms closed short of their target."""
        return sum(1 for t in self.terms if t.held is False)


# Playbooks declare a handful of expressions and compiled versions are cached forever, so the
# parsed trees are too.
parse_cost = lru_cache(maxsize=4096)(parse)


def choice_walk_away(term: ChoiceTerm) -> str:
    """The declared walk-away, else the worst option any tier covers, else the worst allowed."""
    if term.walk_away is not None:
        return term.walk_away
    rank = {o: i for i, o in enumerate(term.options)}
    tiered = [o for tier in term.tiers for o in tier.options if o in rank]
    candidates = tiered or [o for o in term.band.allowed if o in rank]
    return max(candidates, key=rank.__getitem__)


def numeric_value(term: AnyTerm, value: TermValue) -> Decimal:
    """A value as cost expressions see it: numbers as they are, flags 1 when off the preferred
    value (else 0), choices the option's rank (0 = best)."""
    if isinstance(term, NumberTerm):
        assert isinstance(value, Decimal)
        return value
    if isinstance(term, FlagTerm):
        return ZERO if value == term.preferred else ONE
    return Decimal(term.options.index(str(value)))


def range_of(term: AnyTerm) -> tuple[TermValue | None, TermValue | None, TermValue | None]:
    """(opening, target, walk-away) as the document declares them; flags open at preferred."""
    if isinstance(term, NumberTerm):
        return term.opening, term.target, term.effective_walk_away()
    if isinstance(term, ChoiceTerm):
        return term.opening, term.target, choice_walk_away(term)
    return term.preferred, term.preferred, not term.preferred


def _worse_by(term: AnyTerm, value: TermValue, than: TermValue) -> Decimal:
    """How much worse `value` is than `than`, in the unit (negative when better)."""
    if isinstance(term, NumberTerm):
        assert isinstance(value, Decimal)
        assert isinstance(than, Decimal)
        difference = value - than
        return difference if term.direction is Direction.lower_is_better else -difference
    return numeric_value(term, value) - numeric_value(term, than)


def _variables(
    compiled: CompiledPlaybook, final: Mapping[str, TermValue], attributes: Mapping[str, object]
) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for name, value in attributes.items():
        if isinstance(value, Decimal) and value.is_finite():
            out[name] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = Decimal(str(value))
    document = compiled.document
    for key, value in final.items():
        term = document.term(key)
        if term is not None:
            out[key] = numeric_value(term, value)
    return out


# Money columns hold 16 integer digits; a cost beyond that is a nonsense expression, not money.
MAX_COST = Decimal(10) ** 15


def _cost(
    expression: Expression,
    term: AnyTerm,
    final: TermValue,
    opening: TermValue | None,
    variables: dict[str, Decimal],
) -> Decimal | None:
    if opening is None:  # no opening, no concession to price (as `conceded` is unknown too)
        return None
    at_final = expression.evaluate({**variables, "value": numeric_value(term, final)})
    at_opening = expression.evaluate({**variables, "value": numeric_value(term, opening)})
    if at_final is None or at_opening is None:
        return None
    # A final better than the opening conceded nothing: it costs nothing (not a gain that
    # would hide other concessions). Amounts beyond what money columns hold are unknown.
    money = max(at_final - at_opening, ZERO)
    if money >= MAX_COST:
        return None
    return money.quantize(MONEY_PLACES, ROUND_HALF_EVEN)


def _inferred_gets(compiled: CompiledPlaybook, key: str, fired: tuple[str, ...]) -> tuple[str, ...]:
    widening = {rule.key: rule for rule, _ in compiled.trade_rules.get(key, ())}
    gets: list[str] = []
    for rule_key in fired:
        rule = widening.get(rule_key)
        if rule is None:
            continue
        for condition in rule.conditions:
            if condition.on_term and condition.name != key and condition.name not in gets:
                gets.append(condition.name)
    return tuple(gets)


def measure_term(
    compiled: CompiledPlaybook,
    key: str,
    final: TermValue,
    variables: Mapping[str, Decimal],
    status: Status,
    variance_ratio: Decimal,
    rules: tuple[str, ...] = (),
    band: EffectiveBand | None = None,
) -> TermOutcome:
    """The figures of one stated term (see the module docstring); `band` is the term's effective
    band in the check of these final terms."""
    term = compiled.document.term(key)
    if term is None:
        raise KeyError(key)
    opening, target, walk_away = range_of(term)
    if isinstance(term, NumberTerm) and band is not None and band.walk_away is not None:
        walk_away = band.walk_away
    conceded = share = None
    if opening is not None:
        conceded = max(_worse_by(term, final, opening), ZERO)
        assert walk_away is not None
        span = abs(_worse_by(term, walk_away, opening))
        share = conceded / span if span else None
    held = None if target is None else _worse_by(term, final, target) <= 0
    cost = None
    if term.cost is not None:
        cost = _cost(parse_cost(term.cost), term, final, opening, dict(variables))
    gets = _inferred_gets(compiled, key, rules) if conceded else ()
    return TermOutcome(
        key=key,
        kind=term.kind,
        unit=term.unit if isinstance(term, NumberTerm) else None,
        opening=opening,
        target=target,
        walk_away=walk_away,
        final=final,
        status=status,
        variance_ratio=variance_ratio,
        conceded=conceded,
        conceded_share=share,
        held=held,
        cost=cost,
        gets=gets,
    )


def measure(
    compiled: CompiledPlaybook,
    final: Mapping[str, TermValue],
    attributes: Mapping[str, object],
    result: CheckResult | None = None,
) -> OutcomeFigures:
    """Figures for every stated final term (typed, see `CompiledPlaybook.parse_terms`).

    `result` is the check of exactly these final terms and attributes; it is evaluated here when
    not given.
    """
    if result is None:
        result = evaluate(compiled, final, attributes)
    variables = _variables(compiled, final, attributes)
    terms: list[TermOutcome] = []
    total: Decimal | None = None
    for checked in result.terms:
        if checked.status is Status.missing or checked.value is None:
            continue
        outcome = measure_term(
            compiled,
            checked.key,
            checked.value,
            variables,
            checked.status,
            checked.variance_ratio,
            checked.rules,
            checked.band,
        )
        terms.append(outcome)
        if outcome.cost is not None:
            total = outcome.cost if total is None else total + outcome.cost
    return OutcomeFigures(
        playbook=result.playbook,
        version=result.version,
        verdict=result.verdict,
        variance_score=result.variance_score,
        terms=tuple(terms),
        cost=total,
    )
