"""Logging for the served and worker processes: no secret reaches a log line.

Secrets travel where logs look: Salesforce Outbound Messages carry theirs in the query string
(`?secret=`), and a careless client may put a key or token there too. A filter on every handler
rewrites each record before it is formatted: the values of query parameters named like a
secret, bearer tokens, API keys (`gov_…`) and the configured secrets themselves become
`[REDACTED]`, in the message, its arguments, its extra fields and its traceback.

Lines are JSON objects in production and readable text in development (`log_format`, which
follows `environment` unless set), and each names the request it belongs to: the request id in
`governance.observability.context`, set for a request by the access middleware and for a job
by the worker.
"""

from __future__ import annotations

import copy
import json
import logging
import logging.config
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr
from uvicorn.config import LOGGING_CONFIG

from governance.observability.context import current_request_id
from governance.settings import Settings

REDACTED = "[REDACTED]"
# A query parameter whose name says it holds a secret: `secret=`, `api_key=`, `access_token=`,
# `password=`, `X-Amz-Signature=`, `sig=`, `auth=`, `client_credential=`…
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:[^=&;#\s]*(?:secret|token|key|passw|pwd|signature|credential|auth)"
    r"[^=&;#\s]*|sig)=)[^&;#\s\"']*"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")
_API_KEY = re.compile(r"\bgov_[A-Za-z0-9_\-]{6,}")
# Configured secrets shorter than this are too likely to occur by chance to be searched for.
_MIN_LITERAL = 8


def redact(text: str, literals: Iterable[str] = ()) -> str:
    """`text` with every secret it holds replaced by `[REDACTED]`."""
    for literal in literals:
        if literal in text:
            text = text.replace(literal, REDACTED)
    text = _QUERY_SECRET.sub(rf"\g<1>{REDACTED}", text)
    text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    return _API_KEY.sub(REDACTED, text)


class RedactSecrets(logging.Filter):
    """A handler filter that redacts each record (see the module docstring)."""

    def __init__(self, literals: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is replaced whole.
        long_enough = {s for s in literals if len(s) >= _MIN_LITERAL}
        self.literals = tuple(sorted(long_enough, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        clean = self._clean
        if isinstance(record.msg, str):
            record.msg = clean(record.msg)
        if isinstance(record.args, tuple):
            # Element by element, so formatters that unpack the arguments (uvicorn's access
            # log) still find them.
            record.args = tuple(clean(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: clean(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if record.args and record.name != "uvicorn.access":
            # An argument that is not a string (an exception, a URL object) may still print one.
            message = record.getMessage()
            cleaned = clean(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, name, clean(value))  # an `extra=` field: a path, an error
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = clean(record.exc_text)
        if record.stack_info:
            record.stack_info = clean(record.stack_info)
        return True

    def _clean(self, text: str) -> str:
        return redact(text, self.literals)


# What every LogRecord holds; anything else on a record came from `extra=` (uvicorn's
# `color_message` repeats the message with terminal colours).
_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}
)


class RequestIdFilter(logging.Filter):
    """Stamp each record with the request id of the work in hand (`-` when there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id() or "-"
        return True


class LineFormatter(logging.Formatter):
    """One line per record: a JSON object (`json=True`, production) or readable text.

    Fields: `ts` (UTC, ISO 8601), `level`, `logger`, `message`, `request_id`, the record's extra
    fields (the access line's `method`, `route`, `status`, …) and `exception` when there is one.
    """

    def __init__(self, json_lines: bool = True) -> None:
        super().__init__()
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        extra = {
            k: v
            for k, v in vars(record).items()
            if k not in _RECORD_FIELDS and k != "request_id" and not k.startswith("_")
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        ts = self.formatTime(record)
        request_id = getattr(record, "request_id", None) or "-"
        if self.json_lines:
            line: dict[str, Any] = {
                "ts": ts,
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": message,
                "request_id": request_id,
                **extra,
            }
            if record.exc_text:
                line["exception"] = record.exc_text
            return json.dumps(line, default=str, ensure_ascii=False)
        text = f"{ts} {record.levelname:<7} [{request_id}] {record.name}: {message}"
        if extra:
            text += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        if record.exc_text:
            text += "\n" + record.exc_text
        return text

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_lines(settings: Settings) -> bool:
    """Whether log lines are JSON: `log_format`, else JSON everywhere but in development."""
    if settings.log_format is not None:
        return settings.log_format == "json"
    return settings.environment != "development"


def configured_secrets(settings: Settings) -> list[str]:
    """The secret values in the settings, to be redacted wherever they appear."""
    sf = settings.salesforce
    values: list[SecretStr | None] = [
        settings.bootstrap_admin_key,
        sf.outbound_message_secret,
        sf.consumer_secret,
        sf.password,
        sf.security_token,
    ]
    return [v.get_secret_value() for v in values if v is not None]


def log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's logging configuration, with the redaction on every handler and the app's own
    loggers (`governance.*`, SQLAlchemy, httpx) sent through the same handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {
        "request_id": {"()": RequestIdFilter},
        "redact": {"()": RedactSecrets, "literals": configured_secrets(settings)},
    }
    line = {"()": LineFormatter, "json_lines": json_lines(settings)}
    config["formatters"] = {"default": line, "access": line}
    for handler in config["handlers"].values():
        handler["filters"] = ["request_id", "redact"]
    config["root"] = {"handlers": ["default"], "level": settings.log_level.upper()}
    return config


def configure_logging(settings: Settings) -> None:
    """Log as `governance serve` does (format, request ids, redaction), for the other commands."""
    logging.config.dictConfig(log_config(settings))
