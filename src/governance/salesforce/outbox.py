"""The Salesforce push queue: what must go out, written in the transaction that changed it.

Each place that changes what Salesforce shows of a deal (a stored check's verdict or variance,
a review's or a request's status, an outcome, a deletion) calls `enqueue` in its own
transaction, the way approvals queue webhook notifications. One row per deal: a later change
bumps the row, and the pusher (`outbound.push`) sends the deal's *current* values, so changes
coalesce. Nothing is installed on import and nothing depends on which modules a process loaded.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.orm import Session

from governance.db import utcnow
from governance.observability.context import current_request_id
from governance.salesforce import outbox_repository


def enqueue(session: Session, deal_id: int) -> None:
    """Queue the deal's governance fields for the next push (in the caller's transaction)."""
    outbox_repository.mark_dirty(session.connection(), (deal_id,), utcnow(), current_request_id())


def enqueue_many(session: Session, deal_ids: Collection[int]) -> None:
    """`enqueue` for many deals, in one statement."""
    if deal_ids:
        outbox_repository.mark_dirty(session.connection(), deal_ids, utcnow(), current_request_id())
