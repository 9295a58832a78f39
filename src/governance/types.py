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
