"""View models the pages share: an approval request's card, a check result, SLA times.

They read through the services (`approvals.service`, `deals.service`, `playbooks.service`) and
the playbook registry; nothing here builds SQL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from governance.approvals import service as approval_service
from governance.approvals.models import OPEN, RequestStatus
from governance.approvals.schemas import RequestSummary
from governance.auth.principal import Principal
from governance.db import utcnow
from governance.deals import service as deal_service
from governance.engine.document import PlaybookDocument
from governance.errors import Forbidden, GovernanceError
from governance.playbooks import service as playbook_service
from governance.playbooks.registry import PlaybookRegistry
from governance.web.rendering import actor, attribute_rows, duration, label, term_value, when
from governance.web.terms import TermView, view


class Documents:
    """Playbook documents by (key, version), read once per page through the registry's cache."""

    def __init__(self, session: Session, registry: PlaybookRegistry) -> None:
        self.session = session
        self.registry = registry
        self._docs: dict[tuple[str, int], PlaybookDocument | None] = {}

    def get(self, key: str, number: int) -> PlaybookDocument | None:
        found = self._docs.get((key, number), ...)
        if found is ...:
            try:
                _playbook, version = playbook_service.get_version(self.session, key, number)
                found = self.registry.version(version.id).compiled.document
            except GovernanceError:
                found = None
            self._docs[(key, number)] = found
        return found


def _moment(value: object) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Sla:
    text: str
    state: str  # overdue, soon, ok, waiting, closed
    overdue: bool
    sort_key: float


def sla(request: Mapping[str, Any], now: datetime | None = None) -> Sla:
    """Time left before the request is overdue, as people read it."""
    now = now or utcnow()
    status = request["status"]
    if status == RequestStatus.waiting:
        return Sla("waits for an earlier step", "waiting", False, float("inf"))
    if status != RequestStatus.pending:
        return Sla(label(status), "closed", False, float("inf"))
    due = _moment(request.get("due_at"))
    if due is None:
        return Sla("no due time", "ok", False, float("inf"))
    left = (due - now).total_seconds()
    if left < 0:
        return Sla(f"overdue by {duration(-left)}", "overdue", True, left)
    opened = _moment(request.get("opened_at")) or now
    whole = max((due - opened).total_seconds(), 1.0)
    state = "soon" if left < whole / 4 else "ok"
    return Sla(f"{duration(left)} left", state, False, left)


def age(request: Mapping[str, Any], now: datetime | None = None) -> str:
    opened = _moment(request.get("opened_at"))
    if opened is None:
        return "not open yet"
    return f"open {duration(((now or utcnow()) - opened).total_seconds())}"


def inbox_order(items: Sequence[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Overdue first (most overdue on top), then the oldest."""

    def key(item: dict[str, Any]) -> tuple[int, float, str, int]:
        info = sla(item, now)
        opened = item.get("opened_at") or "9999"
        return (
            0 if info.overdue else 1,
            info.sort_key if info.overdue else 0.0,
            opened,
            item["id"],
        )

    return sorted(items, key=key)


# --- a request's card --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trade:
    term: str
    asks: str
    effect: str
    resolves: bool


@dataclass(slots=True)
class Card:
    """Everything an approver needs to decide one request, without leaving it."""

    request: dict[str, Any]
    terms: list[TermView]
    sla: Sla
    age: str
    chain: list[RequestSummary]
    trades: list[Trade]
    decidable: bool
    why_not: str | None
    on_behalf_of: str | None
    shown: str  # what the card showed (status, values), for "what changed" after a 412/409
    names: TermNames
    attributes: list[tuple[str, str]] = field(default_factory=list)
    other_terms: list[tuple[str, str]] = field(default_factory=list)


OPERATORS = {">=": "≥", "<=": "≤", "==": "=", "!=": "≠", "in": "one of", "not_in": "none of"}


def trades_of(trades: Sequence[Mapping[str, Any]], names: TermNames) -> list[Trade]:
    """Suggested trades as sentences: what to ask for, and what it does to the band."""
    out = []
    for trade in trades:
        asks = " and ".join(
            f"{names.labels.get(a['term'], label(a['term']))} {OPERATORS.get(a['op'], a['op'])} "
            + (
                ", ".join(names.value(a["term"], v) for v in a["value"])
                if isinstance(a["value"], list)
                else names.value(a["term"], a["value"])
            )
            for a in trade["asks"]
        )
        before, after = trade.get("band_edge_before"), trade.get("band_edge_after")
        effect = (
            f"band edge {names.value(trade['term'], before)} → {names.value(trade['term'], after)}"
            if before is not None and after is not None
            else f"removes {names.value(trade['term'], trade['variance_removed'])} of variance"
        )
        term = names.labels.get(trade["term"], label(trade["term"]))
        out.append(Trade(term, asks, effect, trade["resolves"]))
    return out


@dataclass(frozen=True, slots=True)
class TermNames:
    """How a playbook version names its terms: label, unit and kind by key."""

    labels: dict[str, str]
    units: dict[str, str | None]
    kinds: dict[str, str]

    def value(self, key: str, value: object) -> str:
        return term_value(value, self.units.get(key), self.kinds.get(key, "number"))


def term_names(doc: PlaybookDocument | None) -> TermNames:
    if doc is None:
        return TermNames({}, {}, {})
    return TermNames(
        labels={t.key: t.label or label(t.key) for t in doc.terms},
        units={t.key: getattr(t, "unit", None) for t in doc.terms},
        kinds={t.key: t.kind for t in doc.terms},
    )


def shown_values(request: Mapping[str, Any]) -> str:
    """What a card showed, carried by its form: status and covered values."""
    return json.dumps(
        {"status": request["status"], "terms": {t["key"]: t["value"] for t in request["terms"]}},
        sort_keys=True,
    )


def changes_since(shown: str, request: Mapping[str, Any]) -> list[str]:
    """What changed between what a card showed and the request now, in words."""
    try:
        before = json.loads(shown) if shown else {}
    except ValueError:
        before = {}
    if not isinstance(before, dict):
        before = {}
    out = []
    decision = request.get("decision")
    if before.get("status") not in (None, request["status"]):
        line = f"Status: {label(before['status'])} → {label(request['status'])}"
        if decision and decision.get("decided_by"):
            line += f" by {actor(decision['decided_by'])}, {when(decision['decided_at'])}"
        out.append(line)
    values = before.get("terms")
    values = values if isinstance(values, dict) else {}
    covered = {t["key"] for t in request["terms"]}
    for term in request["terms"]:
        was = values.get(term["key"], ...)
        if values and (was is ... or was != term["value"]):
            old = "not covered" if was is ... else term_value(was, term["unit"], term["kind"])
            new = term_value(term["value"], term["unit"], term["kind"])
            out.append(f"{term['label']}: {old} → {new}")
    out.extend(
        f"{label(key)} is no longer part of this request" for key in values if key not in covered
    )
    return out


def card(
    session: Session,
    registry: PlaybookRegistry,
    principal: Principal,
    request_id: int,
    documents: Documents | None = None,
) -> Card:
    """The card of one request (404 when it does not exist)."""
    read = approval_service.get_request(session, request_id).model_dump(mode="json")
    return card_of(session, registry, principal, read, documents)


def card_of(
    session: Session,
    registry: PlaybookRegistry,
    principal: Principal,
    read: dict[str, Any],
    documents: Documents | None = None,
) -> Card:
    documents = documents or Documents(session, registry)
    doc = documents.get(read["playbook"]["key"], read["playbook"]["version"])
    names = term_names(doc)
    terms = [view(t, doc.term(t["key"]) if doc else None) for t in read["terms"]]
    deal = deal_service.get_deal(session, read["deal"]["external_id"])
    chain = [
        approval_service.summary(r)
        for r in approval_service.requests_of(session, deal)
        if r.round == read["round"]
    ]
    chain.sort(key=lambda r: (r.step, r.chain_group, r.id))
    decidable, why_not, on_behalf_of = False, None, None
    if read["status"] == RequestStatus.pending:
        try:
            grant = approval_service.authority(session, principal, read["group"])
            decidable = True
            # Decisions record the delegator as `key:<id>:<name>`; a person reads the name.
            on_behalf_of = grant.on_behalf_of and grant.on_behalf_of.split(":", 2)[-1]
            if grant.admin_override:
                why_not = "You are deciding as an admin: the decision is recorded as an override."
        except Forbidden as exc:
            why_not = exc.detail
    elif read["status"] == RequestStatus.waiting:
        why_not = "An earlier step of this chain must approve first."
    covered = {t["key"] for t in read["terms"]}
    attributes = attribute_rows(read["deal"]["attributes"])
    other_terms = [
        (names.labels.get(k, label(k)), names.value(k, v))
        for k, v in sorted(read["deal"]["terms"].items())
        if k not in covered
    ]
    return Card(
        request=read,
        terms=terms,
        sla=sla(read),
        age=age(read),
        chain=chain,
        trades=trades_of(read["trades"], names),
        decidable=decidable,
        why_not=why_not,
        on_behalf_of=on_behalf_of,
        shown=shown_values(read),
        names=names,
        attributes=attributes,
        other_terms=other_terms,
    )


def is_open(status: str) -> bool:
    return status in OPEN
