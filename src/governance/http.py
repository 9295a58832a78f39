"""What every router shares: the app's per-process state as typed dependencies, path ids,
If-Match headers and ETags.

Routers take these as parameters (`settings: AppSettings`) instead of reading
`request.app.state`, so a route's signature says what it uses.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Path, Request

from governance.db import Database
from governance.errors import (
    JSON_ONLY,
    PreconditionFailed,
    PreconditionRequired,
    UnsupportedMediaType,
    is_json,
)
from governance.pagination import MAX_ID
from governance.playbooks.registry import PlaybookRegistry
from governance.settings import Settings


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _registry(request: Request) -> PlaybookRegistry:
    registry: PlaybookRegistry = request.app.state.registry
    return registry


def _database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


AppSettings = Annotated[Settings, Depends(_settings)]
"""The settings the app was built with."""
Registry = Annotated[PlaybookRegistry, Depends(_registry)]
"""The process's cache of compiled, published playbook versions."""
AppDatabase = Annotated[Database, Depends(_database)]
"""The database, for routes that open their own units of work (batches, threads)."""


def registry_of(request: Request) -> PlaybookRegistry:
    """The registry, for the few routes that bypass FastAPI's dependencies for speed."""
    return _registry(request)


def database_of(request: Request) -> Database:
    """The database, for routes that read their body by hand before opening a unit of work."""
    return _database(request)


def require_json(request: Request) -> None:
    """415 unless the body is declared JSON, for routes that read their body by hand (FastAPI's
    own body parsing answers the same through the validation error handler)."""
    if not is_json(request.headers.get("content-type")):
        raise UnsupportedMediaType(JSON_ONLY)


ExternalIdPath = Annotated[
    str,
    Path(
        pattern=r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$",
        description="The Salesforce Opportunity Id (15 or 18 characters).",
    ),
]
RequestId = Annotated[int, Path(ge=1, le=MAX_ID)]

# One header, described for what each resource calls its version.
RequestIfMatch = Annotated[
    str | None,
    Header(
        max_length=200,
        description="Required: the request's ETag, as read; without it 428, a stale one 412.",
    ),
]
PreparationIfMatch = Annotated[
    str | None,
    Header(
        max_length=200,
        description="The preparation's ETag; a stale one gets 412.",
    ),
]
VersionIfMatch = Annotated[
    str | None,
    Header(
        max_length=200,
        description="The version's etag; a stale one gets 412.",
    ),
]


def etag(version: int) -> str:
    """The strong ETag of a row's lock version."""
    return f'"{version}"'


def required_if_match(value: str | None) -> int:
    """The version an If-Match names, which the caller must have read: no header, or `*`
    ("whatever is current"), is 428, so no one decides what they never looked at."""
    if value is None or value.strip() == "*":
        raise PreconditionRequired(
            "send the ETag of the version you read (GET it first) as If-Match"
            + ("; `*` does not say which version you read" if value is not None else "")
        )
    version = parse_if_match(value)
    assert version is not None
    return version


def parse_if_match(value: str | None) -> int | None:
    """The version an If-Match names; `*` or no header means "whatever is current"."""
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not re.fullmatch(r"[0-9]{1,10}", text):
        raise PreconditionFailed(f"If-Match {value!r} is not an ETag this API issued")
    return int(text)
