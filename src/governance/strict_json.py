"""JSON documents read strictly: every request body, and playbook documents in JSON.

Python's reader takes the last of two equal keys (`{"role": "rep", "role": "admin"}` is an
admin), reads `NaN` and `Infinity`, overflows `1e999` to infinity and fails on a 5,000-digit
integer with a ValueError (Python's limit on converting integer text) that no handler expects.
Here a duplicate key, a NUL character in any string or key, a non-finite number and an
integer past the service's bounds are each a 422 naming where they are, and text that is not
JSON at all stays a `json.JSONDecodeError` (the routes answer 400).

The common body has none of these, so it is read once by the C scanner with hooks that only
raise; a body they stop is read again with hooks that leave a `Refused` marker in place, and
`refusals` walks the result to name each one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from governance.errors import InvalidInput
from governance.number_text import MAX_DIGITS
from governance.problems import Loc, Problem

# The longest integer literal read (a sign and MAX_DIGITS digits: below 10**MAX_DIGITS, far
# below Python's 4,300-digit conversion limit).
_MAX_INTEGER_TEXT = MAX_DIGITS + 1
NUL = "\x00"
NUL_MESSAGE = "must not contain the NUL character (\\u0000)"


class Refused:
    """Stands, in a parsed document, for a value the service refuses; says why."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"Refused({self.message!r})"


def duplicate_key(key: object) -> Refused:
    return Refused(f"duplicate key {key!r}: each key may appear only once")


def integer_out_of_range(text: str) -> Refused:
    shown = text if len(text) <= 40 else text[:40] + "…"
    return Refused(f"{shown} is out of range: numbers must be below 10^{MAX_DIGITS} in size")


# --- the fast reading: hooks that stop at the first thing refused ------------------------------


class _Stop(Exception):
    """Something in the body is refused: read it again, marking what and where."""


def _object_fast(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Stop
    return result


def _integer_fast(text: str) -> int:
    if len(text) > _MAX_INTEGER_TEXT:
        raise _Stop
    return int(text)


def _float_fast(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # an overflow such as 1e999
        raise _Stop
    return value if value else 0.0  # -0.0 → 0.0


def _constant_fast(_text: str) -> Any:
    raise _Stop  # NaN, Infinity, -Infinity: not JSON


_FAST = json.JSONDecoder(
    object_pairs_hook=_object_fast,
    parse_int=_integer_fast,
    parse_float=_float_fast,
    parse_constant=_constant_fast,
)


# --- the marking reading -----------------------------------------------------------------------


def _object_marking(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        result[key] = duplicate_key(key) if key in result else value
    return result


def _integer_marking(text: str) -> int | Refused:
    return integer_out_of_range(text) if len(text) > _MAX_INTEGER_TEXT else int(text)


def _float_marking(text: str) -> float | Refused:
    value = float(text)
    if not math.isfinite(value):
        return Refused(
            f"{text[:40]} is out of range: numbers must be below 10^{MAX_DIGITS} in size"
        )
    return value if value else 0.0


def _constant_marking(text: str) -> Refused:
    return Refused(f"{text} is not a number JSON allows: send a finite number")


_MARKING = json.JSONDecoder(
    object_pairs_hook=_object_marking,
    parse_int=_integer_marking,
    parse_float=_float_marking,
    parse_constant=_constant_marking,
)


def loads(data: bytes | str) -> Any:
    """The JSON value of `data`: json.JSONDecodeError when it is not JSON (or not UTF-8),
    InvalidInput (422) naming every refused value."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise json.JSONDecodeError("the body is not UTF-8", "", exc.start) from None
    else:
        text = data
    try:
        try:
            value = _FAST.decode(text)
        except _Stop:
            value = _MARKING.decode(text)
        else:
            # A NUL can only be written escaped (JSON refuses raw control characters).
            if "\\u0000" not in text:
                return value
    except RecursionError:
        raise json.JSONDecodeError("the document is nested too deeply", text, 0) from None
    problems = refusals(value)
    if problems:
        raise InvalidInput(errors=problems)
    return value


def refusals(value: Any, at: Loc = ()) -> list[Problem]:
    """Every `Refused` marker and every string or key with a NUL in `value`, with its path."""
    return list(_refusals(value, at))


def _refusals(root: Any, at: Loc) -> Iterator[Problem]:
    # Iterative: a document nested as deeply as the reader allows must not overflow the stack.
    stack: list[tuple[Loc, Any]] = [(at, root)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, dict):
            children: list[tuple[Loc, Any]] = []
            for key, item in value.items():
                if isinstance(key, str) and NUL in key:
                    yield Problem((*loc, key.replace(NUL, "\\u0000")), f"the key {NUL_MESSAGE}")
                    continue
                children.append(((*loc, key if type(key) in (str, int) else str(key)), item))
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend(reversed([((*loc, i), item) for i, item in enumerate(value)]))
        elif isinstance(value, str):
            if NUL in value:
                yield Problem(loc, NUL_MESSAGE)
        elif isinstance(value, Refused):
            yield Problem(loc, value.message)
