"""The JSON-schema subset data plans use: checking an uploaded schema, compiling it, validating values.

Supported: type, enum, pattern, format, minimum/maximum, minLength/maxLength, required, properties,
additionalProperties. Refused (like mParticle): $ref, patternProperties, allOf/anyOf/oneOf, if/then/else, not,
dependencies. Any other keyword is an annotation and is ignored. Number and boolean strings ("42", "true")
count as numbers and booleans (mParticle's rule).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from kaon.governance.plans_regex import PatternRefused, Program, compile_pattern
from kaon.model.values import as_number

UNSUPPORTED = frozenset({
    "$ref", "$recursiveRef", "$dynamicRef", "patternProperties", "allOf", "anyOf", "oneOf", "if", "then", "else",
    "not", "dependencies", "dependentRequired", "dependentSchemas",
})
TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$")
_HOST = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9\-]{0,61}"
                   r"[A-Za-z0-9])?)*\.?$")
_IPV4 = re.compile(r"^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _is_date(value: str) -> bool:
    try:
        return bool(_DATE.match(value)) and date.fromisoformat(value) is not None
    except ValueError:
        return False


def _is_date_time(value: str) -> bool:
    if not _DATE_TIME.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


FORMATS: dict[str, Callable[[str], bool]] = {
    "email": lambda v: bool(_EMAIL.match(v)),
    "uri": lambda v: bool(_URI.match(v)),
    "date": _is_date,
    "time": lambda v: bool(_TIME.match(v)),
    "date-time": _is_date_time,
    "hostname": lambda v: bool(_HOST.match(v)),
    "ipv4": lambda v: bool(_IPV4.match(v)),
    "uuid": lambda v: bool(_UUID.match(v)),
}


def pointer_part(key: str | int) -> str:
    """One JSON-pointer segment (RFC 6901 escaping)."""
    text = str(key)
    if "~" not in text and "/" not in text:
        return text
    return text.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True)
class SchemaProblem:
    """A reason an uploaded schema is refused: where (JSON pointer) and which keyword."""

    pointer: str
    keyword: str
    message: str
    error_type: str | None = None  # a stable name when the message is not enough (e.g. unsupported_pattern)


def check_schema(schema: Any, pointer: str) -> list[SchemaProblem]:
    """Every problem in an uploaded schema, each with its pointer (empty list: the schema is usable)."""
    if not isinstance(schema, dict):
        if isinstance(schema, bool):
            return []
        return [SchemaProblem(pointer, "", "a schema must be a JSON object")]
    problems: list[SchemaProblem] = []

    def bad(keyword: str, message: str, error_type: str | None = None) -> None:
        problems.append(SchemaProblem(f"{pointer}/{pointer_part(keyword)}", keyword, message, error_type))

    for keyword, value in schema.items():
        if keyword in UNSUPPORTED:
            bad(keyword, f"the JSON-schema keyword {keyword!r} is not supported in data plans")
        elif keyword == "type":
            names = value if isinstance(value, list) else [value]
            if not names or any(not isinstance(n, str) or n not in TYPES for n in names):
                bad(keyword, f"type must be one of {', '.join(sorted(TYPES))} (or a list of them)")
        elif keyword == "enum" and not (isinstance(value, list) and value):
            bad(keyword, "enum must be a non-empty array")
        elif keyword == "pattern":
            if not isinstance(value, str):
                bad(keyword, "pattern must be a string")
            else:
                try:
                    compile_pattern(value)
                except PatternRefused as refused:
                    bad(keyword, str(refused), refused.error_type)
        elif keyword == "format" and value not in FORMATS:
            bad(keyword, f"format must be one of {', '.join(sorted(FORMATS))}")
        elif keyword in ("minimum", "maximum") and (isinstance(value, bool) or not isinstance(value, int | float)):
            bad(keyword, f"{keyword} must be a number")
        elif keyword in ("minLength", "maxLength") and (isinstance(value, bool) or not isinstance(value, int)
                                                        or value < 0):
            bad(keyword, f"{keyword} must be a non-negative integer")
        elif keyword == "required" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            bad(keyword, "required must be an array of strings")
        elif keyword == "properties":
            if not isinstance(value, dict):
                bad(keyword, "properties must be an object")
            else:
                for name, sub in value.items():
                    problems.extend(check_schema(sub, f"{pointer}/properties/{pointer_part(name)}"))
        elif keyword == "additionalProperties" and not isinstance(value, bool):
            problems.extend(check_schema(value, f"{pointer}/additionalProperties"))
    return problems


@dataclass(frozen=True)
class Violation:
    """One way a value breaks a schema (mParticle's validation error, before it is shaped for output)."""

    kind: str  # unplanned | missing_required | invalid_value
    key: str
    pointer: str
    keyword: str
    expected: Any = None
    actual: Any = None


@dataclass
class Node:
    """A compiled schema: checks precomputed so validating a value is a few attribute reads."""

    types: frozenset[str] | None = None
    single: str = ""  # the type when exactly one is allowed (the common case, checked without a loop)
    enum: list[Any] | None = None
    pattern: Program | None = None
    format: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    required: tuple[str, ...] = ()
    properties: dict[str, "Node"] = field(default_factory=dict)
    # True: anything else allowed; False: anything else is unplanned; a Node: anything else must match it.
    additional: "bool | Node" = True
    never: bool = False  # the schema `false`


def compile_schema(schema: Any) -> Node:
    """A Node from a schema that passed `check_schema`."""
    if isinstance(schema, bool):
        return Node(never=not schema)
    node = Node()
    if "type" in schema:
        value = schema["type"]
        node.types = frozenset(value if isinstance(value, list) else [value])
        node.single = next(iter(node.types)) if len(node.types) == 1 else ""
    node.enum = schema.get("enum")
    if "pattern" in schema:
        node.pattern = compile_pattern(schema["pattern"])
    node.format = schema.get("format")
    node.minimum = schema.get("minimum")
    node.maximum = schema.get("maximum")
    node.min_length = schema.get("minLength")
    node.max_length = schema.get("maxLength")
    node.required = tuple(schema.get("required", ()))
    node.properties = {k: compile_schema(v) for k, v in schema.get("properties", {}).items()}
    extra = schema.get("additionalProperties", True)
    node.additional = extra if isinstance(extra, bool) else compile_schema(extra)
    return node


def _is_type(value: Any, name: str) -> bool:
    if name == "string":
        return isinstance(value, str)
    if name == "number":
        return as_number(value) is not None
    if name == "integer":
        number = as_number(value)
        return number is not None and number.is_integer()
    if name == "boolean":
        return isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false"))
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    return value is None  # "null"


def _in_enum(value: Any, enum: list[Any]) -> bool:
    if any(value == e and isinstance(value, bool) == isinstance(e, bool) for e in enum):
        return True
    number = as_number(value)
    if number is not None and any(not isinstance(e, bool) and as_number(e) == number for e in enum):
        return True
    if isinstance(value, str):
        text = value.strip().lower()
        return any(isinstance(e, bool) and str(e).lower() == text for e in enum)
    return False


def validate(node: Node, value: Any, pointer: str, key: str, out: list[Violation]) -> None:
    """Append every violation of `value` (found at `pointer`, named `key`) against `node` to `out`."""
    if node.never:
        out.append(Violation("invalid_value", key, pointer, "false", None, value))
        return
    if node.types is not None and not (_is_type(value, node.single) if node.single else
                                       any(_is_type(value, t) for t in node.types)):
        expected = next(iter(node.types)) if len(node.types) == 1 else sorted(node.types)
        out.append(Violation("invalid_value", key, pointer, "type", expected, value))
        return
    if node.enum is not None and not _in_enum(value, node.enum):
        out.append(Violation("invalid_value", key, pointer, "enum", node.enum, value))
    if isinstance(value, str):
        if node.min_length is not None and len(value) < node.min_length:
            out.append(Violation("invalid_value", key, pointer, "minLength", node.min_length, value))
        if node.max_length is not None and len(value) > node.max_length:
            out.append(Violation("invalid_value", key, pointer, "maxLength", node.max_length, value))
        if node.pattern is not None and node.pattern.search(value) is None:
            out.append(Violation("invalid_value", key, pointer, "pattern", node.pattern.pattern, value))
        if node.format is not None and not FORMATS[node.format](value):
            out.append(Violation("invalid_value", key, pointer, "format", node.format, value))
    if node.minimum is not None or node.maximum is not None:
        number = as_number(value)
        if number is not None:
            if node.minimum is not None and number < node.minimum:
                out.append(Violation("invalid_value", key, pointer, "minimum", node.minimum, value))
            if node.maximum is not None and number > node.maximum:
                out.append(Violation("invalid_value", key, pointer, "maximum", node.maximum, value))
    if isinstance(value, dict):
        validate_object(node, value, pointer, out)


def validate_object(node: Node, value: dict[str, Any], pointer: str, out: list[Violation]) -> None:
    for name in node.required:
        if name not in value or value[name] is None:
            out.append(Violation("missing_required", name, f"{pointer}/{pointer_part(name)}", "required", name))
    properties = node.properties
    additional = node.additional
    for name, item in value.items():
        sub = properties.get(name)
        if sub is not None:
            if item is not None:  # a null value counts as absent (reported by `required` if needed)
                validate(sub, item, f"{pointer}/{pointer_part(name)}", name, out)
        elif additional is False:
            out.append(Violation("unplanned", name, f"{pointer}/{pointer_part(name)}", "additionalProperties",
                                 None, item))
        elif additional is not True:
            validate(additional, item, f"{pointer}/{pointer_part(name)}", name, out)
