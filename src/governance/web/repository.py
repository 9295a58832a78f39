"""SQL for console sessions and the generated signing secret."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from governance.auth.models import ApiKey
from governance.db import utcnow
from governance.web.models import WebSecret, WebSession


class WebSessionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def with_key(self, token_hash: str) -> tuple[WebSession, ApiKey] | None:
        """The sign-in with this id hash and the key it signed in with, in one statement."""
        row = self.session.execute(
            select(WebSession, ApiKey)
            .join(ApiKey, ApiKey.id == WebSession.key_id)
            .where(WebSession.token_hash == token_hash)
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    def add(self, web_session: WebSession) -> WebSession:
        self.session.add(web_session)
        self.session.flush()
        return web_session

    def end(self, token_hash: str, at: datetime) -> bool:
        """Close the sign-in; False when it was unknown or already closed."""
        result = self.session.execute(
            update(WebSession)
            .where(WebSession.token_hash == token_hash, WebSession.ended_at.is_(None))
            .values(ended_at=at, updated_at=at)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    def purge(self, expired_before: datetime) -> None:
        """Forget sign-ins that expired long ago (the audit log keeps who signed in when)."""
        self.session.execute(
            delete(WebSession)
            .where(WebSession.expires_at < expired_before)
            .execution_options(synchronize_session=False)
        )


class WebSecretRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, name: str) -> str | None:
        return self.session.scalar(select(WebSecret.value).where(WebSecret.name == name))

    def create_once(self, name: str, value: str) -> str:
        """Store `value` under `name` unless a value is already there; returns the stored one.

        Workers starting together may each generate one: the first insert wins and everyone
        reads it back, so they all sign with the same secret.
        """
        now = utcnow()
        dialect = self.session.get_bind().dialect.name
        insert_ = (pg_insert if dialect == "postgresql" else sqlite_insert)(WebSecret)
        self.session.execute(
            insert_.values(
                name=name, value=value, created_at=now, updated_at=now
            ).on_conflict_do_nothing()
        )
        stored = self.get(name)
        assert stored is not None
        return stored
