"""The playbook editor's forms: a term's form fields to and from the document, and the API's
validation problems placed at the field they name.

Validation itself is the playbooks service's (`check_document`): this module only reads the
form into the document's shape and maps each problem's path (`terms[2].tiers[1].limit`) back to
the input that holds it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from governance.problems import Problem, format_loc
from governance.web.dependencies import text_field

BLANK_TIER_ROWS = 2
MAX_TIER_ROWS = 22  # the document allows 20 tiers; two more show as typed
TERM_KINDS = ("number", "choice", "flag")
DIRECTIONS = ("lower_is_better", "higher_is_better")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _items(text: str) -> list[str]:
    """Options written one a line or comma-separated."""
    return [item.strip() for item in re.split(r"[,\n]", text) if item.strip()]


def _integer(text: str) -> int | str:
    """An integer when it reads as one; the text otherwise, for the document check to name."""
    return int(text) if re.fullmatch(r"-?\d{1,9}", text) else text


def field_id(name: str) -> str:
    """An element id for a field path (`tiers[1].limit` → `tiers-1-limit`)."""
    return re.sub(r"[^a-zA-Z0-9_-]+", "-", name).strip("-")


@dataclass(slots=True)
class TierRow:
    limit: str = ""  # a number tier's limit
    options: str = ""  # a choice tier's options, comma-separated
    approver: str = ""


@dataclass(slots=True)
class TermForm:
    """A term as its form shows it (all text) and where each problem belongs."""

    key: str
    kind: str
    values: dict[str, str]
    tiers: list[TierRow]
    errors: dict[str, str] = field(default_factory=dict)  # field path → message
    paths: dict[str, str] = field(default_factory=dict)  # field path → document path
    other: list[tuple[str, str]] = field(default_factory=list)  # (document path, message)
    rows: list[int] = field(default_factory=list)  # document tier index → form row

    def with_blank_row(self) -> TermForm:
        """Room for one more tier when the form shows again."""
        if not self.tiers or any(
            (self.tiers[-1].limit, self.tiers[-1].options, self.tiers[-1].approver)
        ):
            self.tiers.append(TierRow())
        return self

    def field_names(self) -> list[str]:
        """Every input of this kind of term (tier rows included): where a problem may show."""
        own = {
            "number": [
                "unit",
                "direction",
                "band.low",
                "band.high",
                "walk_away",
                "target",
                "opening",
            ],
            "choice": ["options", "band.allowed", "walk_away", "target", "opening"],
            "flag": ["preferred"],
        }[self.kind]
        names = ["label", "owner", "priority", "gets", "tiers", *own]
        for j in range(len(self.tiers)):
            if self.kind == "number":
                names.append(f"tiers[{j}].limit")
            elif self.kind == "choice":
                names.append(f"tiers[{j}].options")
            names.append(f"tiers[{j}].approver")
        return names

    def value(self, name: str) -> str:
        return self.values.get(name, "")

    def error(self, name: str) -> str | None:
        return self.errors.get(name)

    def path(self, name: str) -> str:
        return self.paths.get(name, name)


def _plain(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if re.fullmatch(r"-?\d+\.\d*", text):
        text = text.rstrip("0").rstrip(".")
    return text


def form_of(term: Mapping[str, Any] | None, key: str, kind: str) -> TermForm:
    """The form for a stored term (as JSON), or an empty one for a new term."""
    term = term or {}
    band = term.get("band") or {}
    values = {
        "label": _plain(term.get("label")),
        "owner": _plain(term.get("owner")),
        "priority": _plain(term.get("priority")),
        "gets": "\n".join(term.get("gets") or []),
        "unit": _plain(term.get("unit")),
        "direction": _plain(term.get("direction") or DIRECTIONS[0]),
        "target": _plain(term.get("target")),
        "opening": _plain(term.get("opening")),
        "walk_away": _plain(term.get("walk_away")),
        "band.low": _plain(band.get("low")),
        "band.high": _plain(band.get("high")),
        "band.allowed": ", ".join(band.get("allowed") or []),
        "options": "\n".join(term.get("options") or []),
        "preferred": _plain(term.get("preferred", False)),
    }
    tiers = [
        TierRow(
            limit=_plain(t.get("limit")),
            options=", ".join(t.get("options") or []),
            approver=_plain(t.get("approver")),
        )
        for t in term.get("tiers") or []
    ]
    tiers += [TierRow() for _ in range(BLANK_TIER_ROWS)]
    return TermForm(key=key, kind=kind, values=values, tiers=tiers)


def read_form(form: FormData, key: str, kind: str) -> TermForm:
    """The posted form as text, every tier row kept (blank ones too) so it shows as typed."""
    names = (
        "label", "owner", "priority", "gets", "unit", "direction", "target", "opening",
        "walk_away", "band.low", "band.high", "band.allowed", "options", "preferred",
    )  # fmt: skip
    values = {name: text_field(form, name) for name in names}
    count = text_field(form, "tier_rows")
    # ASCII digits only: "²" passes isdigit and fails int, and so do 5,000 digits.
    shown = int(count) if re.fullmatch(r"[0-9]{1,3}", count) else 0
    rows = []
    for j in range(min(shown, MAX_TIER_ROWS)):
        rows.append(
            TierRow(
                limit=text_field(form, f"tiers[{j}].limit"),
                options=text_field(form, f"tiers[{j}].options"),
                approver=text_field(form, f"tiers[{j}].approver"),
            )
        )
    return TermForm(key=key, kind=kind, values=values, tiers=rows)


def term_json(form: TermForm, kept: Mapping[str, Any] | None) -> dict[str, Any]:
    """The term in the document's shape, for the service to check and save. Fields the form
    does not edit (description, cost) are kept from the stored term."""
    v = form.value
    out: dict[str, Any] = {"key": form.key, "kind": form.kind}
    for name in ("description", "cost"):
        if kept and kept.get(name) is not None:
            out[name] = kept[name]
    if v("label"):
        out["label"] = v("label")
    out["owner"] = v("owner")
    out["priority"] = _integer(v("priority"))
    out["gets"] = _lines(v("gets"))
    form.rows = []
    tiers: list[dict[str, Any]] = []
    for row_index, row in enumerate(form.tiers):
        if not (row.limit or row.options or row.approver):
            continue
        form.rows.append(row_index)
        if form.kind == "number":
            tiers.append({"limit": row.limit, "approver": row.approver})
        elif form.kind == "choice":
            tiers.append({"options": _items(row.options), "approver": row.approver})
        else:
            tiers.append({"approver": row.approver})
    out["tiers"] = tiers
    if form.kind == "number":
        out["unit"] = v("unit")
        out["direction"] = v("direction")
        out["band"] = {"low": v("band.low"), "high": v("band.high")}
        for name in ("target", "opening", "walk_away"):
            if v(name):
                out[name] = v(name)
    elif form.kind == "choice":
        out["options"] = _items(v("options"))
        out["band"] = {"allowed": _items(v("band.allowed"))}
        for name in ("target", "opening", "walk_away"):
            if v(name):
                out[name] = v(name)
    else:
        out["preferred"] = v("preferred") == "true"
    return out


def _field_for(form: TermForm, rest: Sequence[str | int]) -> str | None:
    """The form field holding a term's document path (`tiers.1.limit` → `tiers[r].limit`, r
    the form row of document tier 1)."""
    if not rest:
        return None
    head = rest[0]
    if head == "tiers":
        if len(rest) >= 2 and isinstance(rest[1], int) and rest[1] < len(form.rows):
            row = form.rows[rest[1]]
            part = rest[2] if len(rest) > 2 else ("limit" if form.kind == "number" else "approver")
            if form.kind == "choice" and part == "options":
                return f"tiers[{row}].options"
            return f"tiers[{row}].{part}"
        return "tiers"
    if head == "band" and len(rest) >= 2:
        return "band.allowed" if rest[1] == "allowed" else f"band.{rest[1]}"
    if head == "band":
        return "band.high" if form.kind == "number" else "band.allowed"
    if head in ("options", "gets"):
        return str(head)
    return str(head)


def place(form: TermForm, index: int, problems: Sequence[Problem]) -> None:
    """Put each problem at its field: those about this term (`terms[index]…`) inline, the
    others (another term, a rule) in the form's list."""
    editable = set(form.values) | {"tiers"}
    for problem in problems:
        loc = problem.loc
        where = format_loc(loc)
        if len(loc) >= 2 and loc[0] == "terms" and loc[1] == index:
            name = _field_for(form, list(loc[2:]))
            known = name is not None and (name in editable or name.startswith("tiers["))
            if known and name is not None:
                if name not in form.errors:
                    blank = name in form.values and not form.values[name].strip()
                    # An empty input is "required", not "'' is not a number" or the pattern.
                    form.errors[name] = "required" if blank else problem.message
                    form.paths[name] = where
                continue
        form.other.append((where, problem.message))
