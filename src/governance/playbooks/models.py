"""Playbooks, their versions (draft → published → superseded) and owner sign-offs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from governance.db import Base, JSONType, Timestamped, UTCDateTime


class VersionStatus(StrEnum):
    draft = "draft"
    published = "published"
    superseded = "superseded"


class Playbook(Timestamped, Base):
    __tablename__ = "playbooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))

    versions: Mapped[list[PlaybookVersion]] = relationship(
        back_populates="playbook", lazy="raise", order_by="PlaybookVersion.number"
    )


class PlaybookVersion(Timestamped, Base):
    __tablename__ = "playbook_versions"
    __table_args__ = (
        UniqueConstraint("playbook_id", "number"),
        Index("ix_playbook_versions_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    playbook_id: Mapped[int] = mapped_column(ForeignKey("playbooks.id", ondelete="CASCADE"))
    number: Mapped[int]
    status: Mapped[str] = mapped_column(String(20))
    document: Mapped[dict[str, Any]] = mapped_column(JSONType)
    document_hash: Mapped[str] = mapped_column(String(64))
    scope: Mapped[dict[str, str]] = mapped_column(JSONType)
    lock_version: Mapped[int] = mapped_column(default=1)
    created_by: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    published_by: Mapped[str | None] = mapped_column(String(200))
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    playbook: Mapped[Playbook] = relationship(back_populates="versions", lazy="raise")
    signoffs: Mapped[list[Signoff]] = relationship(
        back_populates="version", lazy="raise", order_by="Signoff.id"
    )


class CatalogTerm(Timestamped, Base):
    """A term key as the whole organization means it: one label, kind and owning group, whatever
    playbook (of whatever scope) defines it. A playbook that defines or changes the term needs
    this owner's sign-off, so a narrower playbook cannot loosen it behind the owner's back."""

    __tablename__ = "term_catalog"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    owner: Mapped[str] = mapped_column(String(64))
    # The published playbook version (`key/number`) that last set the label or the owner.
    source: Mapped[str] = mapped_column(String(100))


class Signoff(Timestamped, Base):
    """An owner group's approval of a draft, valid only for the document it saw."""

    __tablename__ = "playbook_signoffs"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("playbook_versions.id", ondelete="CASCADE"), index=True
    )
    group: Mapped[str] = mapped_column(String(64))
    signed_by: Mapped[str] = mapped_column(String(200))
    admin_override: Mapped[bool] = mapped_column(default=False)
    document_hash: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(2000))

    version: Mapped[PlaybookVersion] = relationship(back_populates="signoffs", lazy="raise")
