"""Sync rules the API and the command line share: status, the outbox, Outbound Messages."""

from __future__ import annotations

import hmac
from datetime import timedelta
from xml.etree import ElementTree

from sqlalchemy.orm import Session

from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.db import utcnow
from governance.deals.schemas import salesforce_id_18
from governance.errors import Forbidden, InvalidInput, NotFound
from governance.heartbeats.repository import HeartbeatRepository
from governance.problems import Problem
from governance.salesforce.client import SalesforceClient, SimpleSalesforceClient
from governance.salesforce.mapping import SyncMapping, load
from governance.salesforce.models import OutboxItem, OutboxStatus
from governance.salesforce.repository import SalesforceRepository
from governance.salesforce.schemas import (
    ApiUsageRead,
    HeartbeatRead,
    OutboxItemRead,
    RunRead,
    SyncStatus,
)
from governance.settings import SalesforceSettings, Settings

OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"
ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    "<soapenv:Body>"
    f'<notificationsResponse xmlns="{OUTBOUND_NS}"><Ack>true</Ack></notificationsResponse>'
    "</soapenv:Body></soapenv:Envelope>"
)


class NotConfigured(InvalidInput):
    title = "Salesforce sync is not configured"
    slug = "salesforce-not-configured"


def mapping_of(settings: Settings) -> SyncMapping:
    path = settings.salesforce.mapping_file
    if path is None:
        raise NotConfigured("set GOVERNANCE_SALESFORCE__MAPPING_FILE to a mapping file")
    return load(path)


def client_of(settings: Settings) -> SalesforceClient:
    return SimpleSalesforceClient(settings.salesforce)


def status(session: Session, settings: Settings, sobject: str = "Opportunity") -> SyncStatus:
    repo = SalesforceRepository(session)
    state = repo.state(sobject)
    usage = None
    if state.api_used is not None and state.api_limit is not None:
        usage = ApiUsageRead(used=state.api_used, limit=state.api_limit, seen_at=state.api_seen_at)
    return SyncStatus(
        configured=settings.salesforce.mapping_file is not None,
        sobject=sobject,
        watermark=state.watermark,
        full_load_done=state.full_load_done,
        paused_until=state.paused_until,
        pause_reason=state.pause_reason,
        api_usage=usage,
        outbox={"pending": 0, "dead": 0, **repo.outbox_counts()},
        fetch_queue=repo.fetch_queue_size(),
        runs=[
            RunRead(
                id=r.id,
                kind=r.kind,
                status=r.status,
                started_at=r.started_at,
                finished_at=r.finished_at,
                counts=r.counts,
                api_calls=r.api_calls,
                error=r.error,
                problems=r.problems,
            )
            # The last ten of each kind, newest first: frequent pushes must not hide the pulls.
            for r in sorted([*repo.runs(10, "pull"), *repo.runs(10, "push")], key=lambda r: -r.id)
        ],
        workers=heartbeats(session, settings),
    )


def heartbeats(session: Session, settings: Settings) -> list[HeartbeatRead]:
    """The worker loops' latest beats, each marked stale after three quiet intervals."""
    limit = timedelta(seconds=max(60.0, 3 * settings.worker_interval_seconds))
    now = utcnow()
    return [
        HeartbeatRead(
            loop=b.loop,
            worker_id=b.worker_id,
            started_at=b.started_at,
            beat_at=b.beat_at,
            pass_at=b.pass_at,
            passes=b.passes,
            last_error=b.last_error,
            last_error_at=b.last_error_at,
            stale=now - b.beat_at > limit,
        )
        for b in HeartbeatRepository(session).latest()
    ]


def read_item(item: OutboxItem, external_id: str) -> OutboxItemRead:
    return OutboxItemRead(
        id=item.id,
        external_id=external_id,
        status=item.status,
        attempts=item.attempts,
        next_attempt_at=item.next_attempt_at,
        last_error=item.last_error,
        last_values=item.last_values,
        updated_at=item.updated_at,
    )


def retry(session: Session, actor: Principal, item_id: int) -> OutboxItemRead:
    """Requeue an outbox row now (a dead one comes back with a fresh set of attempts)."""
    repo = SalesforceRepository(session)
    found = repo.item_with_deal(item_id)
    if found is None:
        raise NotFound(f"outbox item {item_id} does not exist")
    item, external_id = found
    before = read_item(item, external_id).model_dump(mode="json")
    item.status = OutboxStatus.pending
    item.attempts = 0
    item.next_attempt_at = utcnow()
    item.claimed_until = None
    item.claimed_version = None
    session.flush()
    after = read_item(item, external_id)
    audit.record(
        session, actor, "salesforce.outbox_retried", "salesforce_outbox", item_id,
        before=before, after=after.model_dump(mode="json"),
    )  # fmt: skip
    return after


class MalformedMessage(InvalidInput):
    status_code = 400
    title = "Malformed Outbound Message"
    slug = "malformed-outbound-message"


def _bad_message(message: str, loc: tuple[str | int, ...] = ("body",)) -> MalformedMessage:
    return MalformedMessage(message, errors=[Problem(loc, message)])


MAX_NOTIFICATIONS = 100  # per Outbound Message: Salesforce's own limit
_ASCII_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def is_salesforce_id(value: str) -> bool:
    """An ASCII 15-character Id, or an 18-character one whose last 3 are its case checksum."""
    if len(value) not in (15, 18) or not set(value) <= _ASCII_ALNUM:
        return False
    return len(value) == 15 or salesforce_id_18(value[:15]) == value


class _NoDoctype(ElementTree.TreeBuilder):
    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise _bad_message("document type declarations are not accepted")


def _sobject_id(sobject: ElementTree.Element | None) -> str:
    """The record Id in a notification's sObject: `sf:Id` in the enterprise sObject namespace,
    as Salesforce sends it, else an `Id` child in whatever namespace the sender used."""
    if sobject is None:
        return ""
    found = sobject.find(f"{{{SOBJECT_NS}}}Id")
    if found is None:
        found = next((c for c in sobject if c.tag.rsplit("}", 1)[-1] == "Id"), None)
    return (found.text or "").strip() if found is not None else ""


def check_outbound_secret(settings: Settings, secret: str | None) -> None:
    """403 unless an Outbound Message carries the configured shared secret."""
    expected = SalesforceSettings.secret(settings.salesforce.outbound_message_secret)
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, then a 500).
    if (
        expected is None
        or secret is None
        or not hmac.compare_digest(secret.encode(), expected.encode())
    ):
        raise Forbidden("unknown or missing shared secret (`?secret=` on the endpoint URL)")


def outbound_message(session: Session, settings: Settings, body: bytes, secret: str | None) -> int:
    """Queue a fetch of every opportunity an Outbound Message names; returns how many.

    Only the Ids are read: field values in the message are never trusted, the fetch reads the
    opportunity from Salesforce itself.
    """
    sf = settings.salesforce
    check_outbound_secret(settings, secret)
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise _bad_message("document type declarations are not accepted")
    try:
        # The byte check above misses other encodings (UTF-16): the parser refuses them too.
        parser = ElementTree.XMLParser(target=_NoDoctype())
        parser.feed(body)
        root = parser.close()
    except ElementTree.ParseError as exc:
        raise _bad_message(f"not well-formed XML: {exc}") from None
    notifications = root.find(f".//{{{OUTBOUND_NS}}}notifications")
    if notifications is None:
        raise _bad_message("no <notifications> element in the SOAP body")
    org = (notifications.findtext(f"{{{OUTBOUND_NS}}}OrganizationId") or "").strip()
    if sf.organization_id is None or org[:15] != sf.organization_id[:15]:
        raise Forbidden(f"messages from organization {org or '(none)'} are not accepted")
    found = notifications.findall(f"{{{OUTBOUND_NS}}}Notification")
    if len(found) > MAX_NOTIFICATIONS:
        raise _bad_message(
            f"at most {MAX_NOTIFICATIONS} notifications per message (Salesforce's own limit); "
            f"this one has {len(found)}",
            ("body", "notifications", "Notification"),
        )
    ids = []
    for index, notification in enumerate(found):
        sobject = notification.find(f"{{{OUTBOUND_NS}}}sObject")
        raw = _sobject_id(sobject)
        if not is_salesforce_id(raw):
            raise _bad_message(
                f"a notification has no valid sObject Id ({raw[:40]!r}): an ASCII 15- or "
                "18-character Salesforce Id",
                ("body", "notifications", "Notification", index, "sObject", "Id"),
            )
        ids.append(salesforce_id_18(raw))
    if not ids:
        raise _bad_message("the message names no opportunity")
    SalesforceRepository(session).queue_fetch(ids, utcnow())
    return len(ids)
