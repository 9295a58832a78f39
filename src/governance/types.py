"""Small shared types for request parameters."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_only(value: Any) -> Any:
    # Pydantic would also read "0.5" as a Unix timestamp; the contract says ISO 8601.
    if isinstance(value, str) and not _ISO_START.match(value):
        raise ValueError("use an ISO 8601 date-time such as 2026-01-31T00:00:00Z")
    if isinstance(value, int | float):
        raise ValueError("use an ISO 8601 date-time such as 2026-01-31T00:00:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]
IsoDate = Annotated[date, BeforeValidator(_iso_only)]
