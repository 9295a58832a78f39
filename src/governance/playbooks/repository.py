"""SQL for playbooks, versions and sign-offs."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, selectinload

from governance.playbooks.models import (
    CatalogTerm,
    Playbook,
    PlaybookVersion,
    Signoff,
    VersionStatus,
)

PUBLISH_LOCK_ID = 727_001  # pg_advisory_xact_lock key serialising publications


class PlaybookRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_key(self, key: str) -> Playbook | None:
        return self.session.scalar(
            select(Playbook)
            .where(Playbook.key == key)
            .options(selectinload(Playbook.versions))
            .execution_options(populate_existing=True)
        )

    def list(self) -> Sequence[Playbook]:
        return self.session.scalars(
            select(Playbook)
            .order_by(Playbook.key)
            .options(selectinload(Playbook.versions))
            .execution_options(populate_existing=True)
        ).all()

    def count(self) -> int:
        return self.session.scalar(select(func.count()).select_from(Playbook)) or 0

    def add(self, playbook: Playbook) -> Playbook:
        self.session.add(playbook)
        self.session.flush()
        return playbook

    def version(
        self, playbook_id: int, number: int, *, for_update: bool = False
    ) -> PlaybookVersion | None:
        query = (
            select(PlaybookVersion)
            .where(PlaybookVersion.playbook_id == playbook_id, PlaybookVersion.number == number)
            .options(selectinload(PlaybookVersion.signoffs))
        )
        if for_update:
            query = query.with_for_update()
        return self.session.scalar(query)

    def version_by_id(self, version_id: int) -> PlaybookVersion | None:
        return self.session.scalar(
            select(PlaybookVersion)
            .where(PlaybookVersion.id == version_id)
            .options(selectinload(PlaybookVersion.playbook))
        )

    def published_version(self, playbook_id: int) -> PlaybookVersion | None:
        return self.session.scalar(
            select(PlaybookVersion).where(
                PlaybookVersion.playbook_id == playbook_id,
                PlaybookVersion.status == VersionStatus.published,
            )
        )

    def latest_number(self, playbook_id: int) -> int:
        return (
            self.session.scalar(
                select(func.max(PlaybookVersion.number)).where(
                    PlaybookVersion.playbook_id == playbook_id
                )
            )
            or 0
        )

    def add_version(self, version: PlaybookVersion) -> PlaybookVersion:
        self.session.add(version)
        self.session.flush()
        return version

    def add_signoff(self, signoff: Signoff) -> Signoff:
        self.session.add(signoff)
        self.session.flush()
        return signoff

    def signoffs(self, version_id: int) -> Sequence[Signoff]:
        return self.session.scalars(
            select(Signoff).where(Signoff.version_id == version_id).order_by(Signoff.id)
        ).all()

    def all_published(self) -> Sequence[tuple[PlaybookVersion, Playbook]]:
        rows = self.session.execute(
            select(PlaybookVersion, Playbook)
            .join(Playbook, Playbook.id == PlaybookVersion.playbook_id)
            .where(PlaybookVersion.status == VersionStatus.published)
        ).all()
        return [(v, p) for v, p in rows]

    def live_documents(self) -> Sequence[dict[str, Any]]:
        """The documents of every published and draft version."""
        return self.session.scalars(
            select(PlaybookVersion.document).where(
                PlaybookVersion.status.in_((VersionStatus.published, VersionStatus.draft))
            )
        ).all()

    def bump_lock(self, version: PlaybookVersion, expected: int) -> bool:
        """Compare-and-set the draft's lock version; False when someone else changed it first."""
        result = self.session.execute(
            update(PlaybookVersion)
            .where(PlaybookVersion.id == version.id, PlaybookVersion.lock_version == expected)
            .values(lock_version=expected + 1)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        version.lock_version = expected + 1
        return True

    # --- the term catalog ------------------------------------------------------------------------

    def catalog(self, keys: Collection[str]) -> dict[str, CatalogTerm]:
        """The catalog's entries for these term keys."""
        if not keys:
            return {}
        rows = self.session.scalars(select(CatalogTerm).where(CatalogTerm.key.in_(keys)))
        return {term.key: term for term in rows}

    def catalog_terms(self, *, owner: str | None = None) -> Sequence[CatalogTerm]:
        query = select(CatalogTerm).order_by(CatalogTerm.key)
        if owner is not None:
            query = query.where(CatalogTerm.owner == owner)
        return self.session.scalars(query).all()

    def catalog_term(self, key: str) -> CatalogTerm | None:
        return self.session.scalar(select(CatalogTerm).where(CatalogTerm.key == key))

    def add_catalog_term(self, term: CatalogTerm) -> CatalogTerm:
        self.session.add(term)
        self.session.flush()
        return term

    def lock_publication(self) -> None:
        """Serialise publications so two conflicting scopes cannot both go live."""
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": PUBLISH_LOCK_ID})
