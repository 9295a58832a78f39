"""The sample history's timeline and its two versions of the standard playbook.

Version 1 is the demo playbook as `governance demo` loads it; version 2, published halfway
through the history, tightens the discount reps may agree alone. Both are published through the
playbook service and then dated on the timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from importlib import resources

from sqlalchemy.orm import Session

from governance.auth.principal import SYSTEM
from governance.demo import repository
from governance.engine.document import PlaybookDocument
from governance.errors import Conflict
from governance.playbooks import formats, publication
from governance.playbooks import service as playbook_service

HISTORY_DAYS = 730
# Version 2 goes live halfway, so the two versions can be compared over equal windows.
V2_AFTER_DAYS = 365
PLAYBOOK = "standard"
V2_DISCOUNT_HIGH = 12  # version 2: reps may agree 12 points of discount alone, not 15


@dataclass(frozen=True, slots=True)
class Timeline:
    """The history's span: `HISTORY_DAYS` up to `as_of`; version 1 published a month before it
    starts, version 2 `V2_AFTER_DAYS` in."""

    as_of: datetime
    start: datetime
    v1_published: datetime
    v2_published: datetime

    @classmethod
    def ending(cls, as_of: date) -> Timeline:
        end = datetime.combine(as_of, dtime(0, 0), tzinfo=UTC)
        start = end - timedelta(days=HISTORY_DAYS)
        return cls(end, start, start - timedelta(days=30), start + timedelta(days=V2_AFTER_DAYS))


def demo_document() -> PlaybookDocument:
    """Version 1: the demo's standard playbook, as `governance demo` loads it."""
    text_ = resources.files("governance.demo").joinpath("standard.yaml").read_text("utf-8")
    return formats.parse_text(text_, "application/yaml")


def version_two(doc: PlaybookDocument) -> PlaybookDocument:
    """Version 2 of the standard playbook: reps may agree less discount alone (15 → 12)."""
    raw = playbook_service.document_json(doc)
    for term in raw["terms"]:
        if term["key"] == "discount_pct":
            term["band"]["high"] = V2_DISCOUNT_HIGH
    raw["description"] = (
        (raw.get("description") or "").strip()
        + f" Version 2: the discount reps may agree alone drops from 15 to {V2_DISCOUNT_HIGH} "
        "points, after a year of data showed most deals closing well inside it."
    )
    return playbook_service.load_document(raw)


def prepare_playbooks(session: Session, timeline: Timeline) -> tuple[int, int]:
    """Publish version 2 of the standard playbook through the service (sign-off included) and
    date both versions on the timeline; returns the two version ids."""
    v1_doc = demo_document()
    v2_doc = version_two(v1_doc)
    v1_hash = playbook_service.document_hash(playbook_service.document_json(v1_doc))
    v2_hash = playbook_service.document_hash(playbook_service.document_json(v2_doc))
    playbook = repository.playbook(session, PLAYBOOK)
    if playbook is None:
        raise Conflict(f"load the {PLAYBOOK!r} demo playbook first")
    versions = repository.versions(session, playbook.id)
    hashes = [v.document_hash for v in versions]
    if hashes == [v1_hash]:
        publication.import_document(session, SYSTEM, v2_doc, publish_now=True)
        session.flush()
        versions = repository.versions(session, playbook.id)
    elif hashes != [v1_hash, v2_hash]:
        raise Conflict(
            f"playbook {PLAYBOOK!r} has versions other than the demo's; generate into a fresh "
            "database"
        )
    v1, v2 = versions
    # Dated on the generated timeline, so deals checked before version 2 went live used 1.
    for version, published, superseded in (
        (v1, timeline.v1_published, timeline.v2_published),
        (v2, timeline.v2_published, None),
    ):
        drafted = published - timedelta(days=21)
        version.created_at = drafted
        version.published_at = published
        version.superseded_at = superseded
        version.updated_at = superseded or published
        for signoff in repository.signoffs(session, version.id):
            signoff.created_at = signoff.updated_at = published - timedelta(days=2)
    playbook.created_at = v1.created_at
    playbook.updated_at = timeline.v2_published
    session.flush()
    return v1.id, v2.id
