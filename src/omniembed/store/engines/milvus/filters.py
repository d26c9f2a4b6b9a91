"""Filters compiled to Milvus boolean expressions over the ``properties`` JSON field.

The embedded backend evaluates filters in SQL, where a comparison with a missing property is NULL:
neither true nor false, so ``~(year == 2000)`` leaves out objects without a year. Milvus expressions
are two-valued, so each node is compiled twice, as "is true" and as "is false", and ``Not`` swaps
them. A comparison on a missing key is false in Milvus, which is right for "is true"; "is false"
adds ``exists``. The result matches the embedded backend operator for operator, except:

- ``like`` is case-sensitive in Milvus (SQLite's LIKE ignores ASCII case), and Milvus Lite has no
  escape for ``%`` and ``_``, so a literal ``%`` or ``_`` in a pattern matches any one character.
- a path into an object property (``metadata.author``) compiles to ``properties["metadata"]["author"]``;
- ordering comparisons and ``like`` on array properties (``int[] > 3``: "any element") are refused,
  since Milvus expressions cannot range over JSON array elements.

>>> from omniembed.store.filters import Filter
>>> from omniembed.store.schema import Schema
>>> to_expr(~(Filter.by_property("year") == 2000), Schema({"year": "int"}))
'(exists properties["year"] and not (properties["year"] == 2000))'
"""

from __future__ import annotations

from typing import Any

from omniembed.store.filters import And, Condition, Filter, Not, Or, _param, check_size, resolve
from omniembed.store.schema import Schema

_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")


def to_expr(flt: Filter, schema: Schema) -> str:
    """Compile ``flt`` into a Milvus filter expression."""
    check_size(flt)
    return _compile(flt, schema, negate=False)


def literal(value: Any) -> str:
    """Write a JSON value as a Milvus expression literal (strings double-quoted and escaped).

    >>> literal('say "hi"\\n'), literal(True), literal(2.5), literal(["a", 1])
    ('"say \\\\"hi\\\\"\\\\n"', 'true', '2.5', '["a", 1]')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} into a Milvus filter")


def _compile(flt: Filter, schema: Schema, negate: bool) -> str:
    if isinstance(flt, Not):
        return _compile(flt.part, schema, not negate)
    if isinstance(flt, (And, Or)):
        # De Morgan: "And is false" is "any part is false"; "Or is false" is "every part is false".
        conjunction = isinstance(flt, And) != negate
        if not flt.parts:
            return "true" if conjunction else "false"
        joiner = " and " if conjunction else " or "
        return "(" + joiner.join(_compile(part, schema, negate) for part in flt.parts) + ")"
    if isinstance(flt, Condition):
        return _condition(flt, schema, negate)
    raise TypeError(f"not a filter: {flt!r}; build one with Filter.by_property(name)")


def _condition(cond: Condition, schema: Schema, negate: bool) -> str:
    if cond.prop == "_id":
        field, kind = "uuid", "uuid"
    else:
        keys, kind = resolve(cond, schema)
        field = "properties" + "".join(f'["{key}"]' for key in keys)  # keys are checked identifiers
    positive, total = _positive(cond, field, kind)
    if not negate:
        return positive
    if total or cond.prop == "_id":  # never NULL in SQL: "false" is plain negation
        return f"not {positive}"
    return f"(exists {field} and not {positive})"


def _positive(cond: Condition, field: str, kind: str) -> tuple[str, bool]:
    """Return the "is true" expression and whether the SQL condition is total (never NULL)."""
    scalar = kind.removesuffix("[]")
    array = kind.endswith("[]")
    if cond.op == "is_none":
        if field == "uuid":  # every object has a uuid
            return ("false" if cond.value else "true"), True
        return (f"(not exists {field})" if cond.value else f"(exists {field})"), True
    if cond.op in ("contains_any", "contains_all"):
        values = [_value(cond.prop, scalar, v) for v in cond.value]
        if not values:
            raise ValueError(f"{cond.op} on {cond.prop!r} needs at least one value")
        if array:
            function = "json_contains_any" if cond.op == "contains_any" else "json_contains_all"
            return f"{function}({field}, {literal(values)})", True
        if cond.op == "contains_all" and len(set(values)) > 1:
            return "false", True
        if field == "uuid":
            return f"(uuid in {literal(values)})", False
        return "(" + " or ".join(f"{field} == {literal(v)}" for v in values) + ")", False
    if cond.op not in (*_COMPARISONS, "like"):
        raise ValueError(f"unknown filter operator {cond.op!r}")
    if cond.op == "like" and scalar != "text":
        raise ValueError(f"like works on text properties; {cond.prop!r} is {kind}")
    value = _value(cond.prop, scalar, cond.value)
    if array:
        if cond.op == "==":
            return f"json_contains({field}, {literal(value)})", True
        if cond.op == "!=":
            return f"(not json_contains({field}, {literal(value)}))", True
        raise ValueError(
            f"the Milvus backend cannot compare elements of array property {cond.prop!r} with "
            f"{cond.op!r}; use ==, !=, contains_any or contains_all, or the embedded backend"
        )
    if cond.op == "like":
        pattern = value.replace("%", "_").replace("*", "%").replace("?", "_")
        return f"({field} like {literal(pattern)})", False
    return f"({field} {cond.op} {literal(value)})", False


def _value(prop: str, kind: str, value: Any) -> Any:
    cleaned = _param(prop, kind, value)
    return bool(cleaned) if kind == "bool" else cleaned
