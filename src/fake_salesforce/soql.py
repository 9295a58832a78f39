"""SOQL: the subset the sync sends (tokenizer, parser to predicates, ORDER BY sorting)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from fake_salesforce.ids import id18, parse_datetime
from fake_salesforce.schema import (
    ID_TYPES,
    NUMBER_TYPES,
    TEXT_TYPES,
    FieldSpec,
    Record,
    Schema,
    no_such_column,
)


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


Predicate = Callable[[Record], bool]


@dataclass(frozen=True)
class FieldRef:
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
    if spec.type in TEXT_TYPES:
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
class Query:
    sobject: str
    count_only: bool
    select: list[FieldRef]
    where: Predicate | None
    order: list[tuple[FieldRef, bool, bool]]  # field, descending, nulls first
    limit: int | None
    offset: int


class _Parser:
    def __init__(self, soql: str, schema: Schema) -> None:
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
    def parse(self) -> Query:
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
        select: list[FieldRef] = []
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
        order: list[tuple[FieldRef, bool, bool]] = []
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
        return Query("Opportunity", count_only, select, where, order, limit, offset)

    def count_clause(self, word: str) -> int | None:
        if not self.at(word):
            return None
        self.take()
        tok = self.take()
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.fail(tok)
        return int(tok.text)

    def field(self, tok: _Tok) -> FieldRef:
        parts = tok.text.split(".")
        if len(parts) == 1:
            spec = self.schema.opportunity_field(parts[0])
            if spec is None:
                raise self.fail(tok, "INVALID_FIELD", no_such_column(parts[0], "Opportunity"))
            return FieldRef(None, spec)
        if len(parts) == 2 and parts[0].lower() == "account":
            spec = self.schema.account_field(parts[1])
            if spec is None:
                raise self.fail(tok, "INVALID_FIELD", no_such_column(parts[1], "Account"))
            return FieldRef("Account", spec)
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
            if pattern.kind != "string" or ref.spec.type not in TEXT_TYPES:
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

    def in_list(self, ref: FieldRef) -> Predicate:
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

    def literal(self, ref: FieldRef) -> Any:
        tok = self.take()
        if tok.upper == "NULL":
            return None
        spec = ref.spec
        kind = spec.type
        expected = {
            "datetime": "datetime",
            "date": "date",
            "boolean": "boolean",
        }.get(kind, "number" if kind in NUMBER_TYPES else "string")
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
        if kind in ID_TYPES:
            return id18(tok.value) if len(tok.value) == 15 else tok.value
        if kind == "int":
            return int(tok.value)
        return tok.value

    def compare(self, ref: FieldRef, op: str, value: Any, tok: _Tok) -> Predicate:
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


def parse_soql(soql: str, schema: Schema) -> Query:
    return _Parser(soql, schema).parse()


def sort_rows(rows: list[Record], order: Sequence[tuple[FieldRef, bool, bool]]) -> None:
    """Sort in place by the ORDER BY list (stable sorts, last key first)."""
    for ref, descending, nulls_first in reversed(order):
        norm = _normalizer(ref.spec)
        # With reverse=True the flag order flips, so pick the flag that lands nulls right.
        null_flag = 0 if nulls_first != descending else 2

        def key(
            record: Record,
            ref: FieldRef = ref,
            norm: Callable[[Any], Any] = norm,
            null_flag: int = null_flag,
        ) -> tuple[int, Any]:
            value = ref.get(record)
            return (null_flag, None) if value is None else (1, norm(value))

        rows.sort(key=key, reverse=descending)
