"""The heartbeat table's SQL."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from governance.heartbeats.models import WorkerHeartbeat


class HeartbeatRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def beat(
        self,
        loop: str,
        worker_id: str,
        now: datetime,
        *,
        passed: bool = False,
        error: str | None = None,
    ) -> WorkerHeartbeat:
        """Record that the loop is alive; `passed` ends a pass (failed when `error` is set).

        Each (loop, worker) row has one writer, the loop itself, so a read then a write is safe.
        """
        row = self.session.get(WorkerHeartbeat, (loop, worker_id))
        if row is None:
            row = WorkerHeartbeat(
                loop=loop, worker_id=worker_id, started_at=now, beat_at=now, passes=0
            )
            self.session.add(row)
        row.beat_at = now
        if passed:
            row.pass_at = now
            row.passes = (row.passes or 0) + 1
        if error is not None:
            row.last_error, row.last_error_at = error[:1000], now
        self.session.flush()
        return row

    def latest(self, limit: int = 50) -> list[WorkerHeartbeat]:
        """The most recent beats first (stopped workers' rows stay, going stale)."""
        query = (
            select(WorkerHeartbeat)
            .order_by(WorkerHeartbeat.beat_at.desc(), WorkerHeartbeat.loop)
            .limit(limit)
        )
        return list(self.session.scalars(query))


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[bool]:
    """Whether this process holds `name` across every worker, for the block's duration.

    A PostgreSQL advisory lock on a connection of its own, taken without waiting: False when
    another worker holds it (that worker does the job; this one skips it). SQLite serves one
    worker process, so it is always True there.
    """
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = zlib.crc32(name.encode())
    # A session-level lock, not data: the connection autocommits, so no transaction stays open
    # while the block runs (and nothing here is a unit of work to commit).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        held = bool(
            connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        )
        try:
            yield held
        finally:
            if held:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
