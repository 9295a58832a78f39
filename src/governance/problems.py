"""Problems found in a request or a document: where each one is and what is wrong with it."""

from __future__ import annotations

# A path into a document or payload: keys and list indexes, e.g. ("terms", 0, "band", "high").
Loc = tuple[str | int, ...]


class Problem:
    """One problem: where it is and what is wrong."""

    __slots__ = ("loc", "message")

    def __init__(self, loc: Loc, message: str) -> None:
        self.loc = loc
        self.message = message

    def __repr__(self) -> str:
        return f"Problem({self.loc!r}, {self.message!r})"


def format_loc(loc: Loc) -> str:
    """`("terms", 0, "band", "high")` → `terms[0].band.high`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
