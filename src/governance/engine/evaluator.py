"""Evaluate a deal against a compiled playbook: a pure function, the service's hot path.

The loops below read the flat tuples `CompiledPlaybook` prepares (`_rule_plan`, `_term_plan`,
`_trade_plan`) and handle the common cases inline (no rule touched the term, a number inside its
band, a precomputed choice or flag) so a typical check makes few calls and allocations beyond the
result tuples themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from operator import itemgetter
from typing import Any, Final

from governance.engine.compiler import CompiledPlaybook, TradeCondition, TradePlan
from governance.engine.conditions import conditions_hold
from governance.engine.numbers import CompiledNumber, to_decimal
from governance.engine.results import (
    ApprovalStep,
    Ask,
    CheckResult,
    Status,
    TermResult,
    TermValue,
    Trade,
    Verdict,
)
from governance.engine.terms import ZERO

# Enum member lookups cost ~200 ns each on Python 3.11; the hot path uses these names.
_WITHIN, _BETTER, _EXCEPTION = Status.within, Status.better, Status.exception
_BLOCKED = Status.blocked
_AUTO, _NEEDS, _VERDICT_BLOCKED = Verdict.auto_approved, Verdict.needs_approval, Verdict.blocked

# NamedTuple's generated constructor handles keywords and is ~2x slower than this.
_new = tuple.__new__

# TermResult fields by position: indexing is faster than NamedTuple attribute access.
_VALUE: Final = 4
_STATUS: Final = 5
_VARIANCE: Final = 6
_RATIO: Final = 7
_APPROVERS: Final = 9
_variance_removed = itemgetter(8)  # of a Trade: a C-level sort key


def evaluate(
    compiled: CompiledPlaybook,
    terms: Mapping[str, TermValue],
    attributes: Mapping[str, object],
) -> CheckResult:
    """Check typed term values (see `CompiledPlaybook.parse_terms`) and deal attributes."""
    # Rules, in document order. Per touched term: [total shift, approver overrides, rule keys].
    get = terms.get
    fired: list[str] = []
    adjusted: dict[str, list[Any]] = {}
    for rule_key, conditions, shifts, approvers, touches in compiled._rule_plan:
        # `conditions_hold` written out: a call per rule is a measurable share of a check.
        for on_term, name, test, expected, numeric in conditions:
            actual: object = get(name) if on_term else attributes.get(name)
            if actual is None:
                break  # a condition on something the deal does not state is false
            if numeric and not isinstance(actual, Decimal):
                actual = to_decimal(actual)
                if actual is None:
                    break
            try:
                if not test(actual, expected):
                    break
            except (TypeError, ArithmeticError):
                break  # mismatched types (text vs number) or a NaN: not met
        else:
            _fire(rule_key, shifts, approvers, touches, fired, adjusted)

    # Terms, by priority.
    results: list[TermResult] = []
    append = results.append
    weighted = ZERO
    unstated: list[Decimal] = []  # weights of missing terms, left out of the score
    blocked = exception = False
    steps: dict[tuple[int, str], list[str]] = {}
    trades: list[Trade] = []
    trade_plan = compiled._trade_plan
    plan = compiled._term_plan
    for key, term, weight, touchable, precomputed, lower, good, edge, owner, priority, band in plan:
        value = get(key)
        adjustment = adjusted.get(key) if touchable and adjusted else None
        if value is None:
            append(
                term.missing_result
                if adjustment is None
                else term.missing(adjustment[2], adjustment[0])
            )
            unstated.append(weight)
            continue
        if adjustment is not None:
            shift = adjustment[0]
            result = term.evaluate(value, shift, adjustment[1], adjustment[2])
        elif precomputed is not None:
            shift = ZERO
            # Flags are keyed by bool: anything else takes the general (bool()) route.
            result = precomputed.get(value) or term.evaluate(value, ZERO, None, ())
        else:
            # An untouched number: the commonest case, inside its band, needs no call.
            shift = ZERO
            if (value <= edge) if lower else (value >= edge):  # type: ignore[operator]
                better = (value < good) if lower else (value > good)  # type: ignore[operator]
                append(
                    _new(
                        TermResult,
                        (
                            key,
                            "number",
                            owner,
                            priority,
                            value,
                            _BETTER if better else _WITHIN,
                            ZERO,
                            ZERO,
                            None,
                            (),
                            band,
                            (),
                        ),
                    )
                )
                continue
            result = term.outside(value)  # type: ignore[attr-defined]
        append(result)
        status = result[_STATUS]
        if status is _WITHIN or status is _BETTER:
            continue
        weighted += weight * result[_RATIO]
        if status is _BLOCKED:
            blocked = True
        else:
            exception = True
            # (step, group) keys sort into the order approval steps are listed in.
            for step_key in enumerate(result[_APPROVERS], 1):
                keys = steps.get(step_key)
                if keys is None:
                    steps[step_key] = [key]
                else:
                    keys.append(key)
        tradeable = trade_plan.get(key)
        if tradeable is not None:
            _add_trades(trades, *tradeable, result, fired, terms, attributes, shift)

    score = ZERO
    if weighted:
        # The mean's denominator only matters when some term is outside its band; Decimal
        # subtraction is costly enough to leave out of the loop.
        weights = compiled.total_weight
        for weight in unstated:
            weights -= weight
        score = weighted / weights
    approval_steps: list[ApprovalStep] = []
    if steps:
        for (step, group), keys in sorted(steps.items()):  # a plain loop: no comprehension frame
            approval_steps.append(_new(ApprovalStep, (group, step, tuple(keys))))
    return _new(
        CheckResult,
        (
            compiled.key,
            compiled.version,
            _VERDICT_BLOCKED if blocked else _NEEDS if exception else _AUTO,
            score,
            tuple(results),
            tuple(approval_steps),
            tuple(fired),
            tuple(trades),
        ),
    )


def _fire(
    rule_key: str,
    shifts: tuple[tuple[str, Decimal], ...],
    approvers: tuple[tuple[str, int | None, str], ...],
    touches: tuple[str, ...],
    fired: list[str],
    adjusted: dict[str, list[Any]],
) -> None:
    """Record a rule that fired: its shifts add up, its approver replacements queue in order."""
    fired.append(rule_key)
    for term_key in touches:
        adjustment = adjusted.get(term_key)
        if adjustment is None:
            adjusted[term_key] = [ZERO, None, (rule_key,)]
        else:
            adjustment[2] = (*adjustment[2], rule_key)
    for term_key, shift in shifts:
        adjusted[term_key][0] += shift
    for term_key, tier, group in approvers:
        adjustment = adjusted[term_key]
        if adjustment[1] is None:
            adjustment[1] = [(tier, group)]
        else:
            adjustment[1].append((tier, group))


def _add_trades(
    trades: list[Trade],
    term: CompiledNumber,
    candidates: tuple[TradePlan, ...],
    result: TermResult,
    fired: list[str],
    terms: Mapping[str, TermValue],
    attributes: Mapping[str, object],
    shift: Decimal,
) -> None:
    """Rules not yet fired that would shrink this term's variance if the customer gave them."""
    value: Decimal = result[_VALUE]  # type: ignore[assignment]
    x = value if term.lower else -value
    variance = result[_VARIANCE]
    good = term.good
    # Precomputed edges are for an untouched term; a shift that nets to zero (5 - 5.0 = 0.0) still
    # takes the general route so the edges read back exactly as that arithmetic gives them.
    plain = shift is ZERO
    edge_before = term.plain_edge_value if plain else term.edge_value(shift)
    found: list[Trade] = []
    for rule_key, extra, conditions, asks, edge_value, edge, walk in candidates:
        if rule_key in fired:
            continue
        if asks is None:
            asks = _asks(conditions, terms, attributes)
            if asks is None:
                continue
        if not plain:
            status_after, variance_after, _ = term.measure(x, shift + extra)
            edge_value = term.edge_value(shift + extra)
        elif x <= edge:  # `term.measure(x, extra)` with the edges precomputed
            status_after, variance_after = _BETTER if x < good else _WITHIN, ZERO
        else:
            status_after = _BLOCKED if x > walk else _EXCEPTION
            variance_after = x - edge
        if variance_after < variance:
            found.append(
                _new(
                    Trade,
                    (
                        term.key,
                        rule_key,
                        asks,
                        edge_before,
                        edge_value,
                        status_after,
                        variance,
                        variance_after,
                        variance - variance_after,
                        status_after is _WITHIN or status_after is _BETTER,
                    ),
                )
            )
    if len(found) > 1:
        # Most variance removed first; reverse sorting is still stable, so ties keep rule order.
        found.sort(key=_variance_removed, reverse=True)
    trades.extend(found)


def _asks(
    conditions: tuple[TradeCondition, ...],
    terms: Mapping[str, TermValue],
    attributes: Mapping[str, object],
) -> tuple[Ask, ...] | None:
    """What the deal would have to give for every condition to hold; None if it cannot."""
    asks: list[Ask] = []
    for plan, op, ask in conditions:
        if conditions_hold((plan,), terms, attributes):
            continue
        if not plan[0]:
            return None  # deal attributes (segment, region…) are not the rep's to trade
        # A list condition reads back as a fresh sorted list.
        asks.append(ask or _new(Ask, (plan[1], op, sorted(plan[3]))))
    return tuple(asks)
