"""Approval requests as JSON-ready dicts, without pydantic on the queue's path.

A queue page is 50 requests with their terms, trades and history: building and re-validating
pydantic models for it cost several times the SQL. The stored covered terms and trades are
already JSON, so they pass through. The test suite validates these bodies against
`ApprovalRequestRead`, and the contract tests validate them against the published schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from governance.approvals.models import ApprovalRequest
from governance.deals import service as deal_service
from governance.deals.models import Deal


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _attribute(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def deal_json(deal: Deal) -> dict[str, Any]:
    attributes = {
        name: _attribute(getattr(deal, name))
        for name in deal_service.KNOWN_ATTRIBUTES
        if getattr(deal, name) is not None
    }
    attributes.update(deal.extra_attributes or {})
    return {
        "external_id": deal.external_id,
        "name": deal.name,
        "status": deal.status,
        "attributes": attributes,
        "terms": deal.terms,
    }


def past_json(request: ApprovalRequest) -> dict[str, Any]:
    return {
        "request_id": request.id,
        "group": request.group,
        "step": request.step,
        "status": request.status,
        "decided_by": request.decided_by,
        "on_behalf_of": request.on_behalf_of,
        "admin_override": request.admin_override,
        "decided_at": _time(request.decided_at),
        "reason": request.reason,
        "values": request.decided_values,
        "counter_terms": request.counter_terms,
    }


def request_json(
    request: ApprovalRequest,
    deal: dict[str, Any],
    trades: Sequence[dict[str, Any]],
    history: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    keys = {entry["key"] for entry in request.terms}
    return {
        "id": request.id,
        "version": request.lock_version,
        "status": request.status,
        "group": request.group,
        "chain_group": request.chain_group,
        "step": request.step,
        "round": request.round,
        "deal": deal,
        "terms": request.terms,
        "trades": [t for t in trades if t["term"] in keys],
        "history": [h for h in history if h["request_id"] != request.id],
        "playbook": {"key": request.playbook_key, "version": request.playbook_version},
        "submitted_by": request.submitted_by,
        "opened_at": _time(request.opened_at),
        "due_at": _time(request.due_at),
        "reminded_at": _time(request.reminded_at),
        "escalated_at": _time(request.escalated_at),
        "escalation_level": request.escalation_level,
        "decision": past_json(request) if request.decided_at else None,
    }
