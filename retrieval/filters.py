"""OpenAI attribute filters, checked once and applied identically on both search sides.

A filter is a ComparisonFilter ``{"type": "eq"|"ne"|"gt"|"gte"|"lt"|"lte"|"in"|"nin",
"key", "value"}`` or a CompoundFilter ``{"type": "and"|"or", "filters": [...]}``, nested
freely. The vector side gets a Chroma ``where`` on the ``attr.<key>`` metadata, the keyword
side a Python predicate over each file's attributes; both follow Chroma's semantics:

* a comparison on a key the file does not have is false, except ``ne`` and ``nin``, which
  are true (as in MongoDB and Chroma);
* numbers compare as numbers (int and float alike), booleans only with booleans, strings only
  with strings; ``gt``/``gte``/``lt``/``lte`` take numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeGuard

__all__ = [
    "ATTRIBUTE_PREFIX",
    "InvalidFilter",
    "filter_predicate",
    "to_chroma_where",
    "validate_filters",
]

ATTRIBUTE_PREFIX = "attr."
COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
COMPOUNDS = ("and", "or")
_ORDERED = {"gt": "$gt", "gte": "$gte", "lt": "$lt", "lte": "$lte"}
Scalar = str | int | float | bool
Attributes = dict[str, Scalar]


class InvalidFilter(ValueError):
    """A malformed `filters` object; `param` locates the problem (e.g. "filters.filters[1].key")."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def validate_filters(filters: dict[str, Any] | None, param: str = "filters") -> None:
    """Raise InvalidFilter unless `filters` is None or a well-formed OpenAI filter."""
    if filters is None:
        return
    if not isinstance(filters, dict):
        raise InvalidFilter(f"Invalid '{param}': expected an object.", param)
    kind = filters.get("type")
    if kind in COMPOUNDS:
        _only(filters, {"type", "filters"}, param)
        children = filters.get("filters")
        if not isinstance(children, list) or not children:
            raise InvalidFilter(
                f"Invalid '{param}.filters': expected a non-empty array of filters.",
                f"{param}.filters",
            )
        for i, child in enumerate(children):
            validate_filters(child, f"{param}.filters[{i}]")
        return
    if kind not in COMPARISONS:
        raise InvalidFilter(
            f"Invalid '{param}.type': expected one of {', '.join(COMPARISONS + COMPOUNDS)}, "
            f"but got {kind!r} instead.",
            f"{param}.type",
        )
    _only(filters, {"type", "key", "value"}, param)
    key = filters.get("key")
    if not isinstance(key, str) or not key:
        raise InvalidFilter(f"Invalid '{param}.key': expected a non-empty string.", f"{param}.key")
    if "value" not in filters:
        raise InvalidFilter(f"Missing required parameter: '{param}.value'.", f"{param}.value")
    value = filters["value"]
    if kind in ("in", "nin"):
        if not isinstance(value, list) or not value or not all(map(_is_scalar, value)):
            raise InvalidFilter(
                f"Invalid '{param}.value': '{kind}' expects a non-empty array of strings, "
                "numbers or booleans.",
                f"{param}.value",
            )
    elif kind in _ORDERED:
        if not _is_number(value):
            raise InvalidFilter(
                f"Invalid '{param}.value': '{kind}' compares numbers, but got {value!r}.",
                f"{param}.value",
            )
    elif not _is_scalar(value):
        raise InvalidFilter(
            f"Invalid '{param}.value': expected a string, number or boolean.", f"{param}.value"
        )


def _only(obj: dict[str, Any], allowed: set[str], param: str) -> None:
    for key in obj:
        if key not in allowed:
            raise InvalidFilter(f"Unknown parameter: '{param}.{key}'.", f"{param}.{key}")


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _same(a: Any, b: Any) -> bool:
    """Chroma's equality: numbers with numbers, bools with bools, strings with strings."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return isinstance(a, str) and isinstance(b, str) and a == b


def filter_predicate(filters: dict[str, Any] | None) -> Callable[[Attributes], bool]:
    """A Python test over one file's attributes (unprefixed keys); assumes validated input."""
    if filters is None:
        return lambda attrs: True
    kind = filters["type"]
    if kind in COMPOUNDS:
        parts = [filter_predicate(child) for child in filters["filters"]]
        if kind == "and":
            return lambda attrs: all(p(attrs) for p in parts)
        return lambda attrs: any(p(attrs) for p in parts)
    key, value = filters["key"], filters["value"]
    if kind == "eq":
        return lambda attrs: key in attrs and _same(attrs[key], value)
    if kind == "ne":
        return lambda attrs: key not in attrs or not _same(attrs[key], value)
    if kind == "in":
        return lambda attrs: key in attrs and any(_same(attrs[key], v) for v in value)
    if kind == "nin":
        return lambda attrs: key not in attrs or not any(_same(attrs[key], v) for v in value)
    compare: Callable[[float, float], bool] = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }[kind]

    def ordered(attrs: Attributes) -> bool:
        found = attrs.get(key)
        return _is_number(found) and compare(found, value)

    return ordered


def to_chroma_where(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    """The same filter as a Chroma `where` over the prefixed metadata keys."""
    if filters is None:
        return None
    kind = filters["type"]
    if kind in COMPOUNDS:
        return _combine("$" + kind, [to_chroma_where(child) for child in filters["filters"]])
    field = ATTRIBUTE_PREFIX + filters["key"]
    value = filters["value"]
    if kind in ("eq", "ne"):
        return {field: {"$" + kind: value}}
    if kind in _ORDERED:
        return {field: {_ORDERED[kind]: value}}
    # Chroma wants one type per $in/$nin list: split mixed lists by type.
    groups: dict[str, list[Scalar]] = {}
    for v in value:
        kind_of = "bool" if isinstance(v, bool) else "num" if _is_number(v) else "str"
        groups.setdefault(kind_of, []).append(v)
    clauses = [{field: {"$" + kind: vs}} for vs in groups.values()]
    return _combine("$or" if kind == "in" else "$and", clauses)


def _combine(op: str, clauses: list[Any]) -> dict[str, Any]:
    return clauses[0] if len(clauses) == 1 else {op: clauses}
