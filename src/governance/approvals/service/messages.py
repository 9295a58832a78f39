"""Slack-compatible notifications about approval requests, queued in the webhook outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from governance.approvals.models import ApprovalRequest
from governance.deals.models import Deal
from governance.notifications import service as notifications
from governance.settings import Settings


def message(
    event: str, request: ApprovalRequest, deal: Deal, settings: Settings, extra: str = ""
) -> dict[str, Any]:
    """A Slack-compatible body: `text` for any client, `blocks` for Slack's layout."""
    link = f"{settings.public_url.rstrip('/')}/v1/approvals/{request.id}"
    title = {
        "approval.requested": "Approval requested",
        "approval.reminder": "Reminder: approval waiting",
        "approval.escalated": "Escalated approval",
        "approval.decided": f"Approval {request.status}",
        "approval.withdrawn": "Approval request closed",
    }.get(event, event)
    name = deal.name or deal.external_id
    lines = [
        f"• {e['label']}: {e['value']}{' ' + e['unit'] if e.get('unit') else ''} "
        f"({e['status']}, tier {e['tier']})"
        for e in request.terms
    ]
    text = f"{title} for {request.group} (step {request.step}): {name}. {extra}".strip()
    return {
        "text": f"{text}\n" + "\n".join(lines) + f"\n{link}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"<{link}|Open request {request.id}>"}],
            },
        ],
        "deal": {"external_id": deal.external_id, "name": deal.name, "status": deal.status},
        "request": {
            "id": request.id,
            "group": request.group,
            "step": request.step,
            "status": request.status,
            "terms": [{"key": e["key"], "value": e["value"]} for e in request.terms],
            "due_at": request.due_at.isoformat() if request.due_at else None,
        },
        "event": event,
        "link": link,
    }


def notify(
    session: Session,
    event: str,
    request: ApprovalRequest,
    deal: Deal,
    settings: Settings,
    extra: str = "",
) -> None:
    notifications.enqueue(
        session, event, request.group, message(event, request, deal, settings, extra)
    )
