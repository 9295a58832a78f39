"""SQL for rep profiles."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.reps.models import RepProfile


class RepRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_rep(self, rep: str) -> RepProfile | None:
        return self.session.scalar(select(RepProfile).where(RepProfile.rep == rep))

    def add(self, profile: RepProfile) -> RepProfile:
        self.session.add(profile)
        self.session.flush()
        return profile

    def delete(self, profile: RepProfile) -> None:
        self.session.delete(profile)
        self.session.flush()

    def page(
        self,
        *,
        before_id: int | None,
        limit: int,
        team: str | None = None,
        region: str | None = None,
        style: str | None = None,
    ) -> Sequence[RepProfile]:
        query = select(RepProfile).order_by(RepProfile.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(RepProfile.id < before_id)
        if team is not None:
            query = query.where(RepProfile.team == team)
        if region is not None:
            query = query.where(RepProfile.region == region)
        if style is not None:
            query = query.where(RepProfile.style == style)
        return self.session.scalars(query).all()
