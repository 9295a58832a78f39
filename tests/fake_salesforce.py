"""A local fake Salesforce org: a small threaded HTTP server on loopback.

It implements the subset of the Salesforce REST API (and the OAuth / SOAP login endpoints) that
the Salesforce sync uses, with Salesforce's documented shapes, an in-memory Opportunity store,
API-usage accounting and fault injection. Tests, ``make demo`` and the benches import it::

    from tests.fake_salesforce import FakeSalesforce

    with FakeSalesforce(api_version="59.0") as sf:
        ids = sf.add_opportunities([{"Name": "Acme", "StageName": "Prospecting"}])
        token = sf.issue_token()
        # GET {sf.url}/services/data/v59.0/query?q=SELECT+Id+FROM+Opportunity
        #     Authorization: Bearer {token}
        sf.inject("query", "QUERY_TIMEOUT")  # the next query answers 400 QUERY_TIMEOUT

Endpoints (``{v}`` is an API version no newer than ``api_version``):

- ``POST /services/oauth2/token``: grant types ``password``, ``client_credentials`` and
  ``urn:ietf:params:oauth:grant-type:jwt-bearer`` (any syntactically valid JWT; signatures are
  not checked).
- ``POST /services/Soap/u/{v}``: the SOAP ``login()`` simple-salesforce uses for
  username + password + security token.
- ``GET /services/data/v{v}/query?q=``, ``/queryAll?q=`` and ``/query/{locator}-{offset}``
  (also ``/queryAll/{locator}-{offset}``) with ``nextRecordsUrl`` paging.
- ``GET /services/data/v{v}/sobjects/{Opportunity|Account}/describe``.
- ``GET /services/data/v{v}/sobjects/Opportunity/{id}[?fields=A,B]``.
- ``PATCH /services/data/v{v}/composite/sobjects`` (sObject Collections update).
- ``GET /_fake/stats``: counters as JSON, for a fake running in another process.

Run it standalone (for a demo, or to keep its memory out of a bench's process)::

    python -m tests.fake_salesforce --port 8765 --opportunities 300

This module must not import anything from ``governance``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import math
import random
import re
import secrets
import signal
import socket
import sys
import threading
import traceback
import xml.etree.ElementTree as ET
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import formatdate
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, NamedTuple, cast
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    import requests

__all__ = [
    "DEFAULT_CUSTOM_FIELDS",
    "DEFAULT_USER_ID",
    "FAULT_KINDS",
    "INTEGRATION_USER_ID",
    "ORG_ID",
    "FakeClock",
    "FakeSalesforce",
    "FieldSpec",
    "FiredFault",
    "IssuedToken",
    "LoggedRequest",
    "format_datetime",
    "id18",
    "parse_datetime",
    "sample_opportunities",
]

# --------------------------------------------------------------------------------------------
# Ids and datetimes
# --------------------------------------------------------------------------------------------

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


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


def _make_id(prefix: str, number: int) -> str:
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

_MS = timedelta(milliseconds=1)
_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?"
)


def _truncate_ms(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def format_datetime(value: datetime) -> str:
    """Salesforce's datetime format: ``2024-05-01T12:34:56.000+0000`` (UTC, milliseconds)."""
    value = _truncate_ms(value)
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
    return _truncate_ms(value)


def _as_datetime(value: datetime | str) -> datetime:
    return parse_datetime(value) if isinstance(value, str) else _truncate_ms(value)


class FakeClock:
    """The org's clock: SystemModstamp, CreatedDate, token ``issued_at`` and the ``Date`` header.

    By default it follows the wall clock. ``set()`` freezes it at a moment; ``advance()`` moves
    it (frozen or not); ``unfreeze()`` lets it run again from where it stands. ``stamp()`` hands
    out modification stamps that are strictly increasing (at least 1 ms apart) even when several
    changes land within the same millisecond or the clock is set backwards.
    """

    def __init__(self, start: datetime | str | None = None) -> None:
        self._lock = threading.Lock()
        self._frozen: datetime | None = None if start is None else _as_datetime(start)
        self._offset = timedelta(0)
        self._last: datetime | None = None

    @property
    def frozen(self) -> bool:
        with self._lock:
            return self._frozen is not None

    @property
    def last_stamp(self) -> datetime | None:
        """The latest stamp handed out, if any."""
        with self._lock:
            return self._last

    def _now(self) -> datetime:
        if self._frozen is not None:
            return self._frozen
        return _truncate_ms(datetime.now(UTC) + self._offset)

    def now(self) -> datetime:
        """The current time, UTC, truncated to milliseconds."""
        with self._lock:
            return self._now()

    def set(self, when: datetime | str) -> None:
        """Freeze the clock at ``when``."""
        with self._lock:
            self._frozen = _as_datetime(when)

    def advance(self, by: float | timedelta) -> datetime:
        """Move the clock forward by ``by`` (seconds or a timedelta); returns the new time."""
        delta = by if isinstance(by, timedelta) else timedelta(seconds=by)
        with self._lock:
            if self._frozen is not None:
                self._frozen = _truncate_ms(self._frozen + delta)
            else:
                self._offset += delta
            return self._now()

    def unfreeze(self) -> None:
        """Follow the wall clock again, keeping the current reading as the starting point."""
        with self._lock:
            if self._frozen is not None:
                self._offset = self._frozen - datetime.now(UTC)
                self._frozen = None

    def stamp(self) -> datetime:
        """The next modification stamp: ``now()``, or 1 ms after the previous stamp if later."""
        with self._lock:
            value = self._now()
            if self._last is not None and value <= self._last:
                value = self._last + _MS
            self._last = value
            return value


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------

_TEXT_TYPES = frozenset(
    {"string", "textarea", "picklist", "multipicklist", "url", "email", "phone", "combobox"}
)
_ID_TYPES = frozenset({"id", "reference"})
_NUMBER_TYPES = frozenset({"double", "currency", "percent", "int"})
_FIELD_TYPES = _TEXT_TYPES | _ID_TYPES | _NUMBER_TYPES | {"boolean", "date", "datetime"}
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
        text = self.type in _TEXT_TYPES or self.type in _ID_TYPES
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
            "groupable": self.type not in _NUMBER_TYPES,
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


_STAGES = (
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
_CLOSED_STAGES = {"closed won": (True, True), "closed lost": (True, False)}
_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CAD", "CHF", "BRL")


def _standard_opportunity_fields() -> list[FieldSpec]:
    def system(name: str, kind: str, label: str, **extra: Any) -> FieldSpec:
        return FieldSpec(name, kind, label, updateable=False, nillable=False, **extra)

    user: dict[str, Any] = {"length": 18, "reference_to": ("User",)}
    return [
        system("Id", "id", "Opportunity ID", length=18),
        FieldSpec("Name", "string", "Name", nillable=False, length=120),
        FieldSpec(
            "StageName", "picklist", "Stage", nillable=False, length=255, picklist_values=_STAGES
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
    text = kind in _TEXT_TYPES
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


class _Schema:
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


class _BadValue(ValueError):
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


def _coerce(spec: FieldSpec, value: Any) -> Any:
    """A field value in its stored form, or ``_BadValue``."""
    if value is None:
        return None
    kind = spec.type
    if kind in _ID_TYPES:
        if isinstance(value, str) and _ID_RE.fullmatch(value):
            return id18(value)
    elif kind in _TEXT_TYPES:
        if isinstance(value, str):
            return value
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
    elif kind in _NUMBER_TYPES:
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
            return _truncate_ms(value)
        if isinstance(value, str):
            try:
                return parse_datetime(value)
            except ValueError:
                pass
    raise _BadValue(
        f"Cannot deserialize instance of {spec.soql_type} from {_json_kind(value)} value "
        f"{value} or request may be missing a required field"
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


# --------------------------------------------------------------------------------------------
# SOQL: the subset the sync sends
# --------------------------------------------------------------------------------------------


class SoqlError(Exception):
    """A query Salesforce would refuse: ``error_code`` is MALFORMED_QUERY, INVALID_FIELD, …"""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


@dataclass(frozen=True)
class _Tok:
    kind: str  # ident, string, number, datetime, date, op, punct, eof
    text: str
    pos: int
    value: Any = None

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "ident" else ""


_TOKEN_RE = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2}))"
    r"|(?P<date>\d{4}-\d{2}-\d{2})"
    r"|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<string>'(?:[^'\\]|\\.)*')"
    r"|(?P<op><=|>=|!=|<>|=|<|>)"
    r"|(?P<punct>[(),])"
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}
_KEYWORDS = frozenset(
    {
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC",
        "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "TRUE", "FALSE", "NULL", "GROUP", "HAVING",
        "WITH", "FOR", "INCLUDES", "EXCLUDES",
    }
)  # fmt: skip


def _soql_error(soql: str, pos: int, code: str, message: str) -> SoqlError:
    """Salesforce's query error text: the offending line, a caret, row and column, the reason."""
    row = soql.count("\n", 0, pos) + 1
    line_start = soql.rfind("\n", 0, pos) + 1
    line_end = soql.find("\n", pos)
    line = soql[line_start : line_end if line_end >= 0 else len(soql)]
    column = pos - line_start
    return SoqlError(
        code, f"\n{line}\n{' ' * column}^\nERROR at Row:{row}:Column:{column + 1}\n{message}"
    )


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            # \_ and \% stay escaped: they only mean something to LIKE.
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _tokenize(soql: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(soql):
        match = _TOKEN_RE.match(soql, pos)
        if not match:
            if soql[pos] == "'":
                raise _soql_error(soql, pos, "MALFORMED_QUERY", "line 1:0 mismatched character")
            raise _soql_error(
                soql, pos, "MALFORMED_QUERY", f"unexpected token: '{soql[pos : pos + 1]}'"
            )
        kind = match.lastgroup or ""
        text = match.group()
        if kind == "datetime":
            tokens.append(_Tok(kind, text, pos, parse_datetime(text)))
        elif kind == "date":
            try:
                tokens.append(_Tok(kind, text, pos, date.fromisoformat(text)))
            except ValueError:
                raise _soql_error(soql, pos, "MALFORMED_QUERY", f"invalid date: {text}") from None
        elif kind == "number":
            tokens.append(_Tok(kind, text, pos, float(text)))
        elif kind == "string":
            tokens.append(_Tok(kind, text, pos, _unescape(text[1:-1])))
        elif kind != "ws":
            tokens.append(_Tok(kind, text, pos))
        pos = match.end()
    tokens.append(_Tok("eof", "<EOF>", len(soql)))
    return tokens


Record = dict[str, Any]
Predicate = Callable[[Record], bool]


@dataclass(frozen=True)
class _FieldRef:
    relationship: str | None  # "Account" for Account.BillingCountry
    spec: FieldSpec

    @property
    def path(self) -> str:
        return f"{self.relationship}.{self.spec.name}" if self.relationship else self.spec.name

    def get(self, record: Record) -> Any:
        if self.relationship is None:
            return record.get(self.spec.name)
        related = record.get(self.relationship)
        return related.get(self.spec.name) if related else None


def _normalizer(spec: FieldSpec) -> Callable[[Any], Any]:
    if spec.type in _TEXT_TYPES:
        return lambda value: value.casefold() if isinstance(value, str) else value
    return lambda value: value


def _like_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


@dataclass
class _Query:
    sobject: str
    count_only: bool
    select: list[_FieldRef]
    where: Predicate | None
    order: list[tuple[_FieldRef, bool, bool]]  # field, descending, nulls first
    limit: int | None
    offset: int


class _Parser:
    def __init__(self, soql: str, schema: _Schema) -> None:
        self.soql = soql
        self.schema = schema
        self.tokens = _tokenize(soql)
        self.i = 0

    # -- token helpers
    def peek(self, ahead: int = 0) -> _Tok:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def take(self) -> _Tok:
        tok = self.peek()
        self.i += 1
        return tok

    def at(self, *words: str) -> bool:
        return self.peek().upper in words

    def fail(
        self, tok: _Tok | None = None, code: str = "MALFORMED_QUERY", msg: str = ""
    ) -> SoqlError:
        tok = tok or self.peek()
        shown = tok.text if tok.kind == "eof" else f"'{tok.text}'"
        return _soql_error(self.soql, tok.pos, code, msg or f"unexpected token: {shown}")

    def expect_word(self, word: str) -> _Tok:
        if not self.at(word):
            raise self.fail()
        return self.take()

    def expect_punct(self, char: str) -> _Tok:
        tok = self.peek()
        if tok.kind != "punct" or tok.text != char:
            raise self.fail()
        return self.take()

    # -- grammar
    def parse(self) -> _Query:
        self.expect_word("SELECT")
        count_only = False
        raw_fields: list[_Tok] = []
        if self.at("COUNT") and self.peek(1).text == "(":
            self.take()
            self.take()
            if self.peek().text != ")":
                raise self.fail(msg="the fake supports COUNT() but no other aggregate")
            self.take()
            count_only = True
        else:
            while True:
                tok = self.peek()
                if tok.kind != "ident" or tok.upper in _KEYWORDS:
                    raise self.fail()
                if self.peek(1).text == "(":
                    raise self.fail(msg="the fake supports no functions or aggregates in SELECT")
                raw_fields.append(self.take())
                if self.peek().text != ",":
                    break
                self.take()
        self.expect_word("FROM")
        obj = self.take()
        if obj.kind != "ident" or obj.upper in _KEYWORDS:
            raise self.fail(obj)
        if obj.text.lower() != "opportunity":
            raise self.fail(
                obj,
                "INVALID_TYPE",
                f"sObject type '{obj.text}' is not supported. If you are attempting to use a "
                "custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            )
        select: list[_FieldRef] = []
        seen: set[str] = set()
        for tok in raw_fields:
            ref = self.field(tok)
            if ref.path.lower() in seen:
                raise self.fail(tok, msg=f"duplicate field selected: {ref.path}")
            seen.add(ref.path.lower())
            select.append(ref)
        where = None
        if self.at("WHERE"):
            self.take()
            where = self.condition()
        order: list[tuple[_FieldRef, bool, bool]] = []
        if self.at("ORDER"):
            self.take()
            self.expect_word("BY")
            while True:
                tok = self.take()
                if tok.kind != "ident" or tok.upper in _KEYWORDS:
                    raise self.fail(tok)
                ref = self.field(tok)
                descending = False
                if self.at("ASC", "DESC"):
                    descending = self.take().upper == "DESC"
                nulls_first = not descending
                if self.at("NULLS"):
                    self.take()
                    if not self.at("FIRST", "LAST"):
                        raise self.fail()
                    nulls_first = self.take().upper == "FIRST"
                order.append((ref, descending, nulls_first))
                if self.peek().text != ",":
                    break
                self.take()
        limit = self.count_clause("LIMIT")
        offset = self.count_clause("OFFSET") or 0
        if self.peek().kind != "eof":
            raise self.fail()
        return _Query("Opportunity", count_only, select, where, order, limit, offset)

    def count_clause(self, word: str) -> int | None:
        if not self.at(word):
            return None
        self.take()
        tok = self.take()
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.fail(tok)
        return int(tok.text)

    def field(self, tok: _Tok) -> _FieldRef:
        parts = tok.text.split(".")
        if len(parts) == 1:
            spec = self.schema.opportunity_field(parts[0])
            if spec is None:
                raise self.fail(tok, "INVALID_FIELD", _no_such_column(parts[0], "Opportunity"))
            return _FieldRef(None, spec)
        if len(parts) == 2 and parts[0].lower() == "account":
            spec = self.schema.account_field(parts[1])
            if spec is None:
                raise self.fail(tok, "INVALID_FIELD", _no_such_column(parts[1], "Account"))
            return _FieldRef("Account", spec)
        raise self.fail(
            tok,
            "INVALID_FIELD",
            f"Didn't understand relationship '{'.'.join(parts[:-1])}' in field path. If you are "
            "attempting to use a custom relationship, be sure to append the '__r' after the "
            "custom relationship name. Please reference your WSDL or the describe call for the "
            "appropriate names.",
        )

    def condition(self) -> Predicate:
        """Conditions joined by AND or by OR; mixing them needs parentheses, as in SOQL."""
        terms = [self.term()]
        joiner = ""
        while self.at("AND", "OR"):
            word = self.peek().upper
            if joiner and word != joiner:
                raise self.fail()
            joiner = word
            self.take()
            terms.append(self.term())
        if len(terms) == 1:
            return terms[0]
        if joiner == "AND":
            return lambda record: all(term(record) for term in terms)
        return lambda record: any(term(record) for term in terms)

    def term(self) -> Predicate:
        if self.at("NOT"):
            self.take()
            inner = self.term()
            return lambda record: not inner(record)
        if self.peek().text == "(":
            self.take()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        tok = self.take()
        if tok.kind != "ident" or tok.upper in _KEYWORDS:
            raise self.fail(tok)
        ref = self.field(tok)
        if self.at("NOT") and self.peek(1).upper == "IN":
            self.take()
            self.take()
            inside = self.in_list(ref)
            return lambda record: not inside(record)
        if self.at("IN"):
            self.take()
            return self.in_list(ref)
        if self.at("LIKE"):
            self.take()
            pattern = self.take()
            if pattern.kind != "string" or ref.spec.type not in _TEXT_TYPES:
                raise self.fail(
                    pattern,
                    "INVALID_QUERY_FILTER_OPERATOR",
                    f"invalid operator on {ref.spec.soql_type} field: LIKE",
                )
            regex = _like_regex(pattern.value)
            return lambda record: isinstance(v := ref.get(record), str) and bool(regex.fullmatch(v))
        op = self.take()
        if op.kind != "op":
            raise self.fail(op)
        value_tok = self.peek()
        value = self.literal(ref)
        return self.compare(ref, op.text, value, value_tok)

    def in_list(self, ref: _FieldRef) -> Predicate:
        self.expect_punct("(")
        if self.at("SELECT"):
            raise self.fail(msg="the fake supports no semi-joins")
        values: set[Any] = set()
        has_null = False
        norm = _normalizer(ref.spec)
        while True:
            value = self.literal(ref)
            if value is None:
                has_null = True
            else:
                values.add(norm(value))
            if self.peek().text != ",":
                break
            self.take()
        self.expect_punct(")")

        def inside(record: Record) -> bool:
            value = ref.get(record)
            return has_null if value is None else norm(value) in values

        return inside

    def literal(self, ref: _FieldRef) -> Any:
        tok = self.take()
        if tok.upper == "NULL":
            return None
        spec = ref.spec
        kind = spec.type
        expected = {
            "datetime": "datetime",
            "date": "date",
            "boolean": "boolean",
        }.get(kind, "number" if kind in _NUMBER_TYPES else "string")
        actual = tok.kind
        if tok.upper in ("TRUE", "FALSE"):
            actual = "boolean"
        if actual != expected:
            if tok.kind not in ("string", "number", "datetime", "date") and actual != "boolean":
                raise self.fail(tok)
            quoted = (
                "should be enclosed in quotes"
                if expected == "string"
                else ("should not be enclosed in quotes")
            )
            raise self.fail(
                tok,
                "INVALID_QUERY_FILTER_OPERATOR",
                f"value of filter criterion for field '{ref.path}' must be of type "
                f"{spec.soql_type} and {quoted}",
            )
        if actual == "boolean":
            return tok.upper == "TRUE"
        if kind in _ID_TYPES:
            return id18(tok.value) if len(tok.value) == 15 else tok.value
        if kind == "int":
            return int(tok.value)
        return tok.value

    def compare(self, ref: _FieldRef, op: str, value: Any, tok: _Tok) -> Predicate:
        get = ref.get
        if value is None:
            if op == "=":
                return lambda record: get(record) is None
            if op in ("!=", "<>"):
                return lambda record: get(record) is not None
            raise self.fail(tok, msg=f"invalid operator for null: {op}")
        if ref.spec.type == "boolean" and op not in ("=", "!=", "<>"):
            raise self.fail(
                tok, "INVALID_QUERY_FILTER_OPERATOR", f"invalid operator on boolean field: {op}"
            )
        norm = _normalizer(ref.spec)
        target = norm(value)
        if op == "=":
            return lambda record: (v := get(record)) is not None and norm(v) == target
        if op in ("!=", "<>"):
            return lambda record: (v := get(record)) is None or norm(v) != target
        if op == "<":
            return lambda record: (v := get(record)) is not None and norm(v) < target
        if op == "<=":
            return lambda record: (v := get(record)) is not None and norm(v) <= target
        if op == ">":
            return lambda record: (v := get(record)) is not None and norm(v) > target
        return lambda record: (v := get(record)) is not None and norm(v) >= target


def _no_such_column(name: str, entity: str) -> str:
    return (
        f"No such column '{name}' on entity '{entity}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names."
    )


def _parse_soql(soql: str, schema: _Schema) -> _Query:
    return _Parser(soql, schema).parse()


def _sort_rows(rows: list[Record], order: Sequence[tuple[_FieldRef, bool, bool]]) -> None:
    """Sort in place by the ORDER BY list (stable sorts, last key first)."""
    for ref, descending, nulls_first in reversed(order):
        norm = _normalizer(ref.spec)
        # With reverse=True the flag order flips, so pick the flag that lands nulls right.
        null_flag = 0 if nulls_first != descending else 2

        def key(
            record: Record,
            ref: _FieldRef = ref,
            norm: Callable[[Any], Any] = norm,
            null_flag: int = null_flag,
        ) -> tuple[int, Any]:
            value = ref.get(record)
            return (null_flag, None) if value is None else (1, norm(value))

        rows.sort(key=key, reverse=descending)


# --------------------------------------------------------------------------------------------
# The fake org
# --------------------------------------------------------------------------------------------

_API_KINDS = ("query", "query_more", "describe", "collections", "retrieve")
FAULT_KINDS = (*_API_KINDS, "token")
"""Kinds of call that faults can be injected into (``token`` covers OAuth and SOAP login)."""
_NAMED_FAULTS = frozenset(
    {
        "INVALID_SESSION_ID",
        "REQUEST_LIMIT_EXCEEDED",
        "QUERY_TIMEOUT",
        "INVALID_QUERY_LOCATOR",
        "timeout",
        "disconnect",
    }
)
_JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_MAX_COLLECTION = 200


class FiredFault(NamedTuple):
    """A fault that actually happened: an injected one, or a rejected record (``record_id``)."""

    kind: str
    fault: str
    record_id: str | None = None


class IssuedToken(NamedTuple):
    access_token: str
    grant_type: str  # password, client_credentials, jwt-bearer, soap, direct
    user_id: str
    username: str | None


class LoggedRequest(NamedTuple):
    method: str
    path: str
    kind: str
    status: int
    soql: str | None


@dataclass
class _Fault:
    kind: str
    fault: str
    remaining: int | None
    after: int
    seen: int = 0


@dataclass
class _Rejection:
    status_code: str
    message: str
    fields: list[str]
    remaining: int | None


@dataclass
class _Cursor:
    rows: list[Record]
    select: list[_FieldRef]
    batch: int


@dataclass
class _Failure:
    result: dict[str, Any]


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)
    disconnect: bool = False


def _json_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> _Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return _Response(status, body, headers=dict(headers or {}))


def _errors(status: int, error_code: str, message: str) -> _Response:
    return _json_response(status, [{"message": message, "errorCode": error_code}])


_NOT_FOUND_MESSAGE = "The requested resource does not exist"


class FakeSalesforce:
    """A fake Salesforce org on ``127.0.0.1`` (ephemeral port), started on construction.

    Use as a context manager or call ``stop()``. All state is in memory, guarded by one lock;
    records are never mutated in place (an edit stores a new dict), so a query cursor's snapshot
    is just a list of references.
    """

    def __init__(
        self,
        api_version: str = "59.0",
        *,
        custom_fields: Mapping[str, str | Mapping[str, Any]] | None = None,
        batch_size: int = 2000,
        daily_limit: int = 100_000,
        timeout_sleep: float = 2.0,
        integration_user_id: str = INTEGRATION_USER_ID,
        clock: FakeClock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not re.fullmatch(r"\d+\.\d", api_version):
            raise ValueError(f"api_version looks like 59.0, not {api_version!r}")
        self.api_version = api_version
        self.org_id = ORG_ID
        self.batch_size = batch_size
        """Records per query page (Salesforce: 2,000). ``Sforce-Query-Options: batchSize=n``
        lowers it per request (200..2,000, as documented)."""
        self.daily_limit = daily_limit
        self.timeout_sleep = timeout_sleep
        """How long a ``"timeout"`` fault holds the response (make it exceed the client's)."""
        self.integration_user_id = id18(integration_user_id)
        """The user id tokens act as: API updates set LastModifiedById to it."""
        self.default_user_id = DEFAULT_USER_ID
        """The user id Python-API edits are attributed to unless ``by_user_id`` is given."""
        self.max_cursors = 10
        """Open query cursors kept; opening another releases the oldest (as Salesforce does)."""
        self.clock = clock or FakeClock()
        # Credentials the token endpoints check; None accepts anything.
        self.username: str | None = None
        self.password: str | None = None
        self.security_token: str | None = None
        self.consumer_key: str | None = None
        self.consumer_secret: str | None = None

        self._schema = _Schema(DEFAULT_CUSTOM_FIELDS if custom_fields is None else custom_fields)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._records: dict[str, Record] = {}
        self._purged: set[str] = set()
        self._account_ids: dict[str, str] = {}
        self._counters: Counter[str] = Counter()
        self._calls: Counter[str] = Counter()
        self._api_usage = 0
        self._tokens: dict[str, str] = {}  # live access token -> user id
        self._issued: list[IssuedToken] = []
        self._faults: list[_Fault] = []
        self._fired: list[FiredFault] = []
        self._rejections: dict[str, _Rejection] = {}
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._log: deque[LoggedRequest] = deque(maxlen=2000)
        self._internal_errors: list[str] = []

        self._stopped = False
        self._server = _Server((host, port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-salesforce",
            daemon=True,
        )
        self._thread.start()

    # ---------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the login URL and the instance URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        """Stop serving and drop open connections (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeSalesforce:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- observability
    @property
    def calls(self) -> Counter[str]:
        """Requests received, per kind (query — which includes queryAll —, query_more,
        describe, collections, retrieve, token, other) and ``total`` (all of them). A copy."""
        with self._lock:
            return Counter(self._calls)

    @property
    def api_usage(self) -> int:
        """Calls counted against the daily limit: the USED in ``Sforce-Limit-Info``."""
        with self._lock:
            return self._api_usage

    @api_usage.setter
    def api_usage(self, value: int) -> None:
        with self._lock:
            self._api_usage = value

    @property
    def fired(self) -> list[FiredFault]:
        """Faults that actually fired, in order (injected faults and rejected records)."""
        with self._lock:
            return list(self._fired)

    def pending_faults(self) -> list[tuple[str, str, int | None]]:
        """Injected faults not yet used up: ``(kind, fault, remaining)`` (None: forever)."""
        with self._lock:
            return [(f.kind, f.fault, f.remaining) for f in self._faults if f.remaining != 0]

    @property
    def log(self) -> list[LoggedRequest]:
        """The last 2,000 requests: method, path, kind, status and the SOQL if any."""
        with self._lock:
            return list(self._log)

    @property
    def issued_tokens(self) -> list[IssuedToken]:
        with self._lock:
            return list(self._issued)

    @property
    def internal_errors(self) -> list[str]:
        """Tracebacks of bugs in the fake itself (answered as 500 UNKNOWN_EXCEPTION)."""
        with self._lock:
            return list(self._internal_errors)

    def reset_stats(self) -> None:
        """Zero ``calls`` and forget ``fired`` and ``log`` (``api_usage`` stays)."""
        with self._lock:
            self._calls.clear()
            self._fired.clear()
            self._log.clear()

    def soql_sent(self) -> list[str]:
        """The SOQL of every logged query, in order."""
        return [entry.soql for entry in self.log if entry.soql is not None]

    # ---------------------------------------------------------------- sessions
    def issue_token(self, user_id: str | None = None) -> str:
        """A live access token without an HTTP call (not counted)."""
        return self._issue("direct", user_id or self.integration_user_id, None)

    def expire_sessions(self) -> None:
        """Invalidate every token issued so far: the next API call answers 401."""
        with self._lock:
            self._tokens.clear()

    def is_live(self, token: str) -> bool:
        with self._lock:
            return token in self._tokens

    def _issue(self, grant: str, user_id: str, username: str | None) -> str:
        token = f"{self.org_id[:15]}!{secrets.token_urlsafe(48)}"
        with self._lock:
            self._tokens[token] = user_id
            self._issued.append(IssuedToken(token, grant, user_id, username))
        return token

    def requests_session(self) -> requests.Session:
        """A ``requests.Session`` that sends everything to this fake: pass it to simple-salesforce
        (``Salesforce(..., session=sf.requests_session())``), whose URLs are always
        ``https://{domain}.salesforce.com/…`` or ``https://{instance}/…``."""
        return _rewriting_session(self.url)

    # ---------------------------------------------------------------- schema
    def field_types(self, sobject: str = "Opportunity") -> dict[str, str]:
        """``{field name: describe type}`` for Opportunity or Account."""
        fields = self._schema.account if sobject.lower() == "account" else self._schema.opportunity
        return {name: spec.type for name, spec in fields.items()}

    # ---------------------------------------------------------------- records
    def add_opportunities(
        self,
        records: Iterable[Mapping[str, Any]],
        *,
        by_user_id: str | None = None,
        same_stamp: bool = False,
    ) -> list[str]:
        """Create opportunities; returns their 18-character Ids (prefix ``006``).

        Field names are API names, case-insensitive. Relationship values go in as
        ``"Account.BillingCountry": "FR"`` or ``"Account": {"Name": ..., "BillingCountry": ...}``
        (an AccountId is made up, one per account Name). Datetimes and dates may be objects or
        strings. Missing fields get defaults (Name, StageName Prospecting, CloseDate in 30 days,
        OwnerId, CurrencyIsoCode USD, checkboxes false); IsClosed / IsWon follow StageName unless
        given. CreatedDate, LastModifiedDate and SystemModstamp come from ``clock.stamp()`` —
        one stamp per record, or one for the whole call with ``same_stamp=True`` (a single DML)
        — unless given explicitly.
        """
        user = id18(by_user_id) if by_user_id else self.default_user_id
        prepared = [self._normalize_input(dict(r), creating=True) for r in records]
        with self._lock:
            shared = self.clock.stamp() if same_stamp and prepared else None
            created: dict[str, Record] = {}
            for values, account in prepared:
                record = self._new_record(values, account, shared or self.clock.stamp(), user)
                if record["Id"] in created:
                    raise ValueError(f"duplicate Id: {record['Id']}")
                created[record["Id"]] = record
            self._records.update(created)  # all or nothing
        return list(created)

    def add_opportunity(self, record: Mapping[str, Any] | None = None, **fields: Any) -> str:
        """One opportunity (``add_opportunities`` for a single record); returns its Id."""
        return self.add_opportunities([{**(record or {}), **fields}])[0]

    def update_opportunity(
        self, id: str, fields: Mapping[str, Any], by_user_id: str | None = None
    ) -> Record:
        """Edit as a user would (default: ``default_user_id``). Bumps SystemModstamp and
        LastModifiedDate to ``clock.stamp()`` (unless given), sets LastModifiedById, re-derives
        IsClosed / IsWon from a new StageName. Returns a copy of the new record."""
        values, account = self._normalize_input(dict(fields), creating=False)
        user = id18(by_user_id) if by_user_id else self.default_user_id
        with self._lock:
            old = self._live_record(id)
            new = self._changed(old, values, account, user, self.clock.stamp())
            self._records[new["Id"]] = new
            return _copy_record(new)

    def delete_opportunity(
        self, id: str, *, by_user_id: str | None = None, hard: bool = False
    ) -> None:
        """Soft-delete (IsDeleted true, stamp bumped: visible only to queryAll), or with
        ``hard=True`` purge it as if emptied from the recycle bin (gone even from queryAll)."""
        user = id18(by_user_id) if by_user_id else self.default_user_id
        with self._lock:
            old = self._live_record(id)
            if hard:
                del self._records[old["Id"]]
                self._purged.add(old["Id"])
                return
            self._records[old["Id"]] = self._changed(
                old, {"IsDeleted": True}, None, user, self.clock.stamp()
            )

    def get(self, id: str) -> Record:
        """A copy of the stored record (deleted ones too): API field names, datetimes as aware
        UTC ``datetime``, dates as ``date``, the account as ``"Account": {"Id", "Name", ...}``
        or None. Raises KeyError for an unknown Id."""
        with self._lock:
            return _copy_record(self._records[id18(id)])

    def records(self, *, include_deleted: bool = True) -> list[Record]:
        """Copies of all records in creation order."""
        with self._lock:
            return [
                _copy_record(r)
                for r in self._records.values()
                if include_deleted or not r["IsDeleted"]
            ]

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def _live_record(self, id: str) -> Record:
        record = self._records.get(id18(id))
        if record is None:
            raise KeyError(id)
        if record["IsDeleted"]:
            raise ValueError(f"opportunity {id} is deleted")
        return record

    def _normalize_input(
        self, fields: dict[str, Any], *, creating: bool
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        values: dict[str, Any] = {}
        account: dict[str, Any] | None = None
        for key, value in fields.items():
            if key == "attributes":
                continue
            if key.lower() == "account" and (value is None or isinstance(value, Mapping)):
                if value is None:
                    values["AccountId"] = None
                    continue
                account = {} if account is None else account
                for sub_key, sub_value in value.items():
                    if sub_key != "attributes":
                        account.update(self._account_value(sub_key, sub_value))
                continue
            if "." in key:
                relationship, _, name = key.partition(".")
                if relationship.lower() != "account":
                    raise ValueError(f"Didn't understand relationship '{relationship}'")
                account = {} if account is None else account
                account.update(self._account_value(name, value))
                continue
            spec = self._schema.opportunity_field(key)
            if spec is None:
                raise ValueError(_no_such_column(key, "Opportunity"))
            if spec.name == "Id" and not creating:
                raise ValueError("the Id of a record cannot change")
            try:
                values[spec.name] = _coerce(spec, value)
            except _BadValue as exc:
                raise ValueError(f"{spec.name}: {exc}") from None
        return values, account

    def _account_value(self, name: str, value: Any) -> dict[str, Any]:
        spec = self._schema.account_field(name)
        if spec is None:
            raise ValueError(_no_such_column(name, "Account"))
        try:
            return {spec.name: _coerce(spec, value)}
        except _BadValue as exc:
            raise ValueError(f"Account.{spec.name}: {exc}") from None

    def _next_id(self, prefix: str) -> str:
        while True:
            self._counters[prefix] += 1
            candidate = _make_id(prefix, self._counters[prefix])
            if candidate not in self._records and candidate not in self._purged:
                return candidate

    def _account_for(self, account: dict[str, Any], account_id: str | None) -> dict[str, Any]:
        account = dict(account)
        account_id = account.get("Id") or account_id
        name = account.get("Name")
        if account_id is None:
            if name is not None and name in self._account_ids:
                account_id = self._account_ids[name]
            else:
                account_id = self._next_id("001")
        if name is not None:
            self._account_ids.setdefault(name, account_id)
        account["Id"] = account_id
        return account

    def _new_record(
        self, values: dict[str, Any], account: dict[str, Any] | None, stamp: datetime, user: str
    ) -> Record:
        record: Record = dict.fromkeys(self._schema.opportunity)
        for name, spec in self._schema.opportunity.items():
            if spec.type == "boolean":
                record[name] = False
        number = self._counters["006"] + 1
        record.update(
            Name=f"Opportunity {number}",
            StageName="Prospecting",
            CloseDate=(self.clock.now() + timedelta(days=30)).date(),
            OwnerId=self.default_user_id,
            CurrencyIsoCode="USD",
            CreatedById=user,
            LastModifiedById=user,
        )
        record.update(values)
        given_id = values.get("Id")
        if given_id is not None:
            if not given_id.startswith("006") or len(given_id) != 18:
                raise ValueError(f"not an Opportunity Id: {given_id}")
            if given_id in self._records or given_id in self._purged:
                raise ValueError(f"duplicate Id: {given_id}")
        else:
            record["Id"] = self._next_id("006")
        for name in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
            if values.get(name) is None:
                record[name] = stamp
        closed, won = _CLOSED_STAGES.get(str(record["StageName"]).lower(), (False, False))
        if "IsClosed" not in values:
            record["IsClosed"] = closed
        if "IsWon" not in values:
            record["IsWon"] = won
        if account is not None:
            record["Account"] = self._account_for(account, record.get("AccountId"))
            record["AccountId"] = record["Account"]["Id"]
        elif record.get("AccountId") is not None:
            record["Account"] = {"Id": record["AccountId"]}
        else:
            record["Account"] = None
        return record

    def _changed(
        self,
        old: Record,
        values: Mapping[str, Any],
        account: dict[str, Any] | None,
        user: str,
        stamp: datetime,
    ) -> Record:
        new = dict(old)
        new.update(values)
        if "AccountId" in values and values["AccountId"] != old.get("AccountId"):
            new["Account"] = None if values["AccountId"] is None else {"Id": values["AccountId"]}
        if account:
            merged = {**(new.get("Account") or {}), **account}
            new["Account"] = self._account_for(merged, new.get("AccountId"))
            new["AccountId"] = new["Account"]["Id"]
        if "StageName" in values and "IsClosed" not in values and "IsWon" not in values:
            new["IsClosed"], new["IsWon"] = _CLOSED_STAGES.get(
                str(new["StageName"]).lower(), (False, False)
            )
        new["SystemModstamp"] = values.get("SystemModstamp") or stamp
        new["LastModifiedDate"] = values.get("LastModifiedDate") or stamp
        new["LastModifiedById"] = values.get("LastModifiedById") or user
        return new

    # ---------------------------------------------------------------- faults
    def inject(self, kind: str, fault: str | int, times: int | None = 1, after: int = 0) -> None:
        """Make calls of ``kind`` fail: the fault fires on the ``after + 1``-th such call from
        now, then on the next ``times - 1`` (``times=None``: forever), then clears.

        Faults: ``"INVALID_SESSION_ID"`` (401; also expires every token, so the client must
        log in again), ``"REQUEST_LIMIT_EXCEEDED"`` (403), ``"QUERY_TIMEOUT"`` (400),
        ``"INVALID_QUERY_LOCATOR"`` (400), 500 (UNKNOWN_EXCEPTION), 502/503/504
        (SERVER_UNAVAILABLE), ``"timeout"`` (answers normally — the work is done — but only
        after ``timeout_sleep`` seconds), ``"disconnect"`` (closes the connection, no answer,
        nothing done). For ``token``, errors come back as OAuth errors / SOAP faults.
        Several faults on one kind fire in the order injected.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}, not {kind!r}")
        if isinstance(fault, int):
            if not 500 <= fault <= 599:
                raise ValueError("status faults are 5xx")
            name = str(fault)
        elif fault in _NAMED_FAULTS:
            name = fault
        else:
            raise ValueError(f"unknown fault {fault!r}")
        if kind == "token" and name in ("QUERY_TIMEOUT", "INVALID_QUERY_LOCATOR"):
            raise ValueError(f"{name} makes no sense for the token endpoint")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None)")
        with self._lock:
            self._faults.append(_Fault(kind, name, times, after))

    def clear_faults(self) -> None:
        """Drop injected faults and record rejections that have not fired."""
        with self._lock:
            self._faults.clear()
            self._rejections.clear()

    def reject_records(
        self,
        rejections: Mapping[str, tuple[str, str] | tuple[str, str, Sequence[str]]],
        *,
        times: int | None = 1,
    ) -> None:
        """Make Collections updates of these records fail with ``(statusCode, message[,
        fields])`` — ``times`` times each (None: always) — while the rest of the batch succeeds
        (e.g. ``FIELD_CUSTOM_VALIDATION_EXCEPTION``, ``UNABLE_TO_LOCK_ROW``)."""
        with self._lock:
            for record_id, spec in rejections.items():
                fields = list(spec[2]) if len(spec) == 3 else []
                self._rejections[id18(record_id)] = _Rejection(spec[0], spec[1], fields, times)

    def expire_cursors(self) -> None:
        """Release every open query cursor: next pages answer 400 INVALID_QUERY_LOCATOR."""
        with self._lock:
            self._cursors.clear()

    def _take_fault(self, kind: str) -> str | None:
        with self._lock:
            chosen: _Fault | None = None
            for fault in self._faults:
                if fault.kind != kind or fault.remaining == 0:
                    continue
                if chosen is None and fault.seen >= fault.after:
                    chosen = fault
                fault.seen += 1
            if chosen is None:
                return None
            if chosen.remaining is not None:
                chosen.remaining -= 1
            self._fired.append(FiredFault(kind, chosen.fault))
            self._faults = [f for f in self._faults if f.remaining != 0]
            return chosen.fault

    # ---------------------------------------------------------------- HTTP dispatch
    def _limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self._api_usage}/{self.daily_limit}"}

    def _handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> _Response:
        parts = urlsplit(raw_path)
        path = parts.path.rstrip("/") or "/"
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        kind, allowed, handler = self._route(path, params, headers, body)
        soql = params.get("q") if kind == "query" else None
        with self._lock:
            self._calls[kind] += 1
            self._calls["total"] += 1
        if method not in allowed:
            response = _errors(
                405,
                "METHOD_NOT_ALLOWED",
                f"HTTP Method '{method}' not allowed. Allowed are {','.join(allowed)}",
            )
            response.headers["Allow"] = ", ".join(allowed)
        else:
            response = self._serve(kind, handler, headers)
        with self._lock:
            self._log.append(LoggedRequest(method, raw_path, kind, response.status, soql))
        return response

    def _serve(
        self,
        kind: str,
        handler: Callable[[str], _Response],
        headers: Mapping[str, str],
    ) -> _Response:
        fault = self._take_fault(kind) if kind in FAULT_KINDS else None
        if fault == "disconnect":
            return _Response(0, disconnect=True)
        if fault == "timeout":
            self._stopping.wait(self.timeout_sleep)
        elif fault is not None:
            return self._fault_response(kind, fault)
        if kind in ("token", "internal", "public"):
            return handler("")
        user_id = self._authenticate(headers)
        with self._lock:
            if user_id is None:
                return _json_response(
                    401,
                    [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                    self._limit_header(),
                )
            if self._api_usage >= self.daily_limit:
                return _json_response(
                    403,
                    [
                        {
                            "message": "TotalRequests Limit exceeded.",
                            "errorCode": "REQUEST_LIMIT_EXCEEDED",
                        }
                    ],
                    self._limit_header(),
                )
            self._api_usage += 1
            limit = self._limit_header()
        response = handler(user_id)
        response.headers.update(limit)
        return response

    def _fault_response(self, kind: str, fault: str) -> _Response:
        if kind == "token":
            return self._token_fault(fault)
        with self._lock:
            if fault == "INVALID_SESSION_ID":
                self._tokens.clear()
                status, code, message = 401, fault, "Session expired or invalid"
            elif fault == "REQUEST_LIMIT_EXCEEDED":
                status, code, message = 403, fault, "TotalRequests Limit exceeded."
            elif fault == "QUERY_TIMEOUT":
                self._api_usage += 1
                status, code = 400, fault
                message = "Your query request was running for too long."
            elif fault == "INVALID_QUERY_LOCATOR":
                self._api_usage += 1
                status, code, message = 400, fault, "invalid query locator"
            elif fault == "500":
                status, code = 500, "UNKNOWN_EXCEPTION"
                message = (
                    "An unexpected error occurred. Please include this ErrorId if you contact "
                    "support: 1234567890-12345 (-1234567890)"
                )
            else:
                status, code = int(fault), "SERVER_UNAVAILABLE"
                message = "Server temporarily unavailable. Please try again later."
            return _json_response(
                status, [{"message": message, "errorCode": code}], self._limit_header()
            )

    def _token_fault(self, fault: str) -> _Response:
        if fault == "INVALID_SESSION_ID":
            return _json_response(
                400, {"error": "invalid_grant", "error_description": "authentication failure"}
            )
        if fault == "REQUEST_LIMIT_EXCEEDED":
            return _json_response(
                400, {"error": "invalid_grant", "error_description": "login rate exceeded"}
            )
        return _json_response(
            int(fault), {"error": "unknown_error", "error_description": "retry your request"}
        )

    def _authenticate(self, headers: Mapping[str, str]) -> str | None:
        value = headers.get("authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() not in ("bearer", "oauth"):
            return None
        with self._lock:
            return self._tokens.get(token.strip())

    def _route(
        self, path: str, params: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> tuple[str, tuple[str, ...], Callable[[str], _Response]]:
        def not_found(_user: str) -> _Response:
            return _errors(404, "NOT_FOUND", _NOT_FOUND_MESSAGE)

        if path == "/services/oauth2/token":
            return "token", ("POST",), lambda _user: self._oauth_token(params, headers, body)
        if re.fullmatch(r"/services/Soap/u/\d+\.\d(?:/.*)?", path):
            return "token", ("POST",), lambda _user: self._soap_login(body)
        if path == "/_fake/stats":
            return "internal", ("GET",), lambda _user: _json_response(200, self.stats())
        if path == "/services/data":
            return "public", ("GET",), lambda _user: self._versions()
        match = re.fullmatch(r"/services/data/v(\d+\.\d)(/.*)?", path)
        if not match:
            return "public", ("GET", "POST", "PATCH", "PUT", "DELETE"), not_found
        version, rest = match.group(1), match.group(2) or ""
        if not 20.0 <= float(version) <= float(self.api_version):
            return "public", ("GET", "POST", "PATCH", "PUT", "DELETE"), not_found
        if rest in ("/query", "/queryAll"):
            deleted = rest == "/queryAll"
            return (
                "query",
                ("GET",),
                lambda _user: self._query(params.get("q"), version, deleted, headers),
            )
        match = re.fullmatch(r"/query(?:All)?/([^/]+)", rest)
        if match:
            locator = unquote(match.group(1))
            return "query_more", ("GET",), lambda _user: self._query_more(locator, version)
        match = re.fullmatch(r"/sobjects/([A-Za-z_]+)/describe", rest)
        if match:
            sobject = match.group(1)
            return "describe", ("GET",), lambda _user: self._describe(sobject, version)
        match = re.fullmatch(r"/sobjects/Opportunity/([^/]+)", rest, re.IGNORECASE)
        if match:
            record_id = unquote(match.group(1))
            fields = params.get("fields")
            return "retrieve", ("GET",), lambda _user: self._retrieve(record_id, fields, version)
        if rest == "/composite/sobjects":
            return "collections", ("PATCH",), lambda user: self._collections(body, user)
        return "other", ("GET", "POST", "PATCH", "PUT", "DELETE"), not_found

    def stats(self) -> dict[str, Any]:
        """Counters as JSON-able data (also served at ``GET /_fake/stats``)."""
        with self._lock:
            return {
                "url": self.url,
                "api_usage": self._api_usage,
                "daily_limit": self.daily_limit,
                "calls": dict(self._calls),
                "fired": [list(f) for f in self._fired],
                "records": len(self._records),
                "deleted": sum(1 for r in self._records.values() if r["IsDeleted"]),
                "open_cursors": len(self._cursors),
            }

    def _versions(self) -> _Response:
        major = int(float(self.api_version))
        return _json_response(
            200,
            [
                {"label": f"v{v}.0", "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
                for v in range(major - 2, major + 1)
            ],
        )

    # ---------------------------------------------------------------- OAuth and SOAP login
    def _check_user(self, username: str | None, password: str | None) -> bool:
        if self.username is not None and username != self.username:
            return False
        if self.password is not None:
            return password == self.password + (self.security_token or "")
        return bool(username) and bool(password)

    def _oauth_token(
        self, params: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> _Response:
        form = dict(params)
        text = body.decode("utf-8", "replace")
        form.update({k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()})
        grant = form.get("grant_type")

        def oauth_error(error: str, description: str, status: int = 400) -> _Response:
            return _json_response(status, {"error": error, "error_description": description})

        client_id = form.get("client_id")
        client_secret = form.get("client_secret")
        basic = headers.get("authorization") or ""
        if basic.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic[6:].strip()).decode()
            except ValueError:
                return oauth_error("invalid_client", "invalid client credentials")
            client_id, _, client_secret = decoded.partition(":")
        username: str | None = None
        if grant == "password":
            if self.consumer_key is not None and client_id != self.consumer_key:
                return oauth_error("invalid_client_id", "client identifier invalid")
            if self.consumer_secret is not None and client_secret != self.consumer_secret:
                return oauth_error("invalid_client", "invalid client credentials")
            username = form.get("username")
            if not self._check_user(username, form.get("password")):
                return oauth_error("invalid_grant", "authentication failure")
            label = "password"
        elif grant == "client_credentials":
            if not client_id or not client_secret:
                return oauth_error("invalid_client", "invalid client credentials")
            if (self.consumer_key is not None and client_id != self.consumer_key) or (
                self.consumer_secret is not None and client_secret != self.consumer_secret
            ):
                return oauth_error("invalid_client", "invalid client credentials")
            label = "client_credentials"
        elif grant == _JWT_GRANT:
            claims = _jwt_claims(form.get("assertion") or "")
            if claims is None:
                return oauth_error("invalid_grant", "invalid assertion")
            if self.consumer_key is not None and claims.get("iss") != self.consumer_key:
                return oauth_error("invalid_client_id", "client identifier invalid")
            username = claims.get("sub") if isinstance(claims.get("sub"), str) else None
            if self.username is not None and username != self.username:
                return oauth_error("invalid_grant", "user hasn't approved this consumer")
            label = "jwt-bearer"
        elif not grant:
            return oauth_error("invalid_request", "grant type not supported")
        else:
            return oauth_error("unsupported_grant_type", "grant type not supported")
        user_id = self.integration_user_id
        token = self._issue(label, user_id, username)
        issued_at = str(int(self.clock.now().timestamp() * 1000))
        identity = f"{self.url}/id/{self.org_id}/{user_id}"
        signature = base64.b64encode(
            hmac.new(
                (client_secret or "fake-secret").encode(),
                (identity + issued_at).encode(),
                hashlib.sha256,
            ).digest()
        ).decode()
        payload: dict[str, Any] = {
            "access_token": token,
            "instance_url": self.url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
        }
        if label != "password":
            payload["scope"] = "api"
        return _json_response(200, payload)

    def _soap_login(self, body: bytes) -> _Response:
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return _soap_fault(500, "INVALID_REQUEST", "Could not parse the login request")
        username = password = None
        for element in root.iter():
            local = element.tag.rsplit("}", 1)[-1]
            if local == "username":
                username = element.text or ""
            elif local == "password":
                password = element.text or ""
        if not self._check_user(username, password):
            return _soap_fault(
                500,
                "INVALID_LOGIN",
                "Invalid username, password, security token; or user locked out.",
            )
        user_id = self.integration_user_id
        token = self._issue("soap", user_id, username)
        version = self.api_version
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{self.url}/services/Soap/m/{version}/{self.org_id[:15]}"
            "</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
            f"<serverUrl>{self.url}/services/Soap/u/{version}/{self.org_id[:15]}</serverUrl>"
            f"<sessionId>{escape(token)}</sessionId><userId>{user_id}</userId>"
            "<userInfo>"
            f"<organizationId>{self.org_id}</organizationId>"
            f"<userId>{user_id}</userId><userName>{escape(username or '')}</userName>"
            "</userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return _Response(200, xml.encode(), "text/xml;charset=UTF-8")

    # ---------------------------------------------------------------- query
    def _query(
        self, soql: str | None, version: str, include_deleted: bool, headers: Mapping[str, str]
    ) -> _Response:
        if not soql or not soql.strip():
            return _errors(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            query = _parse_soql(soql, self._schema)
        except SoqlError as exc:
            return _errors(400, exc.error_code, exc.message)
        batch = self.batch_size
        option = re.search(r"batchSize\s*=\s*(\d+)", headers.get("sforce-query-options") or "")
        if option:
            batch = min(batch, max(200, min(2000, int(option.group(1)))))
        batch = max(1, batch)
        with self._lock:
            rows = [
                record
                for record in self._records.values()
                if (include_deleted or not record["IsDeleted"])
                and (query.where is None or query.where(record))
            ]
        _sort_rows(rows, query.order)
        if query.offset:
            rows = rows[query.offset :]
        if query.limit is not None:
            rows = rows[: query.limit]
        if query.count_only:
            return _json_response(200, {"totalSize": len(rows), "done": True, "records": []})
        page = rows[:batch]
        payload: dict[str, Any] = {"totalSize": len(rows), "done": len(rows) <= batch}
        if len(rows) > batch:
            with self._lock:
                self._counters["01g"] += 1
                locator = _make_id("01g", self._counters["01g"])
                self._cursors[locator] = _Cursor(rows, query.select, batch)
                while len(self._cursors) > max(1, self.max_cursors):
                    self._cursors.popitem(last=False)
            payload["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{batch}"
        payload["records"] = [self._render(r, query.select, version) for r in page]
        return _json_response(200, payload)

    def _query_more(self, locator: str, version: str) -> _Response:
        cursor_id, _, offset_text = locator.rpartition("-")
        with self._lock:
            cursor = self._cursors.get(cursor_id)
        if cursor is None or not offset_text.isdigit() or int(offset_text) >= len(cursor.rows):
            return _errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        offset = int(offset_text)
        end = offset + cursor.batch
        payload: dict[str, Any] = {"totalSize": len(cursor.rows), "done": end >= len(cursor.rows)}
        if end < len(cursor.rows):
            payload["nextRecordsUrl"] = f"/services/data/v{version}/query/{cursor_id}-{end}"
        payload["records"] = [
            self._render(r, cursor.select, version) for r in cursor.rows[offset:end]
        ]
        return _json_response(200, payload)

    def _render(self, record: Record, select: Sequence[_FieldRef], version: str) -> Record:
        out: Record = {
            "attributes": {
                "type": "Opportunity",
                "url": f"/services/data/v{version}/sobjects/Opportunity/{record['Id']}",
            }
        }
        for ref in select:
            if ref.relationship is None:
                out[ref.spec.name] = _json_value(record.get(ref.spec.name))
                continue
            related = record.get(ref.relationship)
            if not related or related.get("Id") is None:
                out[ref.relationship] = None
                continue
            nested = out.get(ref.relationship)
            if nested is None:
                nested = {
                    "attributes": {
                        "type": ref.relationship,
                        "url": f"/services/data/v{version}/sobjects/{ref.relationship}/"
                        f"{related['Id']}",
                    }
                }
                out[ref.relationship] = nested
            nested[ref.spec.name] = _json_value(related.get(ref.spec.name))
        return out

    # ---------------------------------------------------------------- describe and retrieve
    def _describe(self, sobject: str, version: str) -> _Response:
        if sobject.lower() == "opportunity":
            name, plural, prefix, fields = (
                "Opportunity",
                "Opportunities",
                "006",
                self._schema.opportunity,
            )
        elif sobject.lower() == "account":
            name, plural, prefix, fields = "Account", "Accounts", "001", self._schema.account
        else:
            return _errors(404, "NOT_FOUND", _NOT_FOUND_MESSAGE)
        base = f"/services/data/v{version}/sobjects/{name}"
        return _json_response(
            200,
            {
                "name": name,
                "label": name,
                "labelPlural": plural,
                "keyPrefix": prefix,
                "custom": False,
                "createable": True,
                "updateable": True,
                "deletable": True,
                "undeletable": True,
                "queryable": True,
                "retrieveable": True,
                "searchable": True,
                "triggerable": True,
                "replicateable": True,
                "layoutable": True,
                "childRelationships": [],
                "recordTypeInfos": [],
                "urls": {
                    "sobject": base,
                    "describe": f"{base}/describe",
                    "rowTemplate": f"{base}/{{ID}}",
                },
                "fields": [spec.describe() for spec in fields.values()],
            },
        )

    def _retrieve(self, record_id: str, fields: str | None, version: str) -> _Response:
        with self._lock:
            record = self._records.get(id18(record_id))
            purged = id18(record_id) in self._purged
        if purged or (record is not None and record["IsDeleted"]):
            return _errors(404, "ENTITY_IS_DELETED", "entity is deleted")
        if record is None:
            return _errors(404, "NOT_FOUND", _NOT_FOUND_MESSAGE)
        select: list[_FieldRef] = []
        names = [n.strip() for n in fields.split(",")] if fields else []
        for name in names or list(self._schema.opportunity):
            spec = self._schema.opportunity_field(name)
            if spec is None:
                return _errors(400, "INVALID_FIELD", _no_such_column(name, "Opportunity"))
            select.append(_FieldRef(None, spec))
        return _json_response(200, self._render(record, select, version))

    # ---------------------------------------------------------------- sObject Collections
    def _collections(self, body: bytes, user_id: str) -> _Response:
        try:
            payload = json.loads(body or b"null")
        except ValueError as exc:
            return _errors(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}")
        if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
            return _errors(400, "JSON_PARSER_ERROR", "The request body needs a records list")
        all_or_none = payload.get("allOrNone", False)
        if not isinstance(all_or_none, bool):
            return _errors(400, "JSON_PARSER_ERROR", "allOrNone must be a boolean")
        items: list[Any] = payload["records"]
        if len(items) > _MAX_COLLECTION:
            return _errors(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        parsed: list[tuple[str | None, dict[str, Any]]] = []
        for item in items:
            if not isinstance(item, dict):
                return _errors(400, "JSON_PARSER_ERROR", "Each record must be an object")
            attributes = item.get("attributes")
            sobject = attributes.get("type") if isinstance(attributes, dict) else None
            if not sobject:
                return _errors(
                    400,
                    "INVALID_TYPE",
                    "When using sObject Collections, each record must have an attributes map "
                    "with a type",
                )
            if str(sobject).lower() != "opportunity":
                return _errors(
                    400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported by the fake"
                )
            record_id: str | None = None
            values: dict[str, Any] = {}
            for key, value in item.items():
                if key == "attributes":
                    continue
                if key.lower() == "id":
                    record_id = value if isinstance(value, str) else None
                    continue
                spec = self._schema.opportunity_field(key)
                if spec is None:
                    return _errors(
                        400,
                        "INVALID_FIELD",
                        f"No such column '{key}' on sobject of type Opportunity",
                    )
                try:
                    values[spec.name] = _coerce(spec, value)
                except _BadValue as exc:
                    return _errors(400, "JSON_PARSER_ERROR", str(exc))
            parsed.append((record_id, values))

        results: list[dict[str, Any]] = []
        updates: list[tuple[Record, dict[str, Any]]] = []
        with self._lock:
            seen: set[str] = set()
            for record_id, values in parsed:
                outcome = self._check_update(record_id, values, seen)
                if isinstance(outcome, _Failure):
                    results.append(outcome.result)
                    continue
                updates.append((outcome, values))
                results.append({"id": outcome["Id"], "success": True, "errors": []})
            failed = any(not r["success"] for r in results)
            if all_or_none and failed:
                rolled_back = {
                    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "message": "Record rolled back because not all records were valid and the "
                    "request was using AllOrNone header",
                    "fields": [],
                }
                return _json_response(
                    200,
                    [
                        r if not r["success"] else {**r, "success": False, "errors": [rolled_back]}
                        for r in results
                    ],
                )
            if updates:
                stamp = self.clock.stamp()  # one DML: one stamp for the whole batch
                for old, values in updates:
                    new = self._changed(old, values, None, user_id, stamp)
                    new["SystemModstamp"] = new["LastModifiedDate"] = stamp
                    new["LastModifiedById"] = user_id
                    self._records[new["Id"]] = new
        return _json_response(200, results)

    def _check_update(
        self, record_id: str | None, values: Mapping[str, Any], seen: set[str]
    ) -> Record | _Failure:
        """The record to update, or the failed result for it."""

        def failure(
            code: str, message: str, fields: Sequence[str] = (), with_id: bool = True
        ) -> _Failure:
            result: dict[str, Any] = {
                "success": False,
                "errors": [{"statusCode": code, "message": message, "fields": list(fields)}],
            }
            if with_id and record_id is not None:
                result = {"id": record_id, **result}
            return _Failure(result)

        if not record_id:
            return failure("MISSING_ARGUMENT", "Id not specified in an update call", with_id=False)
        if not _ID_RE.fullmatch(record_id) or not record_id.startswith("006"):
            return failure(
                "MALFORMED_ID",
                f"Opportunity ID: id value of incorrect type: {record_id}",
                ["Id"],
                with_id=False,
            )
        record_id = id18(record_id)
        if record_id in seen:
            return failure("DUPLICATE_VALUE", f"Duplicate id in list: {record_id}")
        seen.add(record_id)
        record = self._records.get(record_id)
        if record_id in self._purged or (record is not None and record["IsDeleted"]):
            return failure("ENTITY_IS_DELETED", "entity is deleted")
        if record is None:
            return failure("NOT_FOUND", _NOT_FOUND_MESSAGE)
        rejection = self._rejections.get(record_id)
        if rejection is not None:
            if rejection.remaining is not None:
                rejection.remaining -= 1
                if rejection.remaining <= 0:
                    del self._rejections[record_id]
            self._fired.append(FiredFault("collections", rejection.status_code, record_id))
            return failure(rejection.status_code, rejection.message, rejection.fields)
        read_only = [name for name in values if not self._schema.opportunity[name].updateable]
        if read_only:
            return failure(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(read_only)}. Please check the "
                "security settings of this field and verify that it is read/write for your "
                "profile or permission set.",
                read_only,
            )
        missing = [
            name
            for name, value in values.items()
            if value is None and not self._schema.opportunity[name].nillable
        ]
        if missing:
            return failure(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        for name, value in values.items():
            spec = self._schema.opportunity[name]
            if isinstance(value, str) and spec.length and len(value) > spec.length:
                return failure(
                    "STRING_TOO_LONG",
                    f"{spec.label}: data value too large: {value[:40]} (max length={spec.length})",
                    [name],
                )
        return record


def _copy_record(record: Record) -> Record:
    copy = dict(record)
    if isinstance(copy.get("Account"), dict):
        copy["Account"] = dict(copy["Account"])
    return copy


def _jwt_claims(assertion: str) -> dict[str, Any] | None:
    """The payload of a syntactically valid JWT (header and payload JSON objects), else None."""
    parts = assertion.split(".")
    if len(parts) != 3 or not all(re.fullmatch(r"[A-Za-z0-9_-]*", p) for p in parts):
        return None
    try:
        header, claims = (
            json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2]
        )
    except ValueError:
        return None
    if not isinstance(header, dict) or "alg" not in header or not isinstance(claims, dict):
        return None
    return claims


def _soap_fault(status: int, code: str, message: str) -> _Response:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><soapenv:Fault>"
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return _Response(status, xml.encode(), "text/xml;charset=UTF-8")


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fake: FakeSalesforce) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # headers and body leave in one write (no Nagle / delayed-ACK stalls)
    server_version = "FakeSalesforce/1.0"
    sys_version = ""

    @property
    def fake(self) -> FakeSalesforce:
        return cast(_Server, self.server).fake

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cast(_Server, self.server).track(self.connection, True)

    def finish(self) -> None:
        cast(_Server, self.server).track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def date_time_string(self, timestamp: float | None = None) -> str:
        return formatdate(self.fake.clock.now().timestamp(), usegmt=True)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_PATCH(self) -> None:
        self._answer("PATCH")

    def do_PUT(self) -> None:
        self._answer("PUT")

    def do_DELETE(self) -> None:
        self._answer("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, method: str) -> None:
        fake = self.fake
        body = self._read_body()
        headers = {key.lower(): value for key, value in self.headers.items()}
        try:
            response = fake._handle(method, self.path, headers, body)
        except Exception:
            detail = traceback.format_exc()
            with fake._lock:
                fake._internal_errors.append(detail)
            print(f"fake_salesforce: internal error\n{detail}", file=sys.stderr)
            response = _errors(500, "UNKNOWN_EXCEPTION", "fake Salesforce bug: " + detail[-300:])
        if response.disconnect:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(response.body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True


def _rewriting_session(base_url: str) -> requests.Session:
    import requests

    class RewritingSession(requests.Session):
        """Sends every request to the fake, whatever host or scheme simple-salesforce built."""

        def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            parts = urlsplit(request.url or "")
            request.url = base_url + parts.path + (f"?{parts.query}" if parts.query else "")
            kwargs["verify"] = False
            return super().send(request, **kwargs)

    session = RewritingSession()
    session.trust_env = False  # no proxies for loopback
    return session


# --------------------------------------------------------------------------------------------
# Sample data and the command line
# --------------------------------------------------------------------------------------------

_SAMPLE_ACCOUNTS = (
    ("Acme Corp", "United States", "North America"),
    ("Globex", "Germany", "EMEA"),
    ("Initech", "United States", "North America"),
    ("Umbrella", "United Kingdom", "EMEA"),
    ("Société Générale de Tests", "France", "EMEA"),
    ("Tyrell Corporation", "Japan", "APAC"),
    ("Cyberdyne Systems", "Canada", "North America"),
    ("Hooli", "United States", "North America"),
    ("Soylent", "Brazil", "LATAM"),
    ("Wonka Industries", "Switzerland", "EMEA"),
    ("Stark Industries", "United States", "North America"),
    ("Wayne Enterprises", "Australia", "APAC"),
)


def sample_opportunities(
    count: int, *, seed: int = 0, today: date | None = None
) -> list[dict[str, Any]]:
    """``count`` plausible opportunities for ``add_opportunities`` (deterministic per seed),
    using the default custom fields."""
    rng = random.Random(seed)
    today = today or date.today()
    kinds = ("New Business", "Renewal", "Expansion", "Upsell")
    out: list[dict[str, Any]] = []
    for number in range(1, count + 1):
        account, country, region = rng.choice(_SAMPLE_ACCOUNTS)
        stage = rng.choices(_STAGES, weights=(8, 8, 6, 6, 5, 5, 8, 8, 4, 3))[0]
        out.append(
            {
                "Name": f"{account} — {rng.choice(kinds)} {number:05d}",
                "StageName": stage,
                "Amount": float(rng.randrange(5_000, 500_000, 500)),
                "CloseDate": today + timedelta(days=rng.randrange(-30, 180)),
                "CurrencyIsoCode": "USD",
                "Account": {"Name": account, "BillingCountry": country},
                "Region__c": region,
                "Discount__c": float(rng.choice((0, 5, 8, 10, 12, 15, 20, 25, 30, 40))),
                "Payment_Terms_Days__c": float(rng.choice((30, 30, 45, 60, 90))),
                "Contract_Months__c": float(rng.choice((12, 12, 24, 36, 36))),
                "Support_Level__c": rng.choice(("Standard", "Standard", "Premium", "Platinum")),
                "Uncapped_Liability__c": rng.random() < 0.1,
                "Liability_Cap_Multiple__c": rng.choice((1.0, 1.0, 1.0, 1.5, 2.0, 3.0)),
            }
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.fake_salesforce``: serve a fake org until interrupted."""
    parser = argparse.ArgumentParser(description="A local fake Salesforce org.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-version", default="59.0")
    parser.add_argument("--opportunities", type=int, default=0, help="sample records to load")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--daily-limit", type=int, default=100_000)
    args = parser.parse_args(argv)
    fake = FakeSalesforce(
        args.api_version,
        host=args.host,
        port=args.port,
        batch_size=args.batch_size,
        daily_limit=args.daily_limit,
    )
    if args.opportunities:
        fake.add_opportunities(sample_opportunities(args.opportunities, seed=args.seed))
    print(f"FAKE_SALESFORCE_URL={fake.url}", flush=True)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    done.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
