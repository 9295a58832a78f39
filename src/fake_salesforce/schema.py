"""The fake schema: Opportunity and Account fields as describe reports them, the default custom
fields, and field values coerced to their stored form."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fake_salesforce.ids import ID_RE, format_datetime, id18, parse_datetime, truncate_ms

Record = dict[str, Any]
"""A stored Opportunity: API field names to values (the account as ``"Account": {...}``)."""

TEXT_TYPES = frozenset(
    {"string", "textarea", "picklist", "multipicklist", "url", "email", "phone", "combobox"}
)
ID_TYPES = frozenset({"id", "reference"})
NUMBER_TYPES = frozenset({"double", "currency", "percent", "int"})
_FIELD_TYPES = TEXT_TYPES | ID_TYPES | NUMBER_TYPES | {"boolean", "date", "datetime"}
_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}
_SOQL_TYPE_NAMES = {"datetime": "dateTime", "int": "integer", "reference": "id"}


@dataclass(frozen=True)
class FieldSpec:
    """One field of the fake schema, as reported by describe."""

    name: str
    type: str
    label: str = ""
    updateable: bool = True
    nillable: bool = True
    custom: bool = False
    length: int = 0
    precision: int = 0
    scale: int = 0
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist_values: tuple[str, ...] = ()
    calculated: bool = False

    @property
    def soql_type(self) -> str:
        return _SOQL_TYPE_NAMES.get(self.type, self.type)

    def describe(self) -> dict[str, Any]:
        """The field's entry in a describe result's ``fields`` list."""
        text = self.type in TEXT_TYPES or self.type in ID_TYPES
        return {
            "aggregatable": True,
            "autoNumber": False,
            "byteLength": self.length * 3 if text else 0,
            "calculated": self.calculated,
            "caseSensitive": False,
            "createable": self.updateable,
            "custom": self.custom,
            "defaultValue": False if self.type == "boolean" else None,
            "defaultedOnCreate": self.type == "boolean" or not self.updateable,
            "deprecatedAndHidden": False,
            "digits": 0,
            "externalId": False,
            "filterable": True,
            "groupable": self.type not in NUMBER_TYPES,
            "htmlFormatted": False,
            "idLookup": self.name == "Id",
            "inlineHelpText": None,
            "label": self.label or self.name,
            "length": self.length if text else 0,
            "name": self.name,
            "nameField": self.name == "Name",
            "nillable": self.nillable,
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
                for v in self.picklist_values
            ],
            "precision": self.precision,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "restrictedPicklist": False,
            "scale": self.scale,
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
            "sortable": True,
            "type": self.type,
            "unique": False,
            "updateable": self.updateable,
        }


STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
CLOSED_STAGES = {"closed won": (True, True), "closed lost": (True, False)}
_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CAD", "CHF", "BRL")


def _standard_opportunity_fields() -> list[FieldSpec]:
    def system(name: str, kind: str, label: str, **extra: Any) -> FieldSpec:
        return FieldSpec(name, kind, label, updateable=False, nillable=False, **extra)

    user: dict[str, Any] = {"length": 18, "reference_to": ("User",)}
    return [
        system("Id", "id", "Opportunity ID", length=18),
        FieldSpec("Name", "string", "Name", nillable=False, length=120),
        FieldSpec(
            "StageName", "picklist", "Stage", nillable=False, length=255, picklist_values=STAGES
        ),
        FieldSpec("Amount", "currency", "Amount", precision=18, scale=2),
        FieldSpec("CloseDate", "date", "Close Date", nillable=False),
        system("IsClosed", "boolean", "Closed"),
        system("IsWon", "boolean", "Won"),
        system("IsDeleted", "boolean", "Deleted"),
        system("CreatedDate", "datetime", "Created Date"),
        system("CreatedById", "reference", "Created By ID", relationship_name="CreatedBy", **user),
        system("LastModifiedDate", "datetime", "Last Modified Date"),
        system(
            "LastModifiedById",
            "reference",
            "Last Modified By ID",
            relationship_name="LastModifiedBy",
            **user,
        ),
        system("SystemModstamp", "datetime", "System Modstamp"),
        FieldSpec(
            "OwnerId", "reference", "Owner ID", nillable=False, relationship_name="Owner", **user
        ),
        FieldSpec(
            "CurrencyIsoCode",
            "picklist",
            "Opportunity Currency",
            nillable=False,
            length=3,
            picklist_values=_CURRENCIES,
        ),
        FieldSpec(
            "AccountId",
            "reference",
            "Account ID",
            length=18,
            reference_to=("Account",),
            relationship_name="Account",
        ),
    ]


def _account_fields() -> list[FieldSpec]:
    return [
        FieldSpec("Id", "id", "Account ID", updateable=False, nillable=False, length=18),
        FieldSpec("Name", "string", "Account Name", nillable=False, length=255),
        FieldSpec("BillingCountry", "string", "Billing Country", length=80),
        FieldSpec("Industry", "picklist", "Industry", length=255),
    ]


DEFAULT_CUSTOM_FIELDS: dict[str, str | dict[str, Any]] = {
    "Discount__c": "percent",
    "Payment_Terms_Days__c": "double",
    "Contract_Months__c": "double",
    "Support_Level__c": {"type": "picklist", "picklistValues": ["Standard", "Premium", "Platinum"]},
    "Uncapped_Liability__c": "boolean",
    "Liability_Cap_Multiple__c": "double",
    "Governance_Status__c": "string",
    "Governance_Variance__c": "double",
    "Governance_Approvers__c": "string",
    "Governance_Approval_Status__c": "string",
    "Governance_Check_URL__c": "url",
    "Governance_Outcome__c": "string",
    "Governance_Concession_Cost__c": "currency",
    "Submit_For_Approval__c": "boolean",
    "Region__c": "string",
}
"""The custom Opportunity fields a fake org has unless ``custom_fields=`` says otherwise. Copy and
edit it to add or drop fields: ``{**DEFAULT_CUSTOM_FIELDS, "Foo__c": "double"}``."""

_DEFAULT_SCALES = {"percent": (5, 2), "currency": (18, 2), "double": (18, 2), "int": (9, 0)}


def _custom_field(name: str, spec: str | Mapping[str, Any]) -> FieldSpec:
    options: dict[str, Any] = {"type": spec} if isinstance(spec, str) else dict(spec)
    kind = str(options.get("type", "")).lower()
    if kind == "date_time":
        kind = "datetime"
    if kind not in _FIELD_TYPES or kind == "id":
        raise ValueError(f"custom field {name}: unsupported type {options.get('type')!r}")
    precision, scale = _DEFAULT_SCALES.get(kind, (0, 0))
    text = kind in TEXT_TYPES
    label = name.removesuffix("__c").replace("_", " ")
    values = options.get("picklistValues", options.get("picklist_values", ()))
    return FieldSpec(
        name=name,
        type=kind,
        label=str(options.get("label", label)),
        updateable=bool(options.get("updateable", True)),
        nillable=kind != "boolean" and bool(options.get("nillable", True)),
        custom=True,
        length=int(options.get("length", 255 if text else 18 if kind == "reference" else 0)),
        precision=int(options.get("precision", precision)),
        scale=int(options.get("scale", scale)),
        reference_to=tuple(options.get("referenceTo", options.get("reference_to", ()))),
        picklist_values=tuple(str(v) for v in values),
        calculated=bool(options.get("calculated", False)),
    )


class Schema:
    def __init__(self, custom_fields: Mapping[str, str | Mapping[str, Any]]) -> None:
        fields = _standard_opportunity_fields()
        taken = {f.name.lower() for f in fields}
        for name, spec in custom_fields.items():
            if name.lower() in taken:
                raise ValueError(f"field {name} is already defined")
            taken.add(name.lower())
            fields.append(_custom_field(name, spec))
        self.opportunity = {f.name: f for f in fields}
        self.account = {f.name: f for f in _account_fields()}
        self._opportunity_lower = {f.name.lower(): f for f in fields}
        self._account_lower = {name.lower(): f for name, f in self.account.items()}

    def opportunity_field(self, name: str) -> FieldSpec | None:
        return self._opportunity_lower.get(name.lower())

    def account_field(self, name: str) -> FieldSpec | None:
        return self._account_lower.get(name.lower())


class BadValue(ValueError):
    pass


def _json_kind(value: Any) -> str:
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, int):
        return "VALUE_NUMBER_INT"
    if isinstance(value, float):
        return "VALUE_NUMBER_FLOAT"
    if isinstance(value, list):
        return "START_ARRAY"
    return "START_OBJECT"


def coerce(spec: FieldSpec, value: Any) -> Any:
    """A field value in its stored form, or ``BadValue``."""
    if value is None:
        return None
    kind = spec.type
    if kind in ID_TYPES:
        if isinstance(value, str) and ID_RE.fullmatch(value):
            return id18(value)
    elif kind in TEXT_TYPES:
        if isinstance(value, str):
            return value
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
    elif kind in NUMBER_TYPES:
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = None
        if number is not None and math.isfinite(number):
            return int(number) if kind == "int" else number
    elif kind == "date":
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str):
            try:
                if len(value) == 10:
                    return date.fromisoformat(value)
            except ValueError:
                pass
    elif kind == "datetime":
        if isinstance(value, datetime):
            return truncate_ms(value)
        if isinstance(value, str):
            try:
                return parse_datetime(value)
            except ValueError:
                pass
    raise BadValue(
        f"Cannot deserialize instance of {spec.soql_type} from {_json_kind(value)} value "
        f"{value} or request may be missing a required field"
    )


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def no_such_column(name: str, entity: str) -> str:
    return (
        f"No such column '{name}' on entity '{entity}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names."
    )
