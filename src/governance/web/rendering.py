"""Templates and the one helper pages answer with: `render_page`.

`render_page` returns the whole page, or only its `content` block when htmx asks for it (the
`HX-Request` header), so a page and its htmx refresh are one template. `render_partial` answers
with a fragment template of its own (a card, the simulator's result).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from governance import __version__
from governance.auth.schemas import Role

PACKAGE = Path(__file__).resolve().parent
TEMPLATES = PACKAGE / "templates"
STATIC = PACKAGE / "static"

# Who sees which part of the console (the API enforces the same on every call).
DECIDERS = frozenset({Role.admin, Role.leadership, Role.approver})


def _fingerprints() -> dict[str, str]:
    """A short content hash per static file, for cache-busting URLs."""
    out = {}
    for path in STATIC.rglob("*"):
        if path.is_file():
            out[path.relative_to(STATIC).as_posix()] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()[:12]
    return out


_FINGERPRINTS = _fingerprints()


def static_url(path: str) -> str:
    """The URL of a static file, with its content hash so browsers may cache it for long."""
    fingerprint = _FINGERPRINTS.get(path)
    if fingerprint is None:
        raise LookupError(f"no static file {path!r}")
    return f"/static/{path}?v={fingerprint}"


# --- formatting ------------------------------------------------------------------------------


def plain_number(value: object) -> str:
    """A decimal as people write it: no exponent, no trailing zeros ("18.50" → "18.5")."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else ("yes" if value else "no")
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if not number.is_finite():
        return str(value)
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def term_value(value: object, unit: str | None = None, kind: str = "number") -> str:
    """A term's value with its unit: "18 %", "30 days", "premium", "yes"."""
    if value is None:
        return "not stated"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind != "number":
        return str(value).replace("_", " ")
    text = plain_number(value)
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def attribute_rows(attributes: Mapping[str, object]) -> list[tuple[str, str]]:
    """A deal's attributes as (name, value) rows: amounts as people write them
    (PostgreSQL keeps 240000.00000000), unset ones left out."""
    return [
        (label(name).capitalize(), plain_number(value) if name == "amount" else str(value))
        for name, value in attributes.items()
        if value is not None
    ]


def label(text: object) -> str:
    """A key or status as words: "needs_approval" → "needs approval"."""
    return str(text).replace("_", " ")


def when(value: object) -> str:
    """A timestamp in UTC, to the minute."""
    if value is None:
        return "—"
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def actor(text: object) -> str:
    """An audit actor as people know it: `key:7:fiona` → `fiona`; the Salesforce package acting
    for a rep, `key:3:salesforce for sf:005…` → `Salesforce user 005… (via salesforce)`."""
    if text is None:
        return "—"
    who, _, user = str(text).partition(" for sf:")
    if user:
        return f"Salesforce user {user} (via {actor(who)})"
    kind, _, rest = str(text).partition(":")
    if kind == "key" and ":" in rest:
        return rest.partition(":")[2]
    return str(text)


def duration(seconds: float) -> str:
    """A span for people: "45 min", "5 h 20 min", "3 d 4 h"."""
    minutes = max(int(seconds // 60), 0)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(static=static_url, version=__version__, DECIDERS=DECIDERS)
    env.filters.update(
        number=plain_number,
        term_value=term_value,
        label=label,
        when=when,
        duration=duration,
        actor=actor,
    )
    return env


ENV = _env()


def _context(request: Request, context: Mapping[str, Any]) -> dict[str, Any]:
    viewer = getattr(request.state, "viewer", None)
    return {
        "request": request,
        "viewer": viewer,
        "csrf_token": viewer.csrf_token if viewer is not None else "",
        "path": request.url.path,
        **context,
    }


OUTCOME_HEADER = "X-Governance-Status"


def _response(
    request: Request, html: str, status_code: int, headers: Mapping[str, str] | None
) -> HTMLResponse:
    headers = dict(headers or {})
    if 400 <= status_code < 500 and request.headers.get("hx-request") == "true":
        # A refusal htmx swaps in (a card with a stale-version message, a field's error) is a
        # page answering as designed: 200, with the refusal's status in a header. A 4xx would
        # also be logged by the browser as a failed request in the console.
        headers[OUTCOME_HEADER] = str(status_code)
        status_code = 200
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    # Pages show deals and decisions: never stored by a shared cache or the browser's disk.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "HX-Request, Cookie"
    return response


def wants_fragment(request: Request) -> bool:
    """htmx asked (and not for a whole boosted page)."""
    return (
        request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"
    )


def render_page(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """The whole page, or only its `content` block when htmx asks for it."""
    compiled = ENV.get_template(template)
    values = _context(request, context)
    if wants_fragment(request):
        block = compiled.blocks["content"]
        html = "".join(block(compiled.new_context(values)))
    else:
        html = compiled.render(values)
    return _response(request, html, status_code, headers)


def render_partial(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A fragment template, as htmx swaps it in (also embedded by full pages)."""
    html = ENV.get_template(template).render(_context(request, context))
    return _response(request, html, status_code, headers)
