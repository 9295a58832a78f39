"""What the playbook pages show: a version's terms as rows with their bars, and a draft against
the published version term by term. Plain data from documents; no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from governance.engine.document import (
    ChoiceTerm,
    Direction,
    FlagTerm,
    NumberTerm,
    PlaybookDocument,
    Rule,
)
from governance.web.rendering import label, term_value
from governance.web.terms import DocTerm, TermView, view


@dataclass(slots=True)
class TermRow:
    """One term of a version as the table shows it."""

    key: str
    label: str
    kind: str
    priority: int
    owner: str
    bar: TermView
    band: str
    tiers: list[str]
    walk_away: str
    target: str
    opening: str
    gets: list[str]
    rules: list[tuple[str, str, str]]  # rule, when, effect
    direction: str = ""


@dataclass(slots=True)
class TermChange:
    """A term of the draft against the published version."""

    key: str
    label: str
    change: str  # added, removed, changed, same
    old: TermRow | None
    new: TermRow | None
    differences: list[tuple[str, str, str]] = field(default_factory=list)  # what, old, new


def _value(term: DocTerm, value: object) -> str:
    if value is None:
        return "—"
    unit = term.unit if isinstance(term, NumberTerm) else None
    return term_value(value, unit, term.kind)


def bar_of(term: DocTerm) -> TermView:
    """The term's band, tiers and walk-away as the inbox draws them (no value marked)."""
    band: dict[str, Any]
    if isinstance(term, NumberTerm):
        band = {
            "low": term.band.low,
            "high": term.band.high,
            "walk_away": term.effective_walk_away(),
        }
        unit: str | None = term.unit
    elif isinstance(term, ChoiceTerm):
        band, unit = {"allowed": list(term.band.allowed)}, None
    else:
        band, unit = {"preferred": term.preferred}, None
    mapping = {
        "key": term.key,
        "label": term.label or label(term.key),
        "kind": term.kind,
        "unit": unit,
        "value": None,
        "status": "missing",
        "band": band,
        "owner": term.owner,
    }
    return view(mapping, term)


def band_text(term: DocTerm) -> str:
    if isinstance(term, NumberTerm):
        return f"{_value(term, term.band.low)} to {_value(term, term.band.high)}"
    if isinstance(term, ChoiceTerm):
        return ", ".join(label(o) for o in term.band.allowed)
    return "preferred: " + ("yes" if term.preferred else "no")


def tier_texts(term: DocTerm) -> list[str]:
    if isinstance(term, NumberTerm):
        return [f"up to {_value(term, t.limit)}: {label(t.approver)}" for t in term.tiers]
    if isinstance(term, ChoiceTerm):
        return [
            f"{', '.join(label(o) for o in t.options)}: {label(t.approver)}" for t in term.tiers
        ]
    return [f"step {i}: {label(t.approver)}" for i, t in enumerate(term.tiers, start=1)]


def _rule_effect(rule: Rule, term_key: str, term: DocTerm) -> list[str]:
    out = []
    for action in rule.then:
        if action.term != term_key:
            continue
        if action.shift is not None:
            sign = "+" if action.shift >= 0 else "−"
            out.append(f"{sign}{_value(term, abs(action.shift))} on the worse side")
        if action.approver is not None:
            where = f"tier {action.tier}" if action.tier else "every tier"
            out.append(f"{where} approved by {label(action.approver)}")
    return out


def rule_text(rule: Rule) -> str:
    """A rule's conditions as one line: `contract months >= 36 and …`."""
    parts = []
    for cond in rule.when:
        subject = label(cond.term or cond.attribute or "")
        value = cond.value if not isinstance(cond.value, list) else ", ".join(map(str, cond.value))
        parts.append(f"{subject} {cond.op.value} {label(value)}")
    return " and ".join(parts)


def row_of(term: DocTerm, doc: PlaybookDocument) -> TermRow:
    rules = []
    for rule in doc.rules:
        effects = _rule_effect(rule, term.key, term)
        if effects:
            rules.append((label(rule.key), rule_text(rule), "; ".join(effects)))
    if isinstance(term, FlagTerm):
        walk, target, opening = "—", "—", "—"
        direction = ""
    else:
        walk = _value(
            term,
            term.effective_walk_away() if isinstance(term, NumberTerm) else term.walk_away,
        )
        target, opening = _value(term, term.target), _value(term, term.opening)
        direction = (
            (
                "lower is better"
                if term.direction is Direction.lower_is_better
                else "higher is better"
            )
            if isinstance(term, NumberTerm)
            else "options best first"
        )
    return TermRow(
        key=term.key,
        label=term.label or label(term.key),
        kind=term.kind,
        priority=term.priority,
        owner=term.owner,
        bar=bar_of(term),
        band=band_text(term),
        tiers=tier_texts(term),
        walk_away=walk,
        target=target,
        opening=opening,
        gets=list(term.gets),
        rules=rules,
        direction=direction,
    )


def labels_of(doc: PlaybookDocument, other: PlaybookDocument | None) -> dict[str, str]:
    """Term labels by key (of both versions: a removed term keeps its name)."""
    terms = [*(other.terms if other else []), *doc.terms]
    return {t.key: t.label or label(t.key) for t in terms}


def rows_of(doc: PlaybookDocument) -> list[TermRow]:
    """The version's terms in priority order."""
    return [row_of(t, doc) for t in sorted(doc.terms, key=lambda t: t.priority)]


def _rules_line(row: TermRow) -> str:
    return "; ".join(f"{name}: {effect} when {when}" for name, when, effect in row.rules) or "—"


def changes(live: PlaybookDocument | None, draft: PlaybookDocument) -> list[TermChange]:
    """Each term of either version: added, removed, changed (what, old → new) or the same; in
    the draft's priority order, removed terms last."""
    old = {t.key: t for t in live.terms} if live else {}
    out = []
    for term in sorted(draft.terms, key=lambda t: t.priority):
        before = old.get(term.key)
        new_row = row_of(term, draft)
        if before is None:
            out.append(TermChange(term.key, new_row.label, "added", None, new_row))
            continue
        assert live is not None
        old_row = row_of(before, live)
        differences = []
        for what, a, b in (
            ("band", old_row.band, new_row.band),
            ("tiers", "; ".join(old_row.tiers) or "—", "; ".join(new_row.tiers) or "—"),
            ("walk-away", old_row.walk_away, new_row.walk_away),
            ("owner", label(old_row.owner), label(new_row.owner)),
            ("priority", str(old_row.priority), str(new_row.priority)),
            ("target", old_row.target, new_row.target),
            ("opening", old_row.opening, new_row.opening),
            ("gets", ", ".join(old_row.gets) or "—", ", ".join(new_row.gets) or "—"),
            ("rules", _rules_line(old_row), _rules_line(new_row)),
        ):
            if a != b:
                differences.append((what, a, b))
        same = before.model_dump() == term.model_dump() and not differences
        if not same and not differences:
            differences.append(("details", "as before", "changed (label, unit or cost)"))
        out.append(
            TermChange(
                term.key, new_row.label, "same" if same else "changed", old_row, new_row,
                differences,
            )
        )  # fmt: skip
    kept = {t.key for t in draft.terms}
    for key, before in old.items():
        if key not in kept:
            assert live is not None
            row = row_of(before, live)
            out.append(TermChange(key, row.label, "removed", row, None))
    return out
