"""Turn an engine result into the JSON body of `CheckResponse`, without pydantic on the hot path.

`POST /v1/checks` is called on every opportunity page view, so its body is built as plain
dicts. The test suite validates these bodies against `CheckResponse`, and the contract tests
validate them against the published schema.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from governance.engine.document import ChoiceTerm
from governance.engine.numbers import CompiledNumber
from governance.engine.results import CheckResult, EffectiveBand, TermResult, Trade
from governance.figures import ratio_text
from governance.playbooks.registry import Published


def number(value: Decimal) -> str:
    """A decimal as plain text, never in exponent notation."""
    text = str(value)  # several times faster than format(); exponents are rare
    return format(value, "f") if "E" in text else text


def ratio(value: Decimal) -> str:
    """Ratios and scores by the ratio rule (`governance.figures`)."""
    return ratio_text(value) if value else "0"


def _value(value: object) -> object:
    return number(value) if isinstance(value, Decimal) else value


def _band(band: EffectiveBand) -> dict[str, Any]:
    # Unshifted bands are shared objects, so their JSON form is worth remembering.
    cached = _BANDS.get(band)
    if cached is None:
        cached = _band_json(band)
        if len(_BANDS) < 10_000:
            _BANDS[band] = cached
    return cached


_BANDS: dict[EffectiveBand, dict[str, Any]] = {}


def _band_json(band: EffectiveBand) -> dict[str, Any]:
    if band.allowed is not None:
        return {"allowed": list(band.allowed)}
    if band.preferred is not None:
        return {"preferred": band.preferred}
    out: dict[str, Any] = {}
    if band.low is not None:
        out["low"] = number(band.low)
    if band.high is not None:
        out["high"] = number(band.high)
    if band.walk_away is not None:
        out["walk_away"] = number(band.walk_away)
    return out


def _static(published: Published, term: TermResult) -> dict[str, Any]:
    """The parts of a term's JSON that depend only on the playbook version."""
    key = (published.version_id, term.key)
    cached = _STATIC.get(key)
    if cached is None:
        cached = {
            "key": term.key,
            "label": published.labels.get(term.key, term.key),
            "kind": term.kind,
            "unit": published.units.get(term.key),
            "owner": term.owner,
            "priority": term.priority,
        }
        _STATIC[key] = cached
    return cached


_STATIC: dict[tuple[int, str], dict[str, Any]] = {}


def _term(published: Published, term: TermResult) -> dict[str, Any]:
    # Choice, flag and missing results are shared objects prebuilt by the compiled playbook,
    # so their JSON is remembered (keyed by identity, holding the object so the id stays its).
    hit = _SHARED.get(id(term))
    if hit is not None and hit[0] is term:
        return hit[1]
    out = _static(published, term).copy()
    value = term.value
    out["value"] = number(value) if isinstance(value, Decimal) else value
    out["status"] = term.status.value
    out["variance"] = number(term.variance) if term.variance else "0"
    out["variance_ratio"] = ratio(term.variance_ratio)
    out["tier"] = term.tier
    out["approvers"] = list(term.approvers)
    out["band"] = _band(term.band)
    out["rules"] = list(term.rules)
    out["tiers"] = _tiers(published, term)
    if (term.kind != "number" or term.value is None) and not term.rules:
        if len(_SHARED) >= 50_000:
            _SHARED.clear()
        _SHARED[id(term)] = (term, out)
    return out


_SHARED: dict[int, tuple[TermResult, dict[str, Any]]] = {}


def _tiers(published: Published, term: TermResult) -> list[dict[str, Any]]:
    """The term's escalation ladder after the rules that fired on it: per tier, how far it
    reaches (a number's `limit`, moved with the band edge; a choice's `options`) and the group
    that approves it (after any rule's replacement).

    The same rules always give the same ladder, so it is built once per version, term and
    combination of fired rules, and every later check pays one dict lookup.
    """
    key = (published.version_id, term.key, term.rules)
    cached = _TIERS.get(key)
    if cached is None:
        cached = _tiers_json(published, term.key, term.rules)
        if len(_TIERS) >= 10_000:
            _TIERS.clear()
        _TIERS[key] = cached
    return cached


_TIERS: dict[tuple[int, str, tuple[str, ...]], list[dict[str, Any]]] = {}


def _tiers_json(published: Published, key: str, rules: tuple[str, ...]) -> list[dict[str, Any]]:
    compiled = published.compiled
    doc = next((t for t in compiled.document.terms if t.key == key), None)
    if doc is None or not doc.tiers:
        return []
    # The fired rules' effect on this term, added up as the evaluator adds it.
    shift = Decimal(0)
    overrides: list[tuple[int | None, str]] = []
    fired = {r.key: r for r in compiled.rules}
    for rule_key in rules:  # in the order they fired
        rule = fired.get(rule_key)
        if rule is None:
            continue
        shift += sum((amount for term_key, amount in rule.shifts if term_key == key), Decimal(0))
        overrides.extend(
            (tier, group) for term_key, tier, group in rule.approvers if term_key == key
        )
    term = compiled.by_key[key]
    approvers = term.tier_approvers(overrides)
    if isinstance(term, CompiledNumber):
        return [
            # `copy_abs` of a zero: a higher-is-better limit of 0 negates back to -0.
            {"limit": number(limit if limit else limit.copy_abs()), "approver": group}
            for limit, group in zip(term.tier_limits(shift), approvers, strict=True)
        ]
    if isinstance(doc, ChoiceTerm):
        return [
            {"options": list(t.options), "approver": group}
            for t, group in zip(doc.tiers, approvers, strict=True)
        ]
    return [{"approver": group} for group in approvers]


def _ask_value(value: object) -> object:
    if isinstance(value, list | tuple):
        return [str(_value(v)) for v in value]
    return _value(value)


def _trade(trade: Trade) -> dict[str, Any]:
    return {
        "term": trade.term,
        "rule": trade.rule,
        "asks": [{"term": a.term, "op": a.op, "value": _ask_value(a.value)} for a in trade.asks],
        "band_edge_before": None
        if trade.band_edge_before is None
        else number(trade.band_edge_before),
        "band_edge_after": None if trade.band_edge_after is None else number(trade.band_edge_after),
        "status_after": trade.status_after.value,
        "variance_before": number(trade.variance_before),
        "variance_after": number(trade.variance_after),
        "variance_removed": number(trade.variance_removed),
        "resolves": trade.resolves,
    }


def check_body(published: Published, result: CheckResult) -> dict[str, Any]:
    """The `CheckResponse` JSON for one evaluation."""
    return {
        "playbook": {"key": published.key, "version": published.number, "name": published.name},
        "verdict": result.verdict.value,
        "variance_score": ratio(result.variance_score),
        "terms": [_term(published, t) for t in result.terms],
        "steps": [{"group": s.group, "step": s.step, "terms": list(s.terms)} for s in result.steps],
        "rules_fired": list(result.rules_fired),
        "trades": [_trade(t) for t in result.trades],
    }
