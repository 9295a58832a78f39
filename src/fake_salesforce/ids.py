"""Salesforce Ids (15 and 18 characters; the fake's own) and Salesforce's datetime format."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
ID_RE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


def id18(sfid: str) -> str:
    """The case-safe 18-character form of a Salesforce Id (other lengths come back unchanged)."""
    if len(sfid) != 15:
        return sfid
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, char in enumerate(sfid[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << i
        suffix += _ID_SUFFIX[bits]
    return sfid + suffix


def make_id(prefix: str, number: int) -> str:
    """``prefix`` + pod ``Fk0`` + a 9-digit base-62 counter + checksum: sorts in creation order."""
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    return id18(f"{prefix}Fk0{digits.rjust(9, '0')}")


ORG_ID = id18("00DFk0000000ORG")
INTEGRATION_USER_ID = id18("005Fk0000000INT")
"""The user the API tokens act as, unless configured otherwise."""
DEFAULT_USER_ID = id18("005Fk0000000REP")
"""The "rep" who owns and edits records changed through the Python API."""

_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?"
)


def truncate_ms(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def format_datetime(value: datetime) -> str:
    """Salesforce's datetime format: ``2024-05-01T12:34:56.000+0000`` (UTC, milliseconds)."""
    value = truncate_ms(value)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> datetime:
    """Parse ``2024-05-01T12:34:56.000+0000``, ``…Z``, ``…+02:00`` (no zone means UTC)."""
    match = _DATETIME_RE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not a datetime: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    value = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=UTC
    )
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        value -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return truncate_ms(value)


def as_datetime(value: datetime | str) -> datetime:
    return parse_datetime(value) if isinstance(value, str) else truncate_ms(value)
