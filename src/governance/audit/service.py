"""Write audit entries in the caller's transaction, so a change and its record commit together;
chain them at commit, and verify the chain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from governance.audit import chain
from governance.audit.models import AuditEntry
from governance.audit.repository import AuditRepository
from governance.auth.principal import Principal
from governance.db import utcnow

PENDING = "governance.audit.pending"
LISTENING = "governance.audit.listening"


def record(
    session: Session,
    actor: Principal,
    action: str,
    entity_type: str,
    entity_id: object,
    *,
    before: Any = None,
    after: Any = None,
    on_behalf_of: str | None = None,
) -> None:
    """Append one entry; `before` and `after` must already be JSON-ready.

    The entry is written when the transaction commits (`_seal`): it joins the hash chain then,
    so the chain's lock is the last one a transaction takes and is held only while it commits.
    """
    now = utcnow()
    entry = {  # an audit_log row (plain values: a page of the sync queues thousands)
        "occurred_at": now,
        "actor": actor.actor,
        "actor_role": actor.role.value,
        "on_behalf_of": on_behalf_of,
        "action": action,
        "entity_type": entity_type,
        "entity_id": str(entity_id),
        "before": before,
        "after": after,
        "created_at": now,
        "updated_at": now,
    }
    session.info.setdefault(PENDING, []).append(entry)
    if not session.info.get(LISTENING):
        session.info[LISTENING] = True
        event.listen(session, "before_commit", _seal)
        event.listen(session, "after_rollback", _forget)


def _seal(session: Session) -> None:
    """Chain the transaction's entries after the log's last one and write them."""
    if session.in_nested_transaction():
        return  # a savepoint's release: its entries wait for the transaction's commit
    pending: list[dict[str, Any]] = session.info.pop(PENDING, [])
    if not pending:
        return
    repo = AuditRepository(session)
    last_id, last_hash = repo.lock_chain_head()
    for entry in pending:
        last_id += 1
        entry["id"] = last_id
        entry["prev_hash"] = last_hash
        entry["entry_hash"] = last_hash = chain.link(last_hash, entry)
    repo.add_many(pending)  # one statement for the transaction's entries
    repo.move_chain_head(last_id, last_hash)


def _forget(session: Session) -> None:
    session.info.pop(PENDING, None)


def _content(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in chain.FIELDS}


@dataclass(frozen=True, slots=True)
class ChainReport:
    entries: int
    broken_at: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify(session: Session) -> ChainReport:
    """Recompute the chain from the first entry: the first broken link, or how many hold."""
    repo = AuditRepository(session)
    # The head first: every entry it covers was committed before it, so the scan sees them all.
    head = repo.chain_head()
    expected = (head.last_id, head.last_hash) if head is not None else None
    previous, count, last_id = chain.GENESIS, 0, 0
    for entry in repo.in_chain_order():
        if entry.prev_hash != previous:
            return ChainReport(
                count,
                entry.id,
                "its prev_hash is not the hash of the entry before it: an entry was removed, "
                "inserted or reordered before it",
            )
        if chain.link(previous, _content(entry)) != entry.entry_hash:
            return ChainReport(
                count, entry.id, "its content does not match its hash: it was changed"
            )
        if expected is not None and entry.id == expected[0] and entry.entry_hash != expected[1]:
            return ChainReport(count, entry.id, "its hash is not the one the chain's head records")
        previous, count, last_id = entry.entry_hash, count + 1, entry.id
    if expected is not None and last_id < expected[0]:
        return ChainReport(
            count,
            expected[0],
            f"the log ends at entry {last_id} but the chain's head records entry {expected[0]}: "
            "the last entries were removed",
        )
    return ChainReport(count)


def page(
    session: Session,
    *,
    before_id: int | None,
    limit: int,
    entity_type: str | None,
    entity_id: str | None,
    action: str | None,
    actor: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Sequence[AuditEntry]:
    return AuditRepository(session).page(
        before_id=before_id,
        limit=limit,
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        actor=actor,
        since=since,
        until=until,
    )
