"""Fill a JSON schema with the simplest value that satisfies it.

Used for tool-call arguments and `json_schema` answers: strings become
"sandbox", numbers 1, booleans true, enums their first value; objects get their
required properties, arrays their minimum number of items.
"""

from __future__ import annotations

from typing import Any

_MAX_DEPTH = 8
_SCALARS: dict[str, Any] = {
    "string": "sandbox",
    "number": 1,
    "integer": 1,
    "boolean": True,
    "null": None,
}


def fill_object(schema: object) -> dict[str, Any]:
    """An object for `schema`, even when the schema does not say "object"."""
    value = fill(schema)
    return value if isinstance(value, dict) else {}


def fill(schema: object, depth: int = 0) -> Any:
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return "sandbox"
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            return fill(options[0], depth + 1)
    kind = _type_of(schema)
    if kind == "object":
        return _fill_properties(schema, depth)
    if kind == "array":
        count = schema.get("minItems")
        count = count if isinstance(count, int) and 0 < count <= 16 else 0
        return [fill(schema.get("items"), depth + 1) for _ in range(count)]
    return _SCALARS.get(kind, "sandbox")


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    return "object" if "properties" in schema else "string"


def _fill_properties(schema: dict[str, Any], depth: int) -> dict[str, Any]:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    required = schema.get("required")
    names = required if isinstance(required, list) else []
    return {
        name: fill(properties.get(name), depth + 1) for name in names if isinstance(name, str)
    }
