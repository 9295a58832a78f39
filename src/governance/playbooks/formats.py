"""Playbook documents as YAML or JSON text, for import and export."""

from __future__ import annotations

import json
from decimal import Decimal
from enum import Enum
from typing import Any

import yaml
from pydantic import ValidationError

from governance import strict_json
from governance.engine.document import PlaybookDocument
from governance.errors import InvalidInput, InvalidPlaybook, UnsupportedMediaType
from governance.problems import Problem

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
JSON_TYPES = ("application/json",)


class _Dumper(yaml.SafeDumper):
    """Decimals as plain YAML numbers, so an exported document reads like the one written."""


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    if value == value.to_integral_value():
        return dumper.represent_int(int(value))
    return dumper.represent_scalar("tag:yaml.org,2002:float", format(value, "f"))


def _represent_enum(dumper: yaml.SafeDumper, value: Enum) -> yaml.ScalarNode:
    return dumper.represent_str(str(value.value))


_Dumper.add_representer(Decimal, _represent_decimal)
_Dumper.add_multi_representer(Enum, _represent_enum)


def to_python(doc: PlaybookDocument) -> dict[str, Any]:
    return doc.model_dump(mode="python", exclude_none=True, exclude_defaults=False)


def to_yaml(doc: PlaybookDocument) -> str:
    return yaml.dump(to_python(doc), Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def to_json(doc: PlaybookDocument) -> str:
    return json.dumps(doc.model_dump(mode="json", exclude_none=True), indent=2)


def parse_text(text: str, media_type: str) -> PlaybookDocument:
    """Parse a YAML or JSON document; 422 naming the line, or the exact offending fields."""
    media_type = media_type.split(";")[0].strip().lower()
    if media_type in JSON_TYPES:
        try:
            raw = strict_json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidPlaybook(
                f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        except InvalidInput as exc:  # duplicate keys, NUL characters, numbers out of range
            raise InvalidPlaybook(errors=exc.errors) from None
    elif media_type in YAML_TYPES or media_type in ("", "text/plain"):
        try:
            raw = yaml.safe_load(text)
        except RecursionError:
            raise InvalidPlaybook("the document is nested too deeply") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
            raise InvalidPlaybook(
                f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"
            ) from None
    else:
        raise UnsupportedMediaType(
            f"send the document as application/json or application/yaml, not {media_type!r}"
        )
    if not isinstance(raw, dict):
        raise InvalidPlaybook(
            "a playbook document is a mapping with key, name, scope, terms and rules"
        )
    try:
        return PlaybookDocument.model_validate(raw)
    except ValidationError as exc:
        raise InvalidPlaybook(
            errors=[Problem(tuple(e["loc"]), e["msg"]) for e in exc.errors()]
        ) from None
