"""The mapping file: which Opportunity fields feed which terms and attributes, and which receive
the service's results. Validated on its own (`Mapping`) and against the org (`check_against`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from governance.engine.document import KEY_PATTERN
from governance.problems import Problem

FieldName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)?$")
]
TermKey = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
Scalar = str | bool | int | Decimal


class Source(BaseModel):
    """One Opportunity field (or `Relationship.Field`) and how its values translate."""

    model_config = ConfigDict(extra="forbid")

    field: FieldName
    values: dict[str, Scalar] | None = Field(
        default=None, description="Translate Salesforce values (e.g. picklist labels, countries)."
    )
    default: Scalar | None = Field(
        default=None, description="Used when the field is empty or its value is not in `values`."
    )

    def read(self, record: Mapping[str, Any]) -> Any:
        raw = field_value(record, self.field)
        if raw is None or raw == "":
            return self.default
        if self.values is not None:
            return self.values.get(str(raw), self.default)
        return raw


ATTRIBUTES = (
    "name", "region", "segment", "product_line", "team", "currency", "amount", "stage",
    "close_date", "owner_rep", "value_position",
)  # fmt: skip
OutputKey = Literal[
    "status", "variance", "approvers", "approval_status", "check_url", "outcome",
    "concession_cost",
]  # fmt: skip


class SyncMapping(BaseModel):
    """The whole mapping file."""

    model_config = ConfigDict(extra="forbid")

    sobject: Literal["Opportunity"] = "Opportunity"
    filter: Annotated[str, StringConstraints(max_length=4000)] | None = Field(
        default=None, description="SOQL condition selecting the opportunities to govern."
    )
    playbook: Annotated[str, StringConstraints(pattern=KEY_PATTERN)] | None = None
    submit_field: FieldName | None = Field(
        default=None,
        description="A checkbox: when true, a changed opportunity is also submitted for approval.",
    )
    terms: Annotated[dict[TermKey, Source], Field(min_length=1)]
    attributes: dict[str, Source] = {}
    outputs: dict[OutputKey, FieldName] = {}

    def source_fields(self) -> list[str]:
        """Every field the pull reads, in a stable order, without duplicates."""
        fields = ["Id", "SystemModstamp", "LastModifiedById", "IsDeleted", "IsClosed", "IsWon"]
        fields += [s.field for s in self.terms.values()]
        fields += [s.field for s in self.attributes.values()]
        if self.submit_field:
            fields.append(self.submit_field)
        fields += list(self.outputs.values())
        return list(dict.fromkeys(fields))


def field_value(record: Mapping[str, Any], name: str) -> Any:
    """A field of a query record, following `Relationship.Field` into the nested object."""
    value: Any = record
    for part in name.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


class MappingError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, p.loc))}: {p.message}" for p in problems))
        self.problems = problems


def load(path: Path) -> SyncMapping:
    """Read and validate a mapping file (YAML or JSON); MappingError names each problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError([Problem((str(path),), f"cannot read the mapping: {exc}")]) from None
    return parse(data)


def parse(data: object) -> SyncMapping:
    try:
        mapping = SyncMapping.model_validate(data)
    except ValidationError as exc:
        raise MappingError(
            [Problem(tuple(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
        ) from None
    unknown = [a for a in mapping.attributes if a not in ATTRIBUTES]
    if unknown:
        raise MappingError(
            [
                Problem(("attributes", a), f"not a deal attribute; use one of {list(ATTRIBUTES)}")
                for a in unknown
            ]
        )
    related = [key for key, name in mapping.outputs.items() if "." in name]
    if related:  # an sObject Collections update writes the opportunity's own fields only
        raise MappingError(
            [
                Problem(("outputs", key), "must be a field of the Opportunity itself")
                for key in related
            ]
        )
    return mapping


# --- against the org ---------------------------------------------------------------------------

NUMBER_TYPES = frozenset({"double", "percent", "currency", "int", "long"})
TEXT_TYPES = frozenset(
    {"string", "picklist", "textarea", "id", "reference", "email", "url", "phone"}
)
SOURCE_TYPES: dict[str, frozenset[str]] = {
    "number": NUMBER_TYPES | TEXT_TYPES,
    "choice": TEXT_TYPES | frozenset({"multipicklist"}),
    "flag": frozenset({"boolean"}) | TEXT_TYPES,
}
ATTRIBUTE_TYPES: dict[str, frozenset[str]] = {
    "amount": NUMBER_TYPES,
    "close_date": frozenset({"date", "datetime"}),
}
OUTPUT_TYPES: dict[str, frozenset[str]] = {
    "status": TEXT_TYPES,
    "approval_status": TEXT_TYPES,
    "approvers": TEXT_TYPES,
    "check_url": frozenset({"url", "string", "textarea"}),
    "outcome": TEXT_TYPES,
    "variance": NUMBER_TYPES,
    "concession_cost": NUMBER_TYPES,
}


def check_against(
    mapping: SyncMapping,
    describe: Callable[[str], Mapping[str, Any]],
    term_kinds: Mapping[str, str],
    produced: Collection[str] | None = None,
) -> list[Problem]:
    """Problems with the mapping in this org: unknown fields, type mismatches, read-only outputs,
    and outputs the push cannot produce.

    `describe(sobject)` returns the sObject's describe result; `term_kinds` maps the term keys
    the published playbooks know to their kind (number, choice, flag); `produced` names the
    outputs the push writes (every output, when not given).
    """
    described: dict[str, dict[str, dict[str, Any]]] = {}
    problems: list[Problem] = []

    def fields_of(sobject: str) -> dict[str, dict[str, Any]]:
        if sobject not in described:
            result = describe(sobject)
            described[sobject] = {f["name"]: f for f in result.get("fields", ())}
        return described[sobject]

    def lookup(name: str) -> dict[str, Any] | None:
        if "." in name:
            relation, leaf = name.split(".", 1)
            # The lookup field whose relationship this is (AccountId for Account, Partner__c for
            # Partner__r); a mistyped relation is an unknown field, not a describe of a guess.
            parent = next(
                (
                    f
                    for f in fields_of(mapping.sobject).values()
                    if f.get("relationshipName") == relation
                ),
                None,
            )
            targets: Iterable[str] = (parent or {}).get("referenceTo") or ()
            for target in targets:
                found = fields_of(target).get(leaf)
                if found is not None:
                    return found
            return None
        return fields_of(mapping.sobject).get(name)

    def expect(loc: tuple[str | int, ...], name: str, allowed: frozenset[str] | None) -> None:
        found = lookup(name)
        if found is None:
            problems.append(Problem(loc, f"{mapping.sobject} has no field {name!r}"))
        elif allowed is not None and found.get("type") not in allowed:
            problems.append(
                Problem(
                    loc,
                    f"{name} is a {found.get('type')} field; expected one of {sorted(allowed)}",
                )
            )

    for key, source in mapping.terms.items():
        kind = term_kinds.get(key)
        if kind is None and term_kinds:
            problems.append(Problem(("terms", key), "no published playbook has this term"))
        expect(("terms", key, "field"), source.field, SOURCE_TYPES.get(kind or ""))
    for name, source in mapping.attributes.items():
        expect(("attributes", name, "field"), source.field, ATTRIBUTE_TYPES.get(name))
    if mapping.submit_field:
        expect(("submit_field",), mapping.submit_field, frozenset({"boolean"}))
    for output, name in mapping.outputs.items():
        loc = ("outputs", output)
        if produced is not None and output not in produced:
            problems.append(Problem(loc, "the service does not produce this output"))
        expect(loc, name, OUTPUT_TYPES.get(output))
        found = lookup(name)
        if found is not None and found.get("updateable") is False:
            problems.append(Problem(loc, f"{name} is read-only for the integration user"))
    return problems
