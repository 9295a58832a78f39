"""Properties of the check over generated playbooks and deals.

Playbooks have random number, choice and flag terms with valid bands and tiers, and rules whose
conditions are monotone: a rule that widens a band only holds for term values at least as good
for us as some threshold, a rule that tightens only for values at least as bad. With such rules,
conceding more on one term can only fire fewer widenings and more tightenings elsewhere.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import cache
from itertools import accumulate, pairwise
from typing import Any, TypeVar

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from governance.engine import (
    CheckResult,
    CompiledPlaybook,
    DealInputError,
    PlaybookDocument,
    Status,
    Verdict,
    compile_playbook,
    evaluate,
    semantic_problems,
)

T = TypeVar("T")


@cache
def ints(lo: int | None = None, hi: int | None = None) -> st.SearchStrategy[int]:
    """`st.integers`, built once per bounds: building strategies dominates generation time."""
    return st.integers(lo, hi)


BOOLS = st.booleans()
# Generating a playbook takes a few ms of hypothesis draws, so 150 examples per property keeps
# the engine suite well under 30 s on a slow machine.
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GROUPS = ("ops", "finance", "legal", "cfo")
VERDICT_RANK = {Verdict.auto_approved: 0, Verdict.needs_approval: 1, Verdict.blocked: 2}
ATTRIBUTES = st.fixed_dictionaries(
    {},
    optional={
        "segment": st.sampled_from(["smb", "enterprise"]),
        "amount": ints(0, 10).map(lambda n: Decimal(n * 100_000)),
    },
)


class Spec:
    """A generated playbook: its document dict plus what the generators know about each term."""

    def __init__(self, terms: list[dict[str, Any]], rules: list[dict[str, Any]]) -> None:
        self.terms = terms
        self.rules = rules
        self.by_key = {t["key"]: t for t in terms}

    def compile(self, rules: list[dict[str, Any]] | None = None) -> CompiledPlaybook:
        doc = PlaybookDocument.model_validate(
            {
                "key": "generated",
                "name": "Generated",
                "terms": [
                    {k: v for k, v in t.items() if not k.startswith("_")} for t in self.terms
                ],
                "rules": [
                    {k: v for k, v in r.items() if not k.startswith("_")}
                    for r in (self.rules if rules is None else rules)
                ],
            }
        )
        assert semantic_problems(doc) == [], semantic_problems(doc)
        return compile_playbook(doc, 1)


# Terms


def choose(draw: Callable[[st.SearchStrategy[int]], int], options: Sequence[T]) -> T:
    """`draw(st.sampled_from(options))` without building a new strategy on every draw."""
    return options[draw(ints(0, len(options) - 1))]


@cache
def amounts(scale: Decimal, lo: int, hi: int) -> st.SearchStrategy[Decimal]:
    """Multiples of `scale`; cached because building strategies dominates generation time."""
    return ints(lo, hi).map(lambda n: n * scale)


@st.composite
def number_term(draw: st.DrawFn, key: str, priority: int) -> dict[str, Any]:
    lower = draw(BOOLS)
    scale = choose(draw, [Decimal(1), Decimal("0.5"), Decimal("0.1")])
    low = draw(amounts(scale, -40, 40))
    high = low + draw(amounts(scale, 0, 20))
    sign = 1 if lower else -1
    edge = high if lower else low
    gaps = draw(st.lists(amounts(scale, 1, 10), max_size=3))
    limits = [edge + sign * g for g in accumulate(gaps)]
    walk = limits[-1] if limits else edge
    term: dict[str, Any] = {
        "key": key,
        "kind": "number",
        "unit": "u",
        "direction": "lower_is_better" if lower else "higher_is_better",
        "owner": choose(draw, GROUPS),
        "priority": priority,
        "band": {"low": low, "high": high},
        "tiers": [{"limit": lim, "approver": choose(draw, GROUPS)} for lim in limits],
        # Generator bookkeeping, stripped before validation.
        "_sign": sign,
        "_good": low if lower else high,
        "_walk": walk,
        "_scale": scale,
    }
    if draw(BOOLS):
        term["walk_away"] = walk
    return term


@st.composite
def choice_term(draw: st.DrawFn, key: str, priority: int) -> dict[str, Any]:
    # Options ranked best first: [better…][allowed…][tier 1…][tier 2…]…[blocked…].
    count = draw(ints(1, 6))
    options = [f"{key}_{i}" for i in range(count)]
    better = draw(ints(0, count - 1))
    allowed = draw(ints(1, count - better))
    rest = options[better + allowed :]
    in_tiers = rest[: draw(ints(0, len(rest)))]
    cuts = sorted(draw(st.sets(ints(1, max(1, len(in_tiers) - 1)), max_size=2)))
    bounds = [0, *[c for c in cuts if c < len(in_tiers)], len(in_tiers)] if in_tiers else [0]
    tiers = [
        {"options": in_tiers[a:b], "approver": choose(draw, GROUPS)} for a, b in pairwise(bounds)
    ]
    return {
        "key": key,
        "kind": "choice",
        "owner": choose(draw, GROUPS),
        "priority": priority,
        "options": options,
        "band": {"allowed": options[better : better + allowed]},
        "tiers": tiers,
    }


@st.composite
def flag_term(draw: st.DrawFn, key: str, priority: int) -> dict[str, Any]:
    return {
        "key": key,
        "kind": "flag",
        "owner": choose(draw, GROUPS),
        "priority": priority,
        "preferred": draw(BOOLS),
        "tiers": [{"approver": choose(draw, GROUPS)} for _ in range(draw(ints(0, 2)))],
    }


# Rules


@st.composite
def condition(draw: st.DrawFn, spec: Spec, widening: bool) -> dict[str, Any]:
    """A condition that holds only for good values (widening) or only for bad ones."""
    if draw(ints(0, 3)) == 0:
        if draw(BOOLS):
            return {"attribute": "segment", "op": "==", "value": choose(draw, ["smb"])}
        return {"attribute": "amount", "op": ">=", "value": draw(ints(0, 10)) * 100_000}
    term = choose(draw, spec.terms)
    key = term["key"]
    if term["kind"] == "number":
        threshold = draw(amounts(term["_scale"], -60, 60))
        # Good values are small in sign·v space: lower-is-better wants v <= t, higher v >= t.
        good_side = ("<=", "<") if term["_sign"] == 1 else (">=", ">")
        bad_side = (">=", ">") if term["_sign"] == 1 else ("<=", "<")
        op = choose(draw, good_side if widening else bad_side)
        return {"term": key, "op": op, "value": threshold}
    if term["kind"] == "choice":
        options = term["options"]
        k = draw(ints(1, len(options)))
        good, bad = options[:k], options[k:]
        if widening:
            if draw(BOOLS) or not bad:
                return {"term": key, "op": "in", "value": good}
            return {"term": key, "op": "not_in", "value": bad}
        if bad and draw(BOOLS):
            return {"term": key, "op": "in", "value": bad}
        return {"term": key, "op": "not_in", "value": good}
    preferred = term["preferred"]
    if draw(BOOLS):
        return {"term": key, "op": "==", "value": preferred if widening else not preferred}
    return {"term": key, "op": "!=", "value": (not preferred) if widening else preferred}


@st.composite
def rule(draw: st.DrawFn, spec: Spec, index: int, allow_tightening: bool) -> dict[str, Any]:
    numbers = [t for t in spec.terms if t["kind"] == "number"]
    with_tiers = [t for t in spec.terms if t["tiers"]]
    kinds = []
    if numbers:
        kinds.append("widen")
        if allow_tightening:
            kinds.append("tighten")
    if with_tiers:
        kinds.append("approver")
    assume(kinds)
    kind = choose(draw, kinds)
    widening = kind == "widen" if kind != "approver" else draw(BOOLS)
    when = draw(st.lists(condition(spec, widening), min_size=1, max_size=2))
    then: list[dict[str, Any]] = []
    for _ in range(draw(ints(1, 2))):
        if kind == "approver":
            term = choose(draw, with_tiers)
            tier = choose(draw, [None, *range(1, len(term["tiers"]) + 1)])
            action: dict[str, Any] = {
                "term": term["key"],
                "approver": choose(draw, GROUPS),
            }
            if tier is not None:
                action["tier"] = tier
        else:
            term = choose(draw, numbers)
            if kind == "widen":
                shift = draw(amounts(term["_scale"], 1, 10))
            else:
                # At most 9% of the ladder per shift and at most ten shifts per term, so a
                # tightening never collapses the whole ladder onto the band's good edge (where
                # the engine reports a blocked ratio of exactly 1).
                ladder = term["_sign"] * (term["_walk"] - term["_good"])
                step = ladder / 100 if ladder else term["_scale"]
                shift = -draw(ints(1, 9)) * step
            action = {"term": term["key"], "shift": shift}
        then.append(action)
    return {"key": f"r{index}", "when": when, "then": then, "_kind": kind}


@st.composite
def specs(draw: st.DrawFn, allow_tightening: bool = True) -> Spec:
    count = draw(ints(1, 5))
    priorities = draw(st.lists(ints(1, 30), min_size=count, max_size=count, unique=True))
    makers = {"number": number_term, "choice": choice_term, "flag": flag_term}
    terms = [
        draw(makers[choose(draw, sorted(makers))](f"t{i}", p)) for i, p in enumerate(priorities)
    ]
    spec = Spec(terms, [])
    spec.rules = [draw(rule(spec, i, allow_tightening)) for i in range(draw(ints(0, 5)))]
    return spec


# Deals


@st.composite
def value_for(draw: st.DrawFn, term: Mapping[str, Any]) -> object:
    if term["kind"] == "number":
        return draw(amounts(term["_scale"], -80, 80))
    if term["kind"] == "choice":
        return choose(draw, term["options"])
    return draw(BOOLS)


@st.composite
def deals(draw: st.DrawFn, spec: Spec) -> dict[str, object]:
    return {
        t["key"]: draw(value_for(t))
        for t in spec.terms
        if draw(ints(0, 5)) > 0  # about one term in six left unstated
    }


@st.composite
def within_deals(draw: st.DrawFn, spec: Spec) -> dict[str, object]:
    deal: dict[str, object] = {}
    for t in spec.terms:
        if draw(ints(0, 5)) == 0:
            continue
        if t["kind"] == "number":
            # Anywhere from a little better than the band to its worse edge.
            low, high = t["band"]["low"], t["band"]["high"]
            span = int((high - low) / t["_scale"])
            n = draw(ints(-5, span) if t["_sign"] == 1 else ints(0, span + 5))
            deal[t["key"]] = low + n * t["_scale"]
        elif t["kind"] == "choice":
            good = t["options"][: t["options"].index(t["band"]["allowed"][-1]) + 1]
            deal[t["key"]] = choose(draw, good)
        else:
            deal[t["key"]] = t["preferred"]
    return deal


def worsen(data: st.DataObject, spec: Spec, deal: dict[str, object]) -> dict[str, object]:
    """The same deal with one stated term conceded further."""
    candidates = []
    for key, value in deal.items():
        term = spec.by_key[key]
        if term["kind"] == "number":
            candidates.append(key)
        elif term["kind"] == "choice":
            if term["options"].index(value) < len(term["options"]) - 1:
                candidates.append(key)
        elif value == term["preferred"]:
            candidates.append(key)
    assume(candidates)
    key = choose(data.draw, candidates)
    term = spec.by_key[key]
    worse = dict(deal)
    if term["kind"] == "number":
        value = deal[key]
        assert isinstance(value, Decimal)
        worse[key] = value + term["_sign"] * data.draw(amounts(term["_scale"], 1, 40))
    elif term["kind"] == "choice":
        rank = term["options"].index(deal[key])
        worse[key] = choose(data.draw, term["options"][rank + 1 :])
    else:
        worse[key] = not term["preferred"]
    return worse


def check(
    compiled: CompiledPlaybook, deal: Mapping[str, object], attributes: Mapping[str, object]
) -> CheckResult:
    return evaluate(compiled, compiled.parse_terms(deal), attributes)


# Properties


@FAST
@given(data=st.data())
def test_conceding_more_never_improves_the_check(data: st.DataObject) -> None:
    spec = data.draw(specs())
    compiled = spec.compile()
    deal = data.draw(deals(spec))
    attributes = data.draw(ATTRIBUTES)
    worse = worsen(data, spec, deal)
    before = check(compiled, deal, attributes)
    after = check(compiled, worse, attributes)
    assert VERDICT_RANK[after.verdict] >= VERDICT_RANK[before.verdict]
    assert after.variance_score >= before.variance_score


@FAST
@given(data=st.data())
def test_a_deal_inside_every_band_is_auto_approved(data: st.DataObject) -> None:
    spec = data.draw(specs(allow_tightening=False))
    compiled = spec.compile()
    deal = data.draw(within_deals(spec))
    result = check(compiled, deal, data.draw(ATTRIBUTES))
    assert result.verdict is Verdict.auto_approved
    assert result.variance_score == 0
    assert result.steps == ()
    assert result.trades == ()
    stated = {t.key: t.status for t in result.terms if t.status is not Status.missing}
    assert set(stated) == set(deal)
    assert set(stated.values()) <= {Status.within, Status.better}


def normalised(result: CheckResult) -> tuple[object, ...]:
    """A result with rule names sorted: rule order is the only thing allowed to differ."""
    return (
        result.verdict,
        result.variance_score,
        result.steps,
        frozenset(result.rules_fired),
        tuple(t._replace(rules=tuple(sorted(t.rules))) for t in result.terms),
        sorted(result.trades, key=lambda t: (t.term, t.rule)),
    )


@FAST
@given(data=st.data())
def test_evaluate_is_deterministic_and_shift_rules_commute(data: st.DataObject) -> None:
    spec = data.draw(specs())
    compiled = spec.compile()
    deal = data.draw(deals(spec))
    attributes = data.draw(ATTRIBUTES)
    terms = compiled.parse_terms(deal)
    first = evaluate(compiled, terms, attributes)
    assert evaluate(compiled, terms, attributes) == first
    assert evaluate(spec.compile(), dict(reversed(terms.items())), attributes) == first

    # Shuffle the shift rules among their own places; approver rules stay where they are.
    slots = [i for i, r in enumerate(spec.rules) if r["_kind"] != "approver"]
    shuffled = [spec.rules[i] for i in slots]
    random.Random(data.draw(ints(0, 2**32))).shuffle(shuffled)
    rules = list(spec.rules)
    for slot, moved in zip(slots, shuffled, strict=True):
        rules[slot] = moved
    permuted = evaluate(spec.compile(rules), terms, attributes)
    assert normalised(permuted) == normalised(first)


@FAST
@given(data=st.data())
def test_later_approver_replacements_win(data: st.DataObject) -> None:
    spec = data.draw(specs())
    compiled = spec.compile()
    result = check(compiled, data.draw(deals(spec)), data.draw(ATTRIBUTES))
    rules = {r["key"]: r for r in spec.rules}
    for term in result.terms:
        if term.status is not Status.exception:
            continue
        approvers = [t["approver"] for t in spec.by_key[term.key]["tiers"]]
        for fired in result.rules_fired:  # in document order: later replacements overwrite
            for action in rules[fired]["then"]:
                if action["term"] == term.key and "approver" in action:
                    if "tier" in action:
                        approvers[action["tier"] - 1] = action["approver"]
                    else:
                        approvers = [action["approver"]] * len(approvers)
        assert term.tier is not None
        assert term.approvers == tuple(dict.fromkeys(approvers[: term.tier]))


EXTREMES = ["1e1000000", "-1e1000000", "9e999999", "-9e999999", "1e-1000000", "0E-1000000"]
RAW_VALUES = st.one_of(
    st.sampled_from(EXTREMES),  # listed first and on its own so they come up often
    st.none(),
    st.booleans(),
    ints(),
    st.floats(),
    st.decimals(),
    st.text(max_size=6),
    st.sampled_from(["true", "False", " 12 ", "1_000", "0x10", "١٢", "999999999999999999"]),
)
WILD_ATTRIBUTES = st.dictionaries(
    st.sampled_from(["segment", "amount", "region"]),
    st.one_of(st.none(), st.booleans(), ints(), st.floats(), st.decimals(), st.text()),
)


@FAST
@given(data=st.data())
def test_evaluate_never_raises_for_values_parse_terms_accepts(data: st.DataObject) -> None:
    spec = data.draw(specs())
    compiled = spec.compile()
    raw: dict[str, object] = {}
    for term in spec.terms:
        if data.draw(BOOLS):
            options = term.get("options", [])
            strategy = st.one_of(RAW_VALUES, st.sampled_from(options)) if options else RAW_VALUES
            raw[term["key"]] = data.draw(strategy)
    try:
        terms = compiled.parse_terms(raw)
    except DealInputError as exc:
        assert all(p.loc[0] == "terms" and p.loc[1] in raw for p in exc.problems)
        return
    result = evaluate(compiled, terms, data.draw(WILD_ATTRIBUTES))
    assert len(result.terms) == len(spec.terms)
