"""What every router shares: the route class that reads requests strictly, the app's
per-process state as typed dependencies, path ids, If-Match headers and ETags.

Routers take these as parameters (`settings: AppSettings`) instead of reading
`request.app.state`, so a route's signature says what it uses.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from fastapi import Depends, Header, Path, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from governance import strict_json
from governance.db import Database
from governance.errors import (
    JSON_ONLY,
    InvalidInput,
    PreconditionFailed,
    PreconditionRequired,
    UnsupportedMediaType,
    is_json,
)
from governance.number_text import parse_decimal
from governance.pagination import MAX_ID
from governance.playbooks.registry import PlaybookRegistry
from governance.problems import Problem
from governance.settings import Settings


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _registry(request: Request) -> PlaybookRegistry:
    registry: PlaybookRegistry = request.app.state.registry
    return registry


def _database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


AppSettings = Annotated[Settings, Depends(_settings)]
"""The settings the app was built with."""
Registry = Annotated[PlaybookRegistry, Depends(_registry)]
"""The process's cache of compiled, published playbook versions."""
AppDatabase = Annotated[Database, Depends(_database)]
"""The database, for routes that open their own units of work (batches, threads)."""


def registry_of(request: Request) -> PlaybookRegistry:
    """The registry, for the few routes that bypass FastAPI's dependencies for speed."""
    return _registry(request)


def database_of(request: Request) -> Database:
    """The database, for routes that read their body by hand before opening a unit of work."""
    return _database(request)


def require_json(request: Request) -> None:
    """415 unless the body is declared JSON, for routes that read their body by hand (FastAPI's
    own body parsing answers the same through the validation error handler)."""
    if not is_json(request.headers.get("content-type")):
        raise UnsupportedMediaType(JSON_ONLY)


ExternalIdPath = Annotated[
    str,
    Path(
        pattern=r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$",
        description="The Salesforce Opportunity Id (15 or 18 characters).",
    ),
]
RequestId = Annotated[int, Path(ge=1, le=MAX_ID)]

# One header, described for what each resource calls its version.
RequestIfMatch = Annotated[
    str | None,
    Header(
        max_length=200,
        description="Required: the request's ETag, as read; without it 428, a stale one 412.",
    ),
]
PreparationIfMatch = Annotated[
    str | None,
    Header(
        max_length=200,
        description="The preparation's ETag; a stale one gets 412.",
    ),
]
VersionIfMatch = Annotated[
    str | None,
    Header(
        max_length=200,
        description="The version's etag; a stale one gets 412.",
    ),
]


def etag(version: int) -> str:
    """The strong ETag of a row's lock version."""
    return f'"{version}"'


def required_if_match(value: str | None) -> int:
    """The version an If-Match names, which the caller must have read: no header, or `*`
    ("whatever is current"), is 428, so no one decides what they never looked at."""
    if value is None or value.strip() == "*":
        raise PreconditionRequired(
            "send the ETag of the version you read (GET it first) as If-Match"
            + ("; `*` does not say which version you read" if value is not None else "")
        )
    version = parse_if_match(value)
    assert version is not None
    return version


def parse_if_match(value: str | None) -> int | None:
    """The version an If-Match names; `*` or no header means "whatever is current"."""
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not re.fullmatch(r"[0-9]{1,10}", text):
        raise PreconditionFailed(f"If-Match {value!r} is not an ETag this API issued")
    return int(text)


# --- the door every route shares ---------------------------------------------------------------

NumberKind = Literal["integer", "decimal"]
_INTEGER = re.compile(r"[-+]?[0-9]{1,30}")  # `[0-9]`: `\d` and int() take any Unicode digit


class StrictRequest(Request):
    """A request whose JSON body is read by `strict_json` (FastAPI reads the body through
    `json()`; the route reads it first, so a refusal is a 422 and not FastAPI's generic 400)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json.loads(await self.body())
        return self._json


class StrictRoute(APIRoute):
    """The route class of every router: before FastAPI parses anything, a JSON body is read
    by `strict_json` (duplicate keys, NUL characters, non-finite or oversized numbers are 422s
    naming the field), query and path parameters may not hold a NUL, and numeric ones are
    read as `governance.number_text` reads numbers ("1_0", " 5", "١" are refused, not 10, 5
    and 1). Routes that read their body by hand (`POST /v1/checks`, the import) call
    `strict_json` themselves."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        numbers = dict(_number_parameters(self.dependant))
        known = frozenset(_query_names(self.dependant))
        reads_json = self.body_field is not None

        async def strict(request: Request) -> Response:
            check_parameters(request, numbers, known)
            if reads_json and _is_json(request.headers.get("content-type")):
                request = StrictRequest(request.scope, request.receive)
                if await request.body():
                    await read_json(request)  # kept for FastAPI, which reads it via `json()`
            return await handler(request)

        return strict


async def read_json(request: Request) -> Any:
    """The request's JSON body, read strictly; a body that is not JSON is a 400 as FastAPI
    gives it, a refused value a 422 naming it."""
    try:
        if isinstance(request, StrictRequest):
            return await request.json()
        return strict_json.loads(await request.body())
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", exc.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": exc.msg},
                }
            ]
        ) from None


def check_parameters(
    request: Request,
    numbers: dict[tuple[str, str], NumberKind],
    known: frozenset[str] | None = None,
) -> None:
    """422 for a NUL in any query or path parameter, for a numeric one not written as a
    number, and for a query parameter the route does not take (`known`): a misspelt filter
    (`regoin=EMEA`, `actr=…`) would otherwise answer for everything, which reads as a
    plausible, wrong answer."""
    if not request.scope.get("query_string") and not request.scope.get("path_params"):
        return  # the common case (`POST /v1/checks`): nothing to look at
    problems: list[Problem] = []
    for where, items in (
        ("query", request.query_params.multi_items()),
        ("path", request.path_params.items()),
    ):
        for name, raw in items:
            # A path convertor (`{request_id:int}`) has already made its value a number.
            value = raw if isinstance(raw, str) else str(raw)
            if strict_json.NUL in name or strict_json.NUL in value:
                shown = name.replace(strict_json.NUL, "\\u0000")
                problems.append(Problem((where, shown), strict_json.NUL_MESSAGE))
                continue
            if where == "query" and known is not None and name not in known:
                if not any(p.loc == (where, name) for p in problems):  # repeated: said once
                    problems.append(Problem((where, name), "is not a parameter of this route"))
                continue
            kind = numbers.get((where, name))
            if kind == "integer" and not _INTEGER.fullmatch(value):
                problems.append(
                    Problem((where, name), f"{value[:40]!r} is not an integer: write ASCII digits")
                )
            elif kind == "decimal":
                try:
                    parse_decimal(value)
                except ValueError as exc:
                    problems.append(Problem((where, name), str(exc)))
    if problems:
        unknown = all(p.message == "is not a parameter of this route" for p in problems)
        raise InvalidInput("unknown query parameter" if unknown else None, errors=problems)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route and its dependencies take."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _number_parameters(dependant: Dependant) -> dict[tuple[str, str], NumberKind]:
    """The numeric query and path parameters of a route and its dependencies."""
    found: dict[tuple[str, str], NumberKind] = {}
    for where, fields in (("query", dependant.query_params), ("path", dependant.path_params)):
        for field in fields:
            kind = _number_kind(field.field_info.annotation)
            if kind is not None:
                found[(where, field.alias)] = kind
    for sub in dependant.dependencies:
        found.update(_number_parameters(sub))
    return found


def _number_kind(annotation: Any) -> NumberKind | None:
    origin = get_origin(annotation)
    if origin is Annotated or origin is list:
        return _number_kind(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        kinds = {_number_kind(arg) for arg in get_args(annotation)} - {None}
        return kinds.pop() if len(kinds) == 1 else None
    if annotation is int:
        return "integer"
    if annotation is float or annotation is Decimal:
        return "decimal"
    return None
