"""Small shared types for request parameters."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_only(value: Any) -> Any:
    # Pydantic would also read "0.5" as a Unix timestamp; the contract says ISO 8601.
    if isinstance(value, str) and not _ISO_START.match(value):
        raise ValueError("use an ISO 8601 date-time such as 2026-01-31T00:00:00Z")
    if isinstance(value, int | float):
        raise ValueError("use an ISO 8601 date-time such as 2026-01-31T00:00:00Z")
    return value


def _in_utc_range(value: datetime) -> datetime:
    # 0001-01-01T00:00+01:00 is a valid ISO date-time with no UTC equivalent.
    try:
        return value.astimezone(UTC) if value.tzinfo is not None else value
    except OverflowError:
        raise ValueError("date-time out of range once converted to UTC") from None


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_in_utc_range)]
IsoDate = Annotated[date, BeforeValidator(_iso_only)]


_ID_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_SALESFORCE_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")


def salesforce_id_18(external_id: str) -> str:
    """The case-safe 18-character form of a Salesforce Id (15-character Ids get their suffix)."""
    if len(external_id) != 15:
        return external_id
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, char in enumerate(external_id[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << i
        suffix += _ID_SUFFIX[bits]
    return external_id + suffix


def valid_salesforce_id(value: str) -> str | None:
    """The 18-character form of a Salesforce Id, or None when `value` is not one: 15 or 18
    ASCII letters and digits, and an 18-character Id's suffix must match its first 15."""
    if not _SALESFORCE_ID.fullmatch(value):
        return None
    full = salesforce_id_18(value[:15])
    if len(value) == 18 and value[15:].upper() != full[15:]:
        return None
    return full
