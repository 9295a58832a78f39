"""Opaque cursors for keyset paging (stable under inserts, unlike offsets)."""

from __future__ import annotations

import base64
import binascii

from governance.errors import InvalidInput
from governance.problems import Problem

MAX_ID = 2**31 - 1  # ids are PostgreSQL integers


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id a cursor points past, or None for the first page; 422 for a forged cursor."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "id":
            raise ValueError(kind)
        if not value.isascii() or not value.isdigit():  # int() also reads "1_0", " 7", "٧"
            raise ValueError(value)
        last_id = int(value)
        if not 0 < last_id <= MAX_ID:
            raise ValueError(value)
        return last_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput(
            "cursor is not one this API issued",
            errors=[Problem(("query", "cursor"), "not a cursor this API issued")],
        ) from None
