"""Rep profiles: read, create or replace, delete; every change audited."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.errors import NotFound
from governance.reps.models import RepProfile
from governance.reps.repository import RepRepository
from governance.reps.schemas import RepRead, RepWrite, Style


def read_rep(profile: RepProfile) -> RepRead:
    return RepRead(
        rep=profile.rep,
        name=profile.name,
        team=profile.team,
        region=profile.region,
        style=Style(profile.style),
        version=profile.lock_version,
        created_at=profile.created_at,
        updated_at=profile.updated_at,
    )


def _audited(profile: RepProfile) -> dict[str, Any]:
    return {
        "name": profile.name,
        "team": profile.team,
        "region": profile.region,
        "style": profile.style,
    }


def get_rep(session: Session, rep: str) -> RepProfile:
    profile = RepRepository(session).by_rep(rep)
    if profile is None:
        raise NotFound(f"no profile for rep {rep!r}")
    return profile


def page(
    session: Session,
    *,
    before_id: int | None,
    limit: int,
    team: str | None,
    region: str | None,
    style: Style | None,
) -> Sequence[RepProfile]:
    return RepRepository(session).page(
        before_id=before_id,
        limit=limit,
        team=team,
        region=region,
        style=style.value if style else None,
    )


def put_rep(
    session: Session, actor: Principal, rep: str, data: RepWrite
) -> tuple[RepProfile, bool]:
    """Create the profile or replace every field of it; True when it was created."""
    repo = RepRepository(session)
    profile = repo.by_rep(rep)
    created = profile is None
    before = None if profile is None else _audited(profile)
    if profile is None:
        profile = RepProfile(rep=rep, style=data.style.value)
        repo.add(profile)
    else:
        profile.lock_version += 1
    profile.name = data.name
    profile.team = data.team
    profile.region = data.region
    profile.style = data.style.value
    session.flush()
    audit.record(
        session, actor, "rep.created" if created else "rep.replaced", "rep", rep,
        before=before, after=_audited(profile),
    )  # fmt: skip
    return profile, created


def delete_rep(session: Session, actor: Principal, rep: str) -> None:
    repo = RepRepository(session)
    profile = get_rep(session, rep)
    before = _audited(profile)
    repo.delete(profile)
    audit.record(session, actor, "rep.deleted", "rep", rep, before=before)
