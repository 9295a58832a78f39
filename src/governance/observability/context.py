"""The request id of the work in hand, in a context variable: set by the access middleware for a
request, by the worker for a job a request queued, and read by every log line (see
`governance.logs`) and by the outboxes, which store it with the job.

Context variables follow the work into threads started with `run_in_threadpool` and into tasks,
so a line logged deep inside a service still names the request that caused it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("governance_request_id", default=None)

# What an incoming X-Request-ID may hold to be kept: a UUID, a trace id, a proxy's token. Anything
# else (too long, spaces, quotes, control characters) is replaced, so a log line cannot be forged.
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,99}")
MAX_LENGTH = 100


def current_request_id() -> str | None:
    """The request id of the work in hand, if any."""
    return request_id_var.get()


def new_request_id() -> str:
    """A fresh request id (32 hex digits)."""
    return uuid.uuid4().hex


def accepted_request_id(incoming: str | None) -> str:
    """The incoming X-Request-ID when it is sane, else a fresh one."""
    if incoming and _SANE.fullmatch(incoming):
        return incoming
    return new_request_id()


@contextmanager
def request_id_bound(request_id: str | None) -> Iterator[None]:
    """Log lines within carry `request_id` (a job's, in the worker); None leaves it unset."""
    token = request_id_var.set(request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)
