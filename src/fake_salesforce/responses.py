"""HTTP responses as the org's handlers build them, and Salesforce's JSON error list."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)
    disconnect: bool = False


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(status, body, headers=dict(headers or {}))


def error_response(status: int, error_code: str, message: str) -> Response:
    return json_response(status, [{"message": message, "errorCode": error_code}])


NOT_FOUND_MESSAGE = "The requested resource does not exist"
