"""Deal pages: find a deal by Opportunity Id; one deal's check, history, review and outcome."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from governance.approvals import service as approval_service
from governance.db import DbSession
from governance.deals import service as deal_service
from governance.deals.repository import DealRepository
from governance.deals.schemas import salesforce_id_18
from governance.errors import NotFound
from governance.http import Registry
from governance.outcomes import service as outcome_service
from governance.web import cards
from governance.web.dependencies import AnyViewer, PageRoute
from governance.web.rendering import attribute_rows, label, render_page
from governance.web.terms import view

router = APIRouter(route_class=PageRoute)

OPPORTUNITY_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
HISTORY = 20
RECENT = 25


@router.get("/deals")
def deals(
    request: Request,
    viewer: AnyViewer,
    session: DbSession,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    query = (q or "").strip()
    problem = None
    if query:
        if OPPORTUNITY_ID.match(query):
            return RedirectResponse(f"/deals/{salesforce_id_18(query)}", status_code=303)
        problem = (
            f"“{query}” is not an Opportunity Id: those are 15 or 18 letters and digits, "
            "like 0065g00000AbCdEAAZ."
        )
    recent = DealRepository(session).page(before_id=None, limit=RECENT)
    return render_page(
        request,
        "deals.html",
        status_code=422 if problem else 200,
        title="Deals",
        query=query,
        problem=problem,
        deals=[deal_service.read_deal(d) for d in recent],
    )


def _check_view(check: Any, documents: cards.Documents) -> dict[str, Any]:
    result = check.result.model_dump(mode="json")
    doc = documents.get(result["playbook"]["key"], result["playbook"]["version"])
    names = cards.term_names(doc)
    return {
        "check": check,
        "result": result,
        "terms": [
            view(t, doc.term(t["key"]) if doc else None)
            for t in result["terms"]
            if t["status"] != "missing"
        ],
        "missing": [t["label"] for t in result["terms"] if t["status"] == "missing"],
        "trades": cards.trades_of(result["trades"], names),
    }


@router.get("/deals/{external_id}")
def deal_page(
    request: Request,
    external_id: Annotated[str, Path(pattern=OPPORTUNITY_ID.pattern)],
    viewer: AnyViewer,
    session: DbSession,
    registry: Registry,
) -> Response:
    try:
        deal = deal_service.get_deal(session, external_id)
    except NotFound:
        return render_page(
            request,
            "error.html",
            status_code=404,
            title="No such deal",
            detail=f"No deal has the Opportunity Id {external_id}. Check the Id in Salesforce, "
            "or the deal has not been synced or stored yet.",
        )
    read = deal_service.read_deal(deal)
    documents = cards.Documents(session, registry)
    checks = [
        deal_service.read_check(c, deal.external_id)
        for c in DealRepository(session).checks(deal.id, before_id=None, limit=HISTORY)
    ]
    current = _check_view(checks[0], documents) if checks else None
    requests = approval_service.requests_of(session, deal)
    rounds: dict[int, list[Any]] = {}
    for row in sorted(requests, key=lambda r: (-r.round, r.step, r.chain_group, r.id)):
        rounds.setdefault(row.round, []).append(approval_service.summary(row))
    try:
        outcome = outcome_service.get_outcome(session, deal.external_id)
    except NotFound:
        outcome = None
    names = (
        cards.term_names(
            documents.get(checks[0].result.playbook.key, checks[0].result.playbook.version)
        )
        if checks
        else cards.term_names(None)
    )
    return render_page(
        request,
        "deal.html",
        title=read.name or read.external_id,
        deal=read,
        attributes=attribute_rows(read.attributes.model_dump(mode="json", exclude_none=True)),
        terms=[(names.labels.get(k, label(k)), names.value(k, v)) for k, v in read.terms.items()],
        current=current,
        checks=checks,
        rounds=sorted(rounds.items(), reverse=True),
        current_round=deal.approval_round,
        outcome=outcome,
        names=names,
    )
