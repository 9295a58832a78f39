"""SQL for API keys."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from governance.auth.models import ApiKey
from governance.auth.schemas import Role


class ApiKeyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_hash(self, key_hash: str) -> ApiKey | None:
        return self.session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))

    def get(self, key_id: int) -> ApiKey | None:
        return self.session.get(ApiKey, key_id)

    def list(self) -> Sequence[ApiKey]:
        return self.session.scalars(select(ApiKey).order_by(ApiKey.id)).all()

    def active_named(self, name: str) -> ApiKey | None:
        return self.session.scalar(
            select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None)).limit(1)
        )

    def count(self) -> int:
        return self.session.scalar(select(func.count()).select_from(ApiKey)) or 0

    def lock_active_admins(self) -> Sequence[int]:
        """Ids of the unrevoked admin keys, locked until the transaction ends.

        Two admins revoking each other at once: the second waits, then sees the first's
        revocation, so at least one admin key always remains.
        """
        return self.session.scalars(
            select(ApiKey.id)
            .where(ApiKey.role == Role.admin, ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.id)
            .with_for_update()
        ).all()

    def add(self, key: ApiKey) -> ApiKey:
        self.session.add(key)
        self.session.flush()
        return key
