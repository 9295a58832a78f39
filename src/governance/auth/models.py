"""API keys: a role, approver groups, and only the hash of the secret."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from governance.db import Base, JSONType, Timestamped, UTCDateTime


class ApiKey(Timestamped, Base):
    __tablename__ = "api_keys"
    # A name picks out one active key (delegations are given by name), so no two active keys
    # share one; a revoked key's name may be reused.
    __table_args__ = (
        Index(
            "uq_api_keys_name_active",
            "name",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
            sqlite_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    groups: Mapped[list[str]] = mapped_column(JSONType, default=list)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str | None] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
