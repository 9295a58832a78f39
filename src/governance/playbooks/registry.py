"""Published playbooks, compiled once and cached per process.

Compiled versions are immutable, so they are cached by version id forever. Which versions are
*published* can change on another replica, so that index is trusted for `ttl` seconds, and
dropped at once when this process publishes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from fastapi.concurrency import run_in_threadpool

from governance.db import Database
from governance.engine import CompiledPlaybook, compile_playbook
from governance.engine.document import NumberTerm, PlaybookDocument
from governance.errors import InvalidDeal, NotFound
from governance.playbooks.repository import PlaybookRepository
from governance.problems import Problem


@dataclass(frozen=True, slots=True)
class Published:
    """A compiled version plus what responses need to describe its terms."""

    version_id: int
    key: str
    name: str
    number: int
    scope: Mapping[str, str]
    compiled: CompiledPlaybook
    labels: Mapping[str, str]
    units: Mapping[str, str | None] = field(default_factory=dict)


def _describe(version_id: int, key: str, number: int, doc: PlaybookDocument) -> Published:
    return Published(
        version_id=version_id,
        key=key,
        name=doc.name,
        number=number,
        scope=dict(doc.scope),
        compiled=compile_playbook(doc, number),
        labels={t.key: t.label or t.key for t in doc.terms},
        units={t.key: t.unit if isinstance(t, NumberTerm) else None for t in doc.terms},
    )


class PlaybookRegistry:
    def __init__(self, db: Database, ttl: float) -> None:
        self.db = db
        self.ttl = ttl
        self._compiled: dict[int, Published] = {}
        self._index: tuple[Published, ...] | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Forget which versions are published (after a publish in this process)."""
        self._index = None

    def _fresh(self) -> tuple[Published, ...] | None:
        index = self._index
        if index is not None and time.monotonic() - self._loaded_at < self.ttl:
            return index
        return None

    async def published(self) -> tuple[Published, ...]:
        """Every published version, most specific scope first."""
        index = self._fresh()
        if index is None:
            index = await run_in_threadpool(self.load)
        return index

    def published_sync(self) -> tuple[Published, ...]:
        return self._fresh() or self.load()

    def load(self) -> tuple[Published, ...]:
        with self._lock, self.db.session() as session:
            rows = PlaybookRepository(session).all_published()
            index = []
            for version, playbook in rows:
                published = self._compiled.get(version.id)
                if published is None:
                    doc = PlaybookDocument.model_validate(version.document)
                    published = _describe(version.id, playbook.key, version.number, doc)
                    self._compiled[version.id] = published
                index.append(published)
            index.sort(key=lambda p: (-len(p.scope), p.key))
            self._index = tuple(index)
            self._loaded_at = time.monotonic()
            return self._index

    def version(self, version_id: int) -> Published:
        """Any version (also superseded: approvals keep the version they started with)."""
        published = self._compiled.get(version_id)
        if published is not None:
            return published
        with self.db.session() as session:
            version = PlaybookRepository(session).version_by_id(version_id)
            if version is None:
                raise NotFound(f"playbook version {version_id} does not exist")
            doc = PlaybookDocument.model_validate(version.document)
            published = _describe(version.id, version.playbook.key, version.number, doc)
        self._compiled[version_id] = published
        return published


def resolve(
    index: tuple[Published, ...], attributes: Mapping[str, object], playbook_key: str | None
) -> Published:
    """The named playbook's live version, or the most specific one whose scope fits the deal."""
    if playbook_key is not None:
        for published in index:
            if published.key == playbook_key:
                return published
        raise InvalidDeal(
            errors=[Problem(("playbook",), f"no published version of playbook {playbook_key!r}")]
        )
    for published in index:  # most specific first; publication forbids ties that both match
        if all(_text(attributes.get(k)) == v for k, v in published.scope.items()):
            return published
    raise InvalidDeal(
        errors=[
            Problem(
                ("attributes",),
                "no published playbook's scope matches these attributes; name one with `playbook`",
            )
        ]
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)
