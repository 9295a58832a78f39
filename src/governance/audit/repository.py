"""SQL for the audit log: insert and read, never update; and the chain's head."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from governance.audit.chain import GENESIS
from governance.audit.models import AuditChainHead, AuditEntry
from governance.db import insert_rows, utcnow

HEAD_ID = 1
CHAIN_LOCK_ID = 727_011  # pg_advisory_xact_lock key, only while the head row is rebuilt


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, entry: AuditEntry) -> None:
        self.session.add(entry)

    def add_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write many entries (rows of columns, ids included) in one statement."""
        if rows:
            insert_rows(self.session, AuditEntry, rows)

    def lock_chain_head(self) -> tuple[int, str]:
        """The chain's last id and hash, holding the head's row lock until the transaction ends.

        An UPDATE, not a SELECT: on PostgreSQL a second writer waits for the first to commit
        and then reads what it wrote; on SQLite it takes the database's write lock first.
        """
        touch = (
            update(AuditChainHead)
            .where(AuditChainHead.id == HEAD_ID)
            .values(updated_at=utcnow())
            .returning(AuditChainHead.last_id, AuditChainHead.last_hash)
            .execution_options(synchronize_session=False)
        )
        row = self.session.execute(touch).one_or_none()
        if row is not None:
            return row[0], row[1]
        # No head row (a database emptied by hand): rebuild it from the log, one writer at a time.
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": CHAIN_LOCK_ID})
            row = self.session.execute(touch).one_or_none()
            if row is not None:
                return row[0], row[1]
        last = self.session.execute(
            select(AuditEntry.id, AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)
        ).one_or_none()
        last_id, last_hash = (last[0], last[1]) if last is not None else (0, GENESIS)
        self.session.add(AuditChainHead(id=HEAD_ID, last_id=last_id, last_hash=last_hash))
        self.session.flush()
        return last_id, last_hash

    def move_chain_head(self, last_id: int, last_hash: str) -> None:
        self.session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.id == HEAD_ID)
            .values(last_id=last_id, last_hash=last_hash, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )

    def chain_head(self) -> AuditChainHead | None:
        return self.session.get(AuditChainHead, HEAD_ID, populate_existing=True)

    def in_chain_order(self, batch: int = 1000) -> Iterator[AuditEntry]:
        """Every entry, oldest first, streamed."""
        return self.session.scalars(
            select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=batch)
        )

    def page(
        self,
        *,
        before_id: int | None,
        limit: int,
        entity_type: str | None = None,
        entity_id: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Sequence[AuditEntry]:
        """Newest first, `limit` entries older than `before_id`."""
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(AuditEntry.id < before_id)
        if entity_type is not None:
            query = query.where(AuditEntry.entity_type == entity_type)
        if entity_id is not None:
            query = query.where(AuditEntry.entity_id == entity_id)
        if action is not None:
            query = query.where(AuditEntry.action == action)
        if actor is not None:
            query = query.where(AuditEntry.actor == actor)
        if since is not None:
            query = query.where(AuditEntry.occurred_at >= since)
        if until is not None:
            query = query.where(AuditEntry.occurred_at < until)
        return self.session.scalars(query).all()
