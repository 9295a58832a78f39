"""Notifications: outbox rows written with the change; the worker posts them to group webhooks.

A post that fails is retried with exponential backoff and jitter, and parked as `dead` after
`notify_max_attempts`. Nothing here runs inside an API request: a slow or broken webhook can
never delay or undo a decision.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session

from governance.approvals.repository import ApprovalRepository
from governance.db import Clock, Database, utcnow
from governance.notifications import targets
from governance.notifications.models import Notification, NotificationStatus
from governance.notifications.repository import NotificationRepository
from governance.observability.context import current_request_id, request_id_bound

log = logging.getLogger(__name__)
# httpx logs every request's full URL at INFO, and a webhook URL's path is its secret.
logging.getLogger("httpx").setLevel(logging.WARNING)

BACKOFF_BASE_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 3600.0
# While a worker posts a claimed row, other workers leave it alone for this long.
LEASE_SECONDS = 120.0


def enqueue(session: Session, event: str, group: str, payload: dict[str, Any]) -> bool:
    """Queue a post to the group's webhook in the caller's transaction; False if it has none."""
    config = ApprovalRepository(session).group(group)
    if config is None or not config.webhook_url:
        return False
    now = utcnow()
    NotificationRepository(session).add(
        Notification(
            event=event,
            group=group,
            payload=payload,
            status=NotificationStatus.pending,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
            request_id=current_request_id(),
        )
    )
    return True


def backoff(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before attempt `attempts + 1`: exponential, capped, with full jitter."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return (rng or random).uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    event: str
    group: str
    request_id: str | None
    url: str | None
    payload: dict[str, Any]
    attempts: int
    lease: datetime  # our claim: the row's next_attempt_at while we hold it


@dataclass
class DrainReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0


def _claim(db: Database, now: datetime, limit: int, lease: timedelta) -> list[_Claimed]:
    with db.unit_of_work() as session:
        rows = NotificationRepository(session).claim_due(
            now, limit=limit, skip_locked=not db.is_sqlite
        )
        urls = {
            g.name: g.webhook_url
            for g in ApprovalRepository(session).groups({r.group for r in rows})
        }
        claimed = []
        for row in rows:
            row.next_attempt_at = now + lease
            claimed.append(
                _Claimed(
                    row.id,
                    row.event,
                    row.group,
                    row.request_id,
                    urls.get(row.group),
                    row.payload,
                    row.attempts,
                    row.next_attempt_at,
                )
            )
        return claimed


def _post(client: httpx.Client, item: _Claimed, policy: targets.WebhookPolicy) -> str | None:
    """None on success, else a short error that never includes the URL (it holds a secret).

    The target is checked again now (what the host resolves to may have changed since it was
    saved), the post goes to the address checked, and a redirect is an error, never followed.
    """
    if not item.url:
        return f"group {item.group!r} has no webhook URL"
    try:
        target = targets.pin(item.url, policy)
    except targets.UnsafeWebhook as exc:
        return f"refused: {exc.reason}"
    except (OSError, UnicodeError):
        return "the webhook host does not resolve"
    try:
        response = client.post(
            target.url,
            json=item.payload,
            headers=target.headers,
            extensions=target.extensions,
            follow_redirects=False,
        )
    except httpx.TimeoutException:
        return "timed out"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}"
    if response.is_success:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"


def drain(
    db: Database,
    *,
    max_attempts: int,
    timeout: float,
    policy: targets.WebhookPolicy,
    limit: int = 20,
    client: httpx.Client | None = None,
    rng: random.Random | None = None,
    clock: Clock = utcnow,
) -> DrainReport:
    """Post due notifications once each; record each outcome in its own small transaction.

    Claims are small and leased for longer than posting them all can take (each post is
    bounded by `timeout` per phase), so another worker never takes over a claim still being
    posted; an outcome is recorded only while the claim is still ours.
    """
    report = DrainReport()
    lease = timedelta(seconds=max(LEASE_SECONDS, limit * (4 * timeout + 1)))
    claimed = _claim(db, clock(), limit, lease)
    if not claimed:
        return report
    own = client is None
    http = client or httpx.Client(timeout=timeout, follow_redirects=False)
    try:
        for item in claimed:
            with request_id_bound(item.request_id):  # its lines name the request that queued it
                _deliver(db, http, item, policy, max_attempts, report, rng, clock)
    finally:
        if own:
            http.close()
    return report


def _deliver(
    db: Database,
    http: httpx.Client,
    item: _Claimed,
    policy: targets.WebhookPolicy,
    max_attempts: int,
    report: DrainReport,
    rng: random.Random | None,
    clock: Clock,
) -> None:
    """Post one claimed notification and record the outcome, if the claim is still ours."""
    error = _post(http, item, policy)
    with db.unit_of_work() as session:
        row = NotificationRepository(session).get(item.id)
        if (
            row is None
            or row.status != NotificationStatus.pending
            or row.next_attempt_at != item.lease
        ):
            return  # our lease ran out and another worker took it over
        now = clock()
        row.attempts = item.attempts + 1
        if error is None:
            row.status, row.sent_at, row.last_error = NotificationStatus.sent, now, None
            report.sent += 1
            log.info("notification %s (%s) to %s: sent", item.id, item.event, item.group)
        elif row.attempts >= max_attempts:
            row.status, row.last_error = NotificationStatus.dead, error
            report.dead += 1
            log.warning("notification %s to %s is dead: %s", item.id, item.group, error)
        else:
            row.last_error = error
            row.next_attempt_at = now + timedelta(seconds=backoff(row.attempts, rng))
            report.retried += 1
            log.info(
                "notification %s (%s) to %s: %s; retrying",
                item.id, item.event, item.group, error,
            )  # fmt: skip


def webhook_host(url: str | None) -> str | None:
    """The host of a webhook URL: enough to recognise it, without the secret path."""
    return urlsplit(url).hostname if url else None
