"""The playbook document: the YAML/JSON contract leadership edits and the engine compiles.

Structural rules (types, key shapes) live on the models; cross-field rules (band inside walk-away,
monotonic tiers, unique priorities, rules naming known terms) live in `semantic_problems`, which
returns every problem with the exact path of the offending field.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
)

from governance.engine.expression import MAX_LENGTH, ExpressionError
from governance.engine.expression import parse as parse_expression
from governance.number_text import (
    number_from_text,
    text_checked,
    to_decimal,
)
from governance.problems import Loc, Problem

KEY_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
PLAYBOOK_KEY_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"

TermKey = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
PlaybookKey = Annotated[str, StringConstraints(pattern=PLAYBOOK_KEY_PATTERN)]
GroupName = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
AttributeName = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Option = Annotated[str, StringConstraints(min_length=1, max_length=100)]


Amount = Annotated[
    Decimal,
    Field(allow_inf_nan=False, max_digits=24, decimal_places=8),
    BeforeValidator(number_from_text),
]
ScopeValue = Annotated[str, StringConstraints(min_length=1, max_length=100)]
# Left to right: real booleans, then anything that reads as a number (so "36" and 36 agree after
# a JSON round trip), then text.
ConditionScalar = Annotated[
    StrictBool | Amount | Option, Field(union_mode="left_to_right"), AfterValidator(text_checked)
]


class Direction(StrEnum):
    lower_is_better = "lower_is_better"
    higher_is_better = "higher_is_better"


class Operator(StrEnum):
    eq = "=="
    ne = "!="
    ge = ">="
    gt = ">"
    le = "<="
    lt = "<"
    in_ = "in"
    not_in = "not_in"


ORDERING_OPERATORS = frozenset({Operator.ge, Operator.gt, Operator.le, Operator.lt})
LIST_OPERATORS = frozenset({Operator.in_, Operator.not_in})


class DocumentModel(BaseModel):
    """Base for document parts: unknown fields are refused so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class NumberBand(DocumentModel):
    low: Amount
    high: Amount


class NumberTier(DocumentModel):
    limit: Amount
    approver: GroupName


class ChoiceBand(DocumentModel):
    allowed: Annotated[list[Option], Field(min_length=1, max_length=50)]


class ChoiceTier(DocumentModel):
    options: Annotated[list[Option], Field(min_length=1, max_length=50)]
    approver: GroupName


class FlagTier(DocumentModel):
    approver: GroupName


class TermBase(DocumentModel):
    key: TermKey
    label: Label | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    owner: GroupName
    priority: Annotated[int, Field(ge=1, le=1000, strict=True)]
    gets: Annotated[list[Label], Field(max_length=20)] = []
    cost: Annotated[str, StringConstraints(min_length=1, max_length=MAX_LENGTH)] | None = Field(
        default=None,
        description="The money the term costs at a value: an arithmetic expression (+ - * /, "
        "parentheses, min(a, b), max(a, b)) over `value` (the term's value: numbers as they are, "
        "flags 1 when off the preferred value else 0, choices the option's rank with 0 = best), "
        "numeric deal attributes such as `amount`, and other terms by key. "
        "Example: `value / 100 * amount`.",
    )


class NumberTerm(TermBase):
    kind: Literal["number"]
    unit: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    direction: Direction
    target: Amount | None = None
    opening: Amount | None = None
    walk_away: Amount | None = Field(
        default=None,
        description="Bottom line. Defaults to the last tier's limit, or the band edge without tiers.",
    )
    band: NumberBand
    tiers: Annotated[list[NumberTier], Field(max_length=20)] = []

    def band_edge(self) -> Decimal:
        """The band's worse edge: where exceptions start."""
        return self.band.high if self.direction is Direction.lower_is_better else self.band.low

    def effective_walk_away(self) -> Decimal:
        """The declared bottom line, or the end of the escalation ladder when none is declared."""
        if self.walk_away is not None:
            return self.walk_away
        return self.tiers[-1].limit if self.tiers else self.band_edge()


class ChoiceTerm(TermBase):
    kind: Literal["choice"]
    options: Annotated[list[Option], Field(min_length=1, max_length=50)]
    target: Option | None = None
    opening: Option | None = None
    walk_away: Option | None = None
    band: ChoiceBand
    tiers: Annotated[list[ChoiceTier], Field(max_length=20)] = []


class FlagTerm(TermBase):
    kind: Literal["flag"]
    preferred: StrictBool
    tiers: Annotated[list[FlagTier], Field(max_length=20)] = []


Term = Annotated[NumberTerm | ChoiceTerm | FlagTerm, Field(discriminator="kind")]


class Condition(DocumentModel):
    """One `when` clause: on a term of the deal or on a deal attribute, never both."""

    term: TermKey | None = None
    attribute: AttributeName | None = None
    op: Operator
    value: ConditionScalar | Annotated[list[ConditionScalar], Field(min_length=1, max_length=50)]


class Action(DocumentModel):
    """One `then` clause: shift a number term's worse side, or replace a term's approver."""

    term: TermKey
    shift: Amount | None = Field(
        default=None,
        description="Moves band edge, tier limits and walk-away this far to the worse side.",
    )
    approver: GroupName | None = None
    tier: Annotated[int, Field(ge=1, le=20, strict=True)] | None = Field(
        default=None, description="With `approver`: replace only this tier's approver (1-based)."
    )


class Rule(DocumentModel):
    key: TermKey
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    when: Annotated[list[Condition], Field(min_length=1, max_length=20)]
    then: Annotated[list[Action], Field(min_length=1, max_length=20)]


class PlaybookDocument(DocumentModel):
    """A whole playbook version, as imported, exported and PUT."""

    key: PlaybookKey
    name: Label
    description: Annotated[str, StringConstraints(max_length=4000)] | None = None
    scope: Annotated[dict[AttributeName, ScopeValue], Field(max_length=10)] = {}
    terms: Annotated[list[Term], Field(min_length=1, max_length=200)]
    rules: Annotated[list[Rule], Field(max_length=200)] = []
    approval_sla_hours: Annotated[
        dict[GroupName, Annotated[int, Field(ge=1, le=8760)]], Field(max_length=100)
    ] = Field(
        default={},
        description="Hours each approver group has to decide this playbook's requests; "
        "overrides the group's own SLA and the service default.",
    )

    def term(self, key: str) -> NumberTerm | ChoiceTerm | FlagTerm | None:
        """The term with this key, if the document has one."""
        return next((t for t in self.terms if t.key == key), None)


def semantic_problems(doc: PlaybookDocument) -> list[Problem]:
    """Every cross-field problem in the document; empty when it is valid."""
    return list(_semantic_problems(doc))


def _semantic_problems(doc: PlaybookDocument) -> Iterator[Problem]:
    seen_keys: dict[str, int] = {}
    seen_priorities: dict[int, str] = {}
    for i, term in enumerate(doc.terms):
        loc: Loc = ("terms", i)
        if term.key in seen_keys:
            yield Problem(
                (*loc, "key"),
                f"term key {term.key!r} is already used by terms[{seen_keys[term.key]}]",
            )
        seen_keys.setdefault(term.key, i)
        if term.priority in seen_priorities:
            yield Problem(
                (*loc, "priority"),
                f"priority {term.priority} is already used by term {seen_priorities[term.priority]!r}; "
                "priorities must be unique",
            )
        seen_priorities.setdefault(term.priority, term.key)
        if term.cost is not None:
            try:
                parse_expression(term.cost)
            except ExpressionError as exc:
                yield Problem((*loc, "cost"), f"cost: {exc}")
        if isinstance(term, NumberTerm):
            yield from _number_problems(term, loc)
        elif isinstance(term, ChoiceTerm):
            yield from _choice_problems(term, loc)
    terms = {t.key: t for t in doc.terms}
    seen_rules: dict[str, int] = {}
    for i, rule in enumerate(doc.rules):
        loc = ("rules", i)
        if rule.key in seen_rules:
            yield Problem(
                (*loc, "key"),
                f"rule key {rule.key!r} is already used by rules[{seen_rules[rule.key]}]",
            )
        seen_rules.setdefault(rule.key, i)
        for j, cond in enumerate(rule.when):
            yield from _condition_problems(cond, terms, (*loc, "when", j))
        for j, action in enumerate(rule.then):
            yield from _action_problems(action, terms, (*loc, "then", j))


def _number_problems(term: NumberTerm, loc: Loc) -> Iterator[Problem]:
    # Work in "normalised" space where a larger value is always worse for us.
    sign = 1 if term.direction is Direction.lower_is_better else -1
    if term.band.low > term.band.high:
        yield Problem(
            (*loc, "band", "low"), f"band low {term.band.low} is above band high {term.band.high}"
        )
        return
    edge = term.band_edge()
    walk_away = term.effective_walk_away()
    worse = "above" if sign == 1 else "below"
    if sign * walk_away < sign * edge:
        yield Problem(
            (*loc, "walk_away"),
            f"walk_away {walk_away} must not be inside the band: it must be at or {worse} the band edge {edge}",
        )
        return
    previous = edge
    for j, tier in enumerate(term.tiers):
        if sign * tier.limit <= sign * previous:
            yield Problem(
                (*loc, "tiers", j, "limit"),
                f"tier limit {tier.limit} must be {worse} {previous}: tiers run monotonically "
                "from the band edge to walk_away",
            )
        previous = tier.limit
    if term.tiers and term.walk_away is not None and term.tiers[-1].limit != term.walk_away:
        yield Problem(
            (*loc, "tiers", len(term.tiers) - 1, "limit"),
            f"the last tier must end at walk_away {term.walk_away}, not {term.tiers[-1].limit}",
        )
    if not term.tiers and term.walk_away is not None and term.walk_away != edge:
        yield Problem(
            (*loc, "tiers"),
            f"walk_away {term.walk_away} lies beyond the band edge {edge}, so tiers must say who approves that far",
        )
    if (
        term.opening is not None
        and term.target is not None
        and sign * term.opening > sign * term.target
    ):
        yield Problem(
            (*loc, "opening"),
            f"opening {term.opening} must be at least as good for us as target {term.target}",
        )
    for name in ("target", "opening"):
        value = getattr(term, name)
        if value is not None and sign * value > sign * walk_away:
            yield Problem((*loc, name), f"{name} {value} lies beyond walk_away {walk_away}")


def _choice_problems(term: ChoiceTerm, loc: Loc) -> Iterator[Problem]:
    rank: dict[str, int] = {}
    for j, option in enumerate(term.options):
        if option in rank:
            yield Problem((*loc, "options", j), f"option {option!r} is listed twice")
        rank.setdefault(option, j)
    for j, option in enumerate(term.band.allowed):
        if option not in rank:
            yield Problem(
                (*loc, "band", "allowed", j), f"{option!r} is not one of the term's options"
            )
    allowed = [rank[o] for o in term.band.allowed if o in rank]
    best_allowed = min(allowed, default=0)
    claimed: dict[str, str] = dict.fromkeys(term.band.allowed, "band")
    previous_worst = -1
    for j, tier in enumerate(term.tiers):
        # Only options this tier newly claims count for ordering: an unknown or repeated option
        # is reported once, where it is, not again as a monotonicity problem.
        ranks: list[int] = []
        for k, option in enumerate(tier.options):
            where: Loc = (*loc, "tiers", j, "options", k)
            if option not in rank:
                yield Problem(where, f"{option!r} is not one of the term's options")
                continue
            if option in claimed:
                yield Problem(where, f"{option!r} is already covered by the {claimed[option]}")
                continue
            ranks.append(rank[option])
            if rank[option] < best_allowed:
                yield Problem(
                    where,
                    f"{option!r} is better than every allowed option, so it needs no approval",
                )
            claimed[option] = f"tier {j + 1}"
        if ranks and min(ranks) <= previous_worst:
            yield Problem(
                (*loc, "tiers", j, "options"),
                "tiers must run monotonically: each tier's options must rank after the previous tier's",
            )
        previous_worst = max(ranks, default=previous_worst)
    for name in ("target", "opening", "walk_away"):
        value = getattr(term, name)
        if value is not None and value not in rank:
            yield Problem((*loc, name), f"{value!r} is not one of the term's options")
    if term.opening in rank and term.target in rank and rank[term.opening] > rank[term.target]:
        yield Problem((*loc, "opening"), "opening must be at least as good for us as target")


def _condition_problems(cond: Condition, terms: dict[str, Any], loc: Loc) -> Iterator[Problem]:
    if (cond.term is None) == (cond.attribute is None):
        yield Problem(loc, "a condition names exactly one of `term` or `attribute`")
        return
    values = cond.value if isinstance(cond.value, list) else [cond.value]
    if cond.op in LIST_OPERATORS and not isinstance(cond.value, list):
        yield Problem((*loc, "value"), f"operator {cond.op.value!r} needs a list of values")
        return
    if cond.op not in LIST_OPERATORS and isinstance(cond.value, list):
        yield Problem(
            (*loc, "value"), f"operator {cond.op.value!r} needs a single value, not a list"
        )
        return
    if cond.term is None:
        if (
            cond.op in ORDERING_OPERATORS
            and to_decimal(values[0]) is None
            and not isinstance(values[0], str)
        ):
            yield Problem((*loc, "value"), f"operator {cond.op.value!r} needs a number or a date")
        return
    term = terms.get(cond.term)
    if term is None:
        yield Problem(
            (*loc, "term"),
            f"unknown term {cond.term!r}: rules may only refer to the playbook's terms",
        )
        return
    if isinstance(term, NumberTerm):
        for value in values:
            if isinstance(value, bool) or to_decimal(value) is None:
                yield Problem(
                    (*loc, "value"), f"{cond.term} is a number term; {value!r} is not a number"
                )
    elif isinstance(term, ChoiceTerm):
        if cond.op in ORDERING_OPERATORS:
            yield Problem((*loc, "op"), f"{cond.term} is a choice term; use ==, !=, in or not_in")
        for value in values:
            if str(value) not in term.options:
                yield Problem(
                    (*loc, "value"), f"{value!r} is not one of {cond.term}'s options {term.options}"
                )
    elif isinstance(term, FlagTerm):
        if cond.op not in (Operator.eq, Operator.ne):
            yield Problem((*loc, "op"), f"{cond.term} is a flag term; use == or !=")
        for value in values:
            if not isinstance(value, bool):
                yield Problem(
                    (*loc, "value"), f"{cond.term} is a flag term; {value!r} is not true or false"
                )


def _action_problems(action: Action, terms: dict[str, Any], loc: Loc) -> Iterator[Problem]:
    term = terms.get(action.term)
    if term is None:
        yield Problem(
            (*loc, "term"),
            f"unknown term {action.term!r}: rules may only refer to the playbook's terms",
        )
        return
    if (action.shift is None) == (action.approver is None):
        yield Problem(loc, "an action sets exactly one of `shift` or `approver`")
        return
    if action.shift is not None and not isinstance(term, NumberTerm):
        yield Problem(
            (*loc, "shift"), f"only number terms can shift; {action.term} is a {term.kind} term"
        )
    if action.tier is not None:
        if action.approver is None:
            yield Problem((*loc, "tier"), "`tier` only goes with `approver`")
        elif action.tier > len(term.tiers):
            yield Problem(
                (*loc, "tier"), f"{action.term} has {len(term.tiers)} tier(s), not {action.tier}"
            )
    elif action.approver is not None and not term.tiers:
        yield Problem(
            (*loc, "approver"), f"{action.term} has no tiers whose approver could be replaced"
        )
