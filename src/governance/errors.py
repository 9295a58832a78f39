"""The error hierarchy and the one handler that renders RFC 9457 problem+json."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from governance.problems import Problem, format_loc

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://governance.example/problems/"


class FieldProblem(BaseModel):
    """One offending field: its path in the request body and what is wrong with it."""

    field: str
    loc: list[str | int]
    message: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, as every error response of this API."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldProblem] | None = None


class GovernanceError(Exception):
    """Base for expected refusals; each subclass is one HTTP status and problem type."""

    status_code = 400
    title = "Bad request"
    slug = "bad-request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[Problem] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers


class Unauthorized(GovernanceError):
    status_code = 401
    title = "Missing or invalid API key"
    slug = "unauthorized"


class Forbidden(GovernanceError):
    status_code = 403
    title = "Not allowed for this key"
    slug = "forbidden"


class NotFound(GovernanceError):
    status_code = 404
    title = "Not found"
    slug = "not-found"


class Conflict(GovernanceError):
    status_code = 409
    title = "Conflict with the current state"
    slug = "conflict"


class PreconditionFailed(GovernanceError):
    status_code = 412
    title = "The resource changed since you read it"
    slug = "precondition-failed"


class ContentTooLarge(GovernanceError):
    status_code = 413
    title = "Request body too large"
    slug = "content-too-large"


class PreconditionRequired(GovernanceError):
    status_code = 428
    title = "Send the version you read in If-Match"
    slug = "precondition-required"


class UnsupportedMediaType(GovernanceError):
    status_code = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"


JSON_ONLY = "send the body as JSON, with `Content-Type: application/json`"


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type names JSON: `application/json` or `application/…+json`."""
    media = (content_type or "").partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class InvalidInput(GovernanceError):
    status_code = 422
    title = "Invalid request"
    slug = "invalid-request"


class InvalidPlaybook(InvalidInput):
    title = "Invalid playbook document"
    slug = "invalid-playbook"


class InvalidDeal(InvalidInput):
    title = "The deal does not fit the playbook"
    slug = "invalid-deal"


def problem_response(
    status: int,
    title: str,
    slug: str,
    detail: str | None = None,
    errors: Sequence[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ProblemDetails(
        type=TYPE_BASE + slug,
        title=title,
        status=status,
        detail=detail,
        errors=list(errors) if errors else None,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


# Pydantic puts the tag of a discriminated union in the path (`terms.0.number.band`); users
# think of `terms[0].band`, so the tags of the playbook document's unions are dropped.
UNION_TAGS = frozenset({"number", "choice", "flag"})


def clean_loc(loc: Sequence[Any]) -> list[str | int]:
    """A pydantic location as the user's field path: no union tags or type markers."""
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, int):
            out.append(part)
            continue
        text = str(part)
        if "[" in text or text.startswith("function-"):
            continue
        if text in UNION_TAGS and out and isinstance(out[-1], int):
            continue
        out.append(text)
    return out


def _field_problem(loc: Sequence[Any], message: str) -> FieldProblem:
    clean = clean_loc(loc)
    return FieldProblem(field=format_loc(tuple(clean)) or "body", loc=clean, message=message)


def _problem_parts(exc: GovernanceError) -> tuple[str | None, list[FieldProblem]]:
    errors = [_field_problem(p.loc, p.message) for p in exc.errors]
    detail = exc.detail
    if detail is None and errors:
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    return detail, errors


def problem_body(exc: GovernanceError) -> dict[str, Any]:
    """The problem+json body for a refusal, for answers that carry several (batch results)."""
    detail, errors = _problem_parts(exc)
    return ProblemDetails(
        type=TYPE_BASE + exc.slug,
        title=exc.title,
        status=exc.status_code,
        detail=detail,
        errors=errors or None,
    ).model_dump(exclude_none=True)


def error_response(exc: GovernanceError) -> JSONResponse:
    """The problem+json response for a refusal (also an ASGI app, for middleware to answer)."""
    detail, errors = _problem_parts(exc)
    return problem_response(
        exc.status_code, exc.title, exc.slug, detail, errors, headers=exc.headers
    )


async def _governance_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GovernanceError)
    return error_response(exc)


def _carries_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return (length is not None and length != "0") or "transfer-encoding" in request.headers


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if any(err.get("type") == "json_invalid" for err in exc.errors()):
        return problem_response(400, "Bad request", "bad-request", "the body is not valid JSON")
    # FastAPI hands a body it was not told is JSON to validation as raw bytes, which fails as
    # "not an object": the client's mistake is the media type, so say that.
    body_errors = any(tuple(err.get("loc", ()))[:1] == ("body",) for err in exc.errors())
    if body_errors and _carries_body(request) and not is_json(request.headers.get("content-type")):
        return error_response(UnsupportedMediaType(JSON_ONLY))
    errors = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        # Drop "body"/"query" and pydantic's union-branch tags so the path is the user's field.
        if loc and loc[0] in ("body", "query", "path", "header"):
            where = loc[0]
            loc = loc[1:]
            if where != "body":
                loc = [where, *loc]
        errors.append(_field_problem(loc, str(err.get("msg", "invalid"))))
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    return problem_response(422, "Invalid request", "invalid-request", detail, errors)


def _allowed_methods(request: Request) -> str | None:
    """Every method the API documents for this path (Starlette names only one route's)."""
    app = request.app
    patterns: list[tuple[re.Pattern[str], str]] | None = getattr(app.state, "allow_patterns", None)
    if patterns is None:
        patterns = []
        # Literal paths first: `/v1/approvals/decisions` is not `/v1/approvals/{request_id}`.
        paths = sorted(app.openapi()["paths"].items(), key=lambda item: item[0].count("{"))
        for path, operations in paths:
            regex = "^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$"
            methods = ", ".join(sorted(m.upper() for m in operations))
            patterns.append((re.compile(regex), methods))
        app.state.allow_patterns = patterns
    for pattern, methods in patterns:
        if pattern.match(request.url.path):
            return methods
    return None


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    headers = dict(exc.headers) if exc.headers else {}
    detail = None
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        if allowed:
            headers["Allow"] = allowed
            detail = f"{request.method} is not a method of this path; it has {allowed}"
    return problem_response(
        exc.status_code,
        str(exc.detail) if exc.detail else "HTTP error",
        slug,
        detail,
        headers=headers or None,
    )


def _database_refusal(
    status: int, title: str, slug: str, detail: str
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """A handler for a database refusal that validation cannot foresee."""

    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        log.info("%s: %s", slug, exc)
        return problem_response(status, title, slug, detail)

    return handler


# A unique key taken by a concurrent request between our read and our write.
_integrity_error = _database_refusal(
    409,
    "Conflict with a concurrent change",
    "conflict",
    "another request changed the same record at the same time; read it again and retry",
)
# A value the database cannot store (a NUL character in text, say) that validation let by.
_data_error = _database_refusal(
    422,
    "Invalid request",
    "invalid-request",
    "a value cannot be stored (for example a NUL character)",
)


async def _unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem_response(500, "Internal server error", "internal-error", "This is a bug.")


def install_error_handlers(app: FastAPI) -> None:
    """Every error the app can answer with becomes problem+json."""
    app.add_exception_handler(GovernanceError, _governance_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(Exception, _unexpected_error)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting a route's problem+json answers in the OpenAPI file."""
    descriptions = {
        400: "Bad request",
        401: "Missing or invalid API key",
        403: "The key's role may not do this",
        404: "Not found",
        409: "Conflicts with the current state",
        412: "If-Match does not match the current version",
        413: "The request body is larger than this route accepts",
        415: "Unsupported media type",
        428: "If-Match is required: send the ETag you read",
        422: "Invalid request: `errors` names each offending field",
    }
    return {
        s: {
            "description": descriptions[s],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
        }
        for s in statuses
    }
