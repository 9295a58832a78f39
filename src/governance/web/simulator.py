"""The check simulator: pick a playbook (or let scope decide), enter terms, see the verdict.

Every keystroke (htmx, 300 ms after the last) asks `/simulator/result`, which runs the same
`deals.service.check` as `POST /v1/checks` and stores nothing. It is a GET: it changes nothing,
and a simulation is a link one can share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from starlette.datastructures import QueryParams

from governance.deals import service as deal_service
from governance.deals.schemas import CheckRequest, ValuePosition
from governance.engine.document import ChoiceTerm, FlagTerm, NumberTerm, PlaybookDocument
from governance.errors import InvalidInput, problem_body
from governance.http import Registry
from governance.playbooks.registry import Published, resolve
from governance.web import cards
from governance.web.dependencies import AnyViewer, PageRoute
from governance.web.rendering import label, render_page, render_partial
from governance.web.terms import TermView, view

router = APIRouter(route_class=PageRoute)

# Always offered; attributes that published scopes and rules use are added after them.
STANDARD_ATTRIBUTES = ("region", "segment", "amount", "currency", "value_position")
MAX_TEXT = 100


@dataclass(slots=True)
class Field:
    """One input of the form: a term or an attribute."""

    name: str  # the form field: t.<term> or a.<attribute>
    key: str
    label: str
    kind: str  # number, choice, flag, text
    value: str
    unit: str | None = None
    options: list[str] = field(default_factory=list)
    hint: str = ""
    error: str | None = None


@dataclass(slots=True)
class Simulation:
    playbooks: list[Published]
    chosen: str  # the playbook key picked, "" when scope decides
    fields_for: Published | None  # whose terms the form shows
    attributes: list[Field]
    terms: list[Field]
    result: dict[str, Any] | None = None
    views: list[TermView] = field(default_factory=list)
    trades: list[cards.Trade] = field(default_factory=list)
    rules: list[tuple[str, str]] = field(default_factory=list)
    problem: str | None = None
    stated: bool = False
    names: cards.TermNames = field(default_factory=lambda: cards.term_names(None))


def _value(params: QueryParams, name: str) -> str:
    values = params.getlist(name)
    return values[-1].strip()[:MAX_TEXT] if values else ""


def _attribute_names(index: tuple[Published, ...]) -> list[str]:
    names = list(STANDARD_ATTRIBUTES)
    for published in index:
        doc = published.compiled.document
        used = list(doc.scope) + [c.attribute for r in doc.rules for c in r.when if c.attribute]
        for name in used:
            if name not in names:
                names.append(name)
    return names


def _term_field(term: NumberTerm | ChoiceTerm | FlagTerm, value: str) -> Field:
    name = f"t.{term.key}"
    text = term.label or label(term.key)
    if isinstance(term, NumberTerm):
        better = "lower" if term.direction.value == "lower_is_better" else "higher"
        band = f"band {term.band.low}–{term.band.high}"
        return Field(
            name, term.key, text, "number", value, term.unit, hint=f"{band}, {better} is better"
        )
    if isinstance(term, ChoiceTerm):
        return Field(
            name, term.key, text, "choice", value, options=list(term.options),
            hint="allowed alone: " + ", ".join(label(o) for o in term.band.allowed),
        )  # fmt: skip
    return Field(
        name, term.key, text, "flag", value,
        hint=f"preferred: {'yes' if term.preferred else 'no'}",
    )  # fmt: skip


def _form_terms(doc: PlaybookDocument, params: QueryParams) -> list[Field]:
    terms = sorted(doc.terms, key=lambda t: t.priority)
    return [_term_field(t, _value(params, f"t.{t.key}")) for t in terms]


def _wire_terms(fields: list[Field]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in fields:
        if item.kind == "flag":
            out[item.key] = item.value == "true"
        elif item.value:
            out[item.key] = item.value
    return out


def simulate(index: tuple[Published, ...], params: QueryParams) -> Simulation:
    """Read the form, check it if any term is stated, and say what went wrong by field."""
    chosen = _value(params, "playbook")
    attributes = [
        Field(
            f"a.{name}",
            name,
            label(name).capitalize(),
            "choice" if name == "value_position" else "text",
            _value(params, f"a.{name}"),
            options=[p.value for p in ValuePosition] if name == "value_position" else [],
        )
        for name in _attribute_names(index)
    ]
    wire_attributes = {a.key: a.value for a in attributes if a.value}
    simulation = Simulation(list(index), chosen, None, attributes, [])
    if not index:
        simulation.problem = "No playbook is published yet: publish one to check deals."
        return simulation
    try:
        simulation.fields_for = resolve(index, wire_attributes, chosen or None)
    except InvalidInput as exc:
        simulation.problem = _problem_text(exc)
        simulation.fields_for = next((p for p in index if not p.scope), index[-1])
    doc = simulation.fields_for.compiled.document
    simulation.terms = _form_terms(doc, params)
    wire_terms = _wire_terms(simulation.terms)
    simulation.stated = any(f.value for f in simulation.terms if f.kind != "flag")
    if simulation.problem or not simulation.stated:
        return simulation
    by_name = {f.name: f for f in simulation.attributes + simulation.terms}
    try:
        body = CheckRequest.model_validate(
            {
                "playbook": simulation.fields_for.key,
                "attributes": wire_attributes,
                "terms": wire_terms,
            }
        )
    except ValidationError as exc:
        for error in exc.errors():
            loc = [str(p) for p in error["loc"]]
            name = {"attributes": "a.", "terms": "t."}.get(loc[0], "") + ".".join(loc[1:2])
            target = by_name.get(name)
            message = error["msg"].removeprefix("Value error, ")
            if target is not None and target.error is None:
                target.error = message
            elif target is None:
                simulation.problem = message
        return simulation
    try:
        result = deal_service.check(index, body)
    except InvalidInput as exc:
        for problem in exc.errors:
            name = {"attributes": "a.", "terms": "t."}.get(str(problem.loc[0]), "") + ".".join(
                str(p) for p in problem.loc[1:2]
            )
            target = by_name.get(name)
            if target is not None:
                target.error = problem.message
            else:
                simulation.problem = problem.message
        if not exc.errors:
            simulation.problem = _problem_text(exc)
        return simulation
    names = cards.term_names(doc)
    simulation.names = names
    simulation.result = result
    simulation.views = [
        view(t, doc.term(t["key"])) for t in result["terms"] if t["status"] != "missing"
    ]
    simulation.trades = cards.trades_of(result["trades"], names)
    descriptions = {r.key: r.description or "" for r in doc.rules}
    simulation.rules = [(r, descriptions.get(r, "")) for r in result["rules_fired"]]
    return simulation


def _problem_text(exc: InvalidInput) -> str:
    body = problem_body(exc)
    errors = body.get("errors") or []
    return "; ".join(e["message"] for e in errors) or str(body.get("detail") or body["title"])


@router.get("/simulator")
def simulator(request: Request, viewer: AnyViewer, registry: Registry) -> Response:
    simulation = simulate(registry.published_sync(), request.query_params)
    return render_page(request, "simulator.html", title="Check simulator", sim=simulation)


@router.get("/simulator/result")
def simulator_result(request: Request, viewer: AnyViewer, registry: Registry) -> Response:
    simulation = simulate(registry.published_sync(), request.query_params)
    shown = request.query_params.get("fields_for", "")
    refresh_fields = simulation.fields_for is not None and shown != simulation.fields_for.key
    return render_partial(
        request,
        "partials/sim_result.html",
        sim=simulation,
        refresh_fields=refresh_fields,
    )
