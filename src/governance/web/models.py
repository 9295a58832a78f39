"""The console's own tables: browser sessions and the generated cookie-signing secret."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from governance.db import Base, Timestamped, UTCDateTime


class WebSession(Timestamped, Base):
    """One console sign-in: the hash of the id its cookie carries, whose key, until when.

    Checked on every page, so signing out (`ended_at`) and revoking the key take effect at once
    on every worker; a stolen database gives no usable cookie (only the id's hash is kept).
    """

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_key_id", "key_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebSecret(Timestamped, Base):
    """A secret generated once and shared by every worker (the session signing key when
    GOVERNANCE_SESSION_SECRET is unset)."""

    __tablename__ = "web_secrets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    value: Mapped[str] = mapped_column(String(200))
