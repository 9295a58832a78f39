"""The audit log's hash chain: each entry's hash covers its content and the previous entry's
hash, so changing, removing or reordering an entry breaks every link after it.

The serialization is a contract: migration 0005 computed the hashes of the entries written
before it with a frozen copy of this code, and `governance audit verify` recomputes them. Change
it only with a new chain version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
"""The `prev_hash` of the first entry."""

FIELDS = (
    "id",
    "occurred_at",
    "actor",
    "actor_role",
    "on_behalf_of",
    "action",
    "entity_type",
    "entity_id",
    "before",
    "after",
)


def _normal(value: Any) -> Any:
    """A value as both databases give it back: timestamps in UTC to the microsecond, and
    integral floats as integers (PostgreSQL's JSONB keeps `1e20` as the integer it is)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value  # the common leaves first: a page of the sync chains thousands of entries
    if kind is dict:
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.isoformat(timespec="microseconds")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    return value


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The entry's content as sorted, compact JSON (UTF-8)."""
    content = {name: _normal(entry[name]) for name in FIELDS}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def link(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """sha256 over the previous entry's hash and this entry's canonical content."""
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical(entry)).hexdigest()
