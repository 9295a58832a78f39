"""A term drawn against its band: the geometry of the bars the inbox, deal page and simulator
show (band green, tiers in amber shades, beyond the walk-away red, a marker at the value).

Numbers become an SVG in percentages of its width (so its text keeps its size at any width);
choices and flags become a row of options. Everything also reads as text (`summary`), for
screen readers and for anyone who does not read colours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from governance.engine.document import ChoiceTerm, Direction, FlagTerm, NumberTerm
from governance.web.rendering import label, plain_number, term_value

DocTerm = NumberTerm | ChoiceTerm | FlagTerm
MAX_SHADE = 3
# Tick labels closer than this share of the width would overlap; the less important goes.
TICK_GAP = 11.0


@dataclass(frozen=True, slots=True)
class Segment:
    x: float
    width: float
    zone: str  # better, band, tier1..tier3, blocked
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    text: str
    anchor: str  # start, middle, end


@dataclass(frozen=True, slots=True)
class Chip:
    text: str
    zone: str
    selected: bool
    value: str


@dataclass(slots=True)
class TermView:
    """One term as a page shows it."""

    key: str
    label: str
    kind: str
    unit: str | None
    value: Any
    value_text: str
    status: str
    variance_text: str
    tier: int | None
    approvers: list[str]
    summary: str
    segments: list[Segment] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    marker: float | None = None
    chips: list[Chip] = field(default_factory=list)
    justification: str | None = None
    rules: list[str] = field(default_factory=list)
    owner: str = ""


def _decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _shade(tier: int) -> str:
    return f"tier{min(tier, MAX_SHADE)}"


def _variance_text(term: Mapping[str, Any]) -> str:
    status = term["status"]
    if status in ("within", "better", "missing"):
        return {"within": "within the band", "better": "better than the band"}.get(
            status, "not stated"
        )
    variance = term.get("variance") or "0"
    if term["kind"] == "number":
        past = term_value(variance, term.get("unit"))
        text = f"{past} past the band edge"
    else:
        steps = plain_number(variance)
        text = f"{steps} step{'s' if steps != '1' else ''} past the band"
    if status == "blocked":
        return text + ", beyond the walk-away"
    return text + (f", tier {term['tier']}" if term.get("tier") else "")


def view(
    term: Mapping[str, Any], doc_term: DocTerm | None, *, justification: str | None = None
) -> TermView:
    """The page's view of a term of a check result or of an approval request."""
    out = TermView(
        key=term["key"],
        label=term.get("label") or term["key"],
        kind=term["kind"],
        unit=term.get("unit"),
        value=term.get("value"),
        value_text=term_value(term.get("value"), term.get("unit"), term["kind"]),
        status=term["status"],
        variance_text=_variance_text(term),
        tier=term.get("tier"),
        approvers=list(term.get("approvers") or []),
        summary="",
        justification=justification if justification is not None else term.get("justification"),
        rules=list(term.get("rules") or []),
        owner=term.get("owner", ""),
    )
    band = term.get("band") or {}
    if term["kind"] == "number":
        _number(out, band, doc_term if isinstance(doc_term, NumberTerm) else None)
    elif term["kind"] == "choice":
        _choice(out, band, doc_term if isinstance(doc_term, ChoiceTerm) else None)
    else:
        _flag(out, band, doc_term if isinstance(doc_term, FlagTerm) else None)
    return out


# --- numbers -----------------------------------------------------------------------------------


def _number(out: TermView, band: Mapping[str, Any], doc: NumberTerm | None) -> None:
    low, high, walk_away = (_decimal(band.get(k)) for k in ("low", "high", "walk_away"))
    if low is None or high is None:
        out.summary = f"{out.label}: {out.value_text}"
        return
    lower = doc is None or doc.direction is Direction.lower_is_better
    sign = Decimal(1) if lower else Decimal(-1)
    good = sign * (low if lower else high)
    edge = sign * (high if lower else low)
    walk = sign * walk_away if walk_away is not None else edge
    # Tier limits after the rules that fired: they move with the band edge (see
    # engine/numbers.py), never past the good side of the band.
    limits: list[tuple[Decimal, str]] = []
    if doc is not None:
        shift = edge - sign * doc.band_edge()
        limits = [(max(sign * t.limit + shift, good), t.approver) for t in doc.tiers]
    value = _decimal(out.value)
    x = sign * value if value is not None else None

    span = walk - good if walk > good else (abs(good) or Decimal(1))
    start = good
    if x is not None and x < good:
        start = x - span * Decimal("0.05")
    end = walk + span * Decimal("0.2")
    if x is not None and x > walk + span * Decimal("0.15"):
        end = x + span * Decimal("0.08")
    width = end - start

    def pct(v: Decimal) -> float:
        return round(float((v - start) / width * 100), 2)

    def shown(v: Decimal) -> str:
        return term_value(sign * v, out.unit)

    segments = []
    if start < good:
        segments.append(Segment(0.0, pct(good), "better", "better than the band"))
    segments.append(Segment(pct(good), pct(edge) - pct(good), "band", f"band: up to {shown(edge)}"))
    previous = edge
    for index, (limit, approver) in enumerate(limits, start=1):
        if limit <= previous:
            continue
        segments.append(
            Segment(
                pct(previous),
                pct(limit) - pct(previous),
                _shade(index),
                f"tier {index}: up to {shown(limit)}, {label(approver)}",
            )
        )
        previous = limit
    if walk > previous:  # a walk-away declared beyond the last tier
        segments.append(
            Segment(pct(previous), pct(walk) - pct(previous), _shade(len(limits) + 1), "")
        )
    segments.append(Segment(pct(walk), 100.0 - pct(walk), "blocked", "beyond the walk-away"))
    out.segments = segments

    candidates = [(walk, 0), (edge, 1), (good, 2)] + [(limit, 3) for limit, _ in limits]
    placed: list[Tick] = []
    for point, _priority in candidates:
        position = pct(point)
        if any(abs(position - t.x) < TICK_GAP for t in placed):
            continue
        anchor = "start" if position < 6 else "end" if position > 94 else "middle"
        placed.append(Tick(position, plain_number(sign * point), anchor))
    out.ticks = sorted(placed, key=lambda t: t.x)
    if x is not None:
        out.marker = min(max(pct(x), 0.0), 100.0)

    tiers = ", ".join(f"{shown(limit)} ({label(approver)})" for limit, approver in limits)
    better = "lower" if lower else "higher"
    out.summary = (
        f"{out.label}: {out.value_text}. Band {shown(good)} to {shown(edge)} ({better} is "
        f"better)" + (f"; tiers up to {tiers}" if tiers else "") + f"; walk-away {shown(walk)}."
    )


# --- choices and flags -------------------------------------------------------------------------


def _choice(out: TermView, band: Mapping[str, Any], doc: ChoiceTerm | None) -> None:
    allowed = list(band.get("allowed") or [])
    options: Sequence[str] = doc.options if doc is not None else allowed
    tier_of = {o: i for i, t in enumerate(doc.tiers, start=1) for o in t.options} if doc else {}
    first_allowed = min((options.index(a) for a in allowed if a in options), default=0)
    chips = []
    for index, option in enumerate(options):
        if option in allowed:
            zone = "band"
        elif option in tier_of:
            zone = _shade(tier_of[option])
        elif index < first_allowed:
            zone = "better"
        else:
            zone = "blocked"
        chips.append(Chip(label(option), zone, option == out.value, option))
    if out.value is not None and out.value not in options:
        chips.append(Chip(label(out.value), "blocked", True, str(out.value)))
    out.chips = chips
    approvals = "; ".join(
        f"{', '.join(label(o) for o in t.options)} needs {label(t.approver)}"
        for t in (doc.tiers if doc else [])
    )
    out.summary = (
        f"{out.label}: {out.value_text}. Allowed alone: {', '.join(label(a) for a in allowed)}"
        + (f"; {approvals}" if approvals else "")
        + "; any other option is blocked."
    )


def _flag(out: TermView, band: Mapping[str, Any], doc: FlagTerm | None) -> None:
    preferred = band.get("preferred")
    if preferred is None and doc is not None:
        preferred = doc.preferred
    preferred = bool(preferred)
    other_zone = "tier1" if doc is None or doc.tiers else "blocked"
    out.chips = [
        Chip("yes" if preferred else "no", "band", out.value is preferred, str(preferred).lower()),
        Chip(
            "no" if preferred else "yes",
            other_zone,
            out.value is (not preferred),
            str(not preferred).lower(),
        ),
    ]
    chain = " then ".join(label(t.approver) for t in doc.tiers) if doc else ""
    out.summary = f"{out.label}: {out.value_text}. Preferred: {'yes' if preferred else 'no'}" + (
        f"; the other value needs {chain}." if chain else "; the other value is blocked."
    )
