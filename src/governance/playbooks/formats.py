"""Playbook documents as YAML or JSON text, for import and export."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from enum import Enum
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from governance import number_text, strict_json
from governance.engine.document import PlaybookDocument
from governance.errors import InvalidInput, InvalidPlaybook, UnsupportedMediaType, clean_loc
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


# --- reading YAML --------------------------------------------------------------------------------

# Past these a document is refused: a playbook of 200 terms and 200 rules is some tens of
# thousands of nodes, while "billion laughs" (anchors whose aliases nest) is a few hundred bytes
# that expand to billions of nodes once anything walks them (validation, export).
MAX_NODES = 250_000  # counting every alias as the whole of what it stands for
MAX_ALIASES = 256

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"
_DUPLICATE = "tag:governance,2026:duplicate-key"
# YAML 1.1 reads "1_000", "0x10", "010" (octal), "1:30" (base 60), ".inf" and ".nan" as numbers;
# here a plain number is written as JSON writes it, and anything else stays text (which the
# document's number fields then refuse, naming the field).
_STRICT_INT = re.compile(r"^-?(?:0|[1-9][0-9]*)$")
_STRICT_FLOAT = re.compile(r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$")

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """PyYAML's safe loader (libyaml's parser when available) with strict numbers, and
    constructors that mark a malformed scalar (`2020-13-45`, `!!float abc`, a 5,000-digit
    integer) with `strict_json.Refused` instead of raising, so the 422 can name its field."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int | strict_json.Refused:
        text = str(self.construct_scalar(node))
        if not _STRICT_INT.match(text):
            return strict_json.Refused(f"{text[:40]!r} is not an integer: {number_text.HOW}")
        if len(text) > number_text.MAX_DIGITS + 1:
            return strict_json.integer_out_of_range(text)
        return int(text)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> Decimal | strict_json.Refused:
        # Decimal, not float: the document's numbers are exact.
        try:
            return number_text.parse_decimal(str(self.construct_scalar(node)))
        except ValueError as exc:
            return strict_json.Refused(str(exc))

    def construct_yaml_bool(self, node: yaml.ScalarNode) -> bool | strict_json.Refused:
        text = str(self.construct_scalar(node))
        value = self.bool_values.get(text.lower())
        return (
            strict_json.Refused(f"{text[:40]!r} is not true or false") if value is None else value
        )

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError, TypeError, AttributeError):
            return strict_json.Refused(f"{node.value[:40]!r} is not a valid date or time")

    def construct_duplicate(self, node: yaml.ScalarNode) -> strict_json.Refused:
        return strict_json.duplicate_key(node.value)

    def construct_unknown(self, node: yaml.Node) -> strict_json.Refused:
        return strict_json.Refused(f"unknown tag {node.tag!r}")


_Loader.add_implicit_resolver(_INT, _STRICT_INT, list("-0123456789"))
_Loader.add_implicit_resolver(_FLOAT, _STRICT_FLOAT, list("-0123456789"))
_Loader.add_constructor(_INT, _Loader.construct_yaml_int)
_Loader.add_constructor(_FLOAT, _Loader.construct_yaml_float)
_Loader.add_constructor("tag:yaml.org,2002:bool", _Loader.construct_yaml_bool)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)
_Loader.add_constructor(_DUPLICATE, _Loader.construct_duplicate)
_Loader.add_constructor(None, _Loader.construct_unknown)


def load_yaml(text: str) -> Any:
    """The YAML document in `text`, bounded and with duplicate keys and malformed scalars
    marked (`strict_json.Refused`); InvalidPlaybook when it is not one YAML document, refers to
    itself, or expands past the bounds."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _inspect(root)
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _mark_duplicates(node: yaml.MappingNode) -> None:
    """A key written twice in one mapping: its later values become markers (a merge `<<` may
    bring in keys the mapping then overrides: those are not duplicates)."""
    seen: set[tuple[str, str]] = set()
    for i, (key, value) in enumerate(node.value):
        if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE:
            continue
        if (key.tag, key.value) in seen:
            marker = yaml.ScalarNode(_DUPLICATE, key.value, value.start_mark, value.end_mark)
            node.value[i] = (key, marker)
        seen.add((key.tag, key.value))


def _inspect(root: yaml.Node) -> None:
    """Walk the composed graph once (iteratively, each node once): mark duplicate keys, and
    refuse a document that refers to itself, uses too many aliases or expands too far."""
    expanded: dict[int, int] = {}  # node id → nodes it stands for, once walked
    open_: set[int] = {id(root)}
    aliases = 0
    stack: list[tuple[yaml.Node, list[yaml.Node], int]] = []

    def enter(node: yaml.Node) -> None:
        if isinstance(node, yaml.MappingNode):
            _mark_duplicates(node)
        stack.append((node, _children(node), 0))

    enter(root)
    while stack:
        node, children, next_child = stack[-1]
        if next_child < len(children):
            stack[-1] = (node, children, next_child + 1)
            child = children[next_child]
            if id(child) in expanded:  # met before: an alias (or a merge) of it
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise _too_big(child, f"more than {MAX_ALIASES} aliases")
            elif id(child) in open_:
                raise _too_big(child, "an alias refers to a node that contains it")
            else:
                open_.add(id(child))
                enter(child)
            continue
        stack.pop()
        open_.discard(id(node))
        size = 1 + sum(expanded[id(child)] for child in children)
        if size > MAX_NODES:
            raise _too_big(
                node, f"it stands for more than {MAX_NODES:,} values once aliases expand"
            )
        expanded[id(node)] = size


def _too_big(node: yaml.Node, why: str) -> InvalidPlaybook:
    mark = node.start_mark
    return InvalidPlaybook(
        f"not accepted YAML at line {mark.line + 1} column {mark.column + 1}: {why}"
    )


def read_yaml(text: str) -> Any:
    """The value of one YAML document (a playbook, or one rule of it); InvalidPlaybook naming
    the line when it is not YAML, and naming each field holding a malformed scalar, a duplicate
    key or a NUL."""
    try:
        raw = load_yaml(text)
    except RecursionError:
        raise InvalidPlaybook("the document is nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise InvalidPlaybook(f"not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    refused = strict_json.refusals(raw)  # malformed scalars, duplicate keys, NULs
    if refused:
        raise InvalidPlaybook(errors=refused)
    return raw


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
        raw = read_yaml(text)
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
        raise InvalidPlaybook(errors=[document_problem(e) for e in exc.errors()]) from None


TERM_KINDS = "number, choice, flag"


def document_problem(error: ErrorDetails) -> Problem:
    """A validation error in the document's own words (`terms[0].kind: required, one of
    number, choice, flag`), not the validation library's ("Unable to extract tag using
    discriminator 'kind'"), at the path the author wrote (no union tags)."""
    loc = tuple(clean_loc(error["loc"]))
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        field = str(ctx.get("discriminator", "kind")).strip("'")
        expected = str(ctx.get("expected_tags", TERM_KINDS)).replace("'", "")
        if kind == "union_tag_not_found":
            return Problem((*loc, field), f"required, one of {expected}")
        return Problem((*loc, field), f"{ctx.get('tag')!r} is not one of {expected}")
    if kind == "missing":
        return Problem(loc, "required")
    if kind == "extra_forbidden":
        return Problem(loc, "not a field of this document")
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return Problem(loc, f"{error['input']!r} is not one of {expected}")
    return Problem(loc, error["msg"].removeprefix("Value error, "))
