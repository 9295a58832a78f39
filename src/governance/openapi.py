"""Print the app's OpenAPI document: `python -m governance.openapi > openapi/openapi.json`."""

from __future__ import annotations

import json
import sys
from typing import Any

from governance.app import create_app
from governance.settings import Settings


def document() -> dict[str, Any]:
    """The OpenAPI document, independent of any database or environment."""
    return create_app(Settings(database_url="sqlite://")).openapi()


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
