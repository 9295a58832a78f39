"""SQL for the notification outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from governance.notifications.models import Notification, NotificationStatus


class NotificationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, notification: Notification) -> Notification:
        self.session.add(notification)
        return notification

    def claim_due(self, now: datetime, *, limit: int, skip_locked: bool) -> Sequence[Notification]:
        """Pending rows due now, locked so concurrent workers take different ones."""
        query = (
            select(Notification)
            .where(
                Notification.status == NotificationStatus.pending,
                Notification.next_attempt_at <= now,
            )
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(limit)
        )
        if skip_locked:
            query = query.with_for_update(skip_locked=True)
        return self.session.scalars(query).all()

    def get(self, notification_id: int) -> Notification | None:
        return self.session.get(Notification, notification_id)

    def counts(self) -> dict[str, int]:
        rows = self.session.execute(
            select(Notification.status, func.count()).group_by(Notification.status)
        ).tuples()
        return dict(rows.all())
