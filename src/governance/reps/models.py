"""Rep profiles, keyed by the name deals carry in `owner_rep`."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from governance.db import Base, Timestamped


class RepProfile(Timestamped, Base):
    __tablename__ = "rep_profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    rep: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    team: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    style: Mapped[str] = mapped_column(String(20))  # closer | diplomat | strategist | game_changer
    lock_version: Mapped[int] = mapped_column(default=1)
