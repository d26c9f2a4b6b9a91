"""Filters as JSON, mirroring the Python ``Filter`` API.

``{"path": "year", "operator": ">=", "value": 2000}`` is ``Filter.by_property("year") >= 2000``;
``{"operator": "and" | "or" | "not", "operands": [...]}`` combines them; the path ``"_id"`` is the uuid.

>>> from_json({"operator": "and", "operands": [
...     {"path": "year", "operator": ">=", "value": 2000},
...     {"path": "tags", "operator": "contains_any", "value": ["ml"]}]})
And(Condition('year', '>=', 2000), Condition('tags', 'contains_any', ['ml']))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omniembed.store.filters import MAX_FILTER_DEPTH, And, Condition, Filter, Not, Or

_ALIASES = {
    "equal": "==",
    "not_equal": "!=",
    "less_than": "<",
    "less_or_equal": "<=",
    "greater_than": ">",
    "greater_or_equal": ">=",
}
OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "like", "contains_any", "contains_all", "is_none")


def from_json(data: Any, where: str = "filters", depth: int = 0) -> Filter:
    """Build a ``Filter`` from its JSON form, or raise ``ValueError`` naming the bad part.

    ``depth`` counts the and/or/not levels above ``data``; past the store's limit the nesting is
    refused here, before it recurses any deeper (the store checks the filter's size).
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be an object, got {type(data).__name__}")
    operator = str(data.get("operator", "")).lower()
    if operator in ("and", "or", "not"):
        if depth == MAX_FILTER_DEPTH:
            raise ValueError(
                f"{where}: filters are nested at most {MAX_FILTER_DEPTH} and/or/not levels deep; "
                "give one 'and' or 'or' many operands instead of nesting them"
            )
        operands = data.get("operands")
        if not isinstance(operands, list) or not operands:
            raise ValueError(f"{where}: '{operator}' needs a non-empty list 'operands'")
        parts = tuple(from_json(part, f"{where}.operands[{i}]", depth + 1) for i, part in enumerate(operands))
        if operator == "not":
            if len(parts) != 1:
                raise ValueError(f"{where}: 'not' takes exactly one operand, got {len(parts)}")
            return Not(parts[0])
        return And(parts) if operator == "and" else Or(parts)
    operator = _ALIASES.get(operator, operator)
    if operator not in OPERATORS:
        raise ValueError(
            f"{where}: operator {data.get('operator')!r} is unknown; use one of {', '.join(OPERATORS)}, "
            "and, or, not"
        )
    path = data.get("path")
    if isinstance(path, list) and len(path) == 1:
        path = path[0]
    if not isinstance(path, str):
        raise ValueError(f"{where}: 'path' must name a property, got {path!r:.60}")
    if "value" not in data:
        raise ValueError(f"{where}: a condition needs a 'value'")
    value = data["value"]
    if operator in ("contains_any", "contains_all") and not isinstance(value, list):
        raise ValueError(f"{where}: {operator} takes a list value, got {value!r:.60}")
    return Condition(path, operator, value)  # the store checks values, is_none's boolean included
