"""Filters on object properties, built like Weaviate's and compiled to SQL over the stored JSON.

>>> f = (Filter.by_property("year") >= 2000) & Filter.by_property("tags").contains_any(["ml"])
>>> f
And(Condition('year', '>=', 2000), Condition('tags', 'contains_any', ['ml']))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from omniembed.store.nested import split_path
from omniembed.store.schema import Schema, clean_value

_COMPARISONS = {"==": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
TEXT_KEY_CHARS = 32
"""A text property's filter index holds only its first characters: a short key keeps the index small
and cheap to grow on import, and an equality filter narrows by it before comparing whole values."""
# Limits that keep a filter well inside SQLite's: its parser overflows past ~26 nested and/or levels,
# an expression deeper than 1,000 nodes is refused, a statement takes at most 32,766 parameters and
# a LIKE pattern at most 50,000 bytes.
MAX_FILTER_DEPTH = 16
MAX_FILTER_CONDITIONS = 256
MAX_FILTER_LIST_VALUES = 4096
MAX_FILTER_VALUES = 10_000
MAX_LIKE_PATTERN = 1_000  # characters; SQLite refuses patterns over 50,000 bytes


class Filter:
    """Base of every filter: combine with ``&``, ``|`` and ``~``."""

    @staticmethod
    def by_property(name: str) -> PropertyRef:
        """Start a condition on the property ``name``."""
        return PropertyRef(name)

    @staticmethod
    def by_id() -> PropertyRef:
        """Start a condition on the object's uuid."""
        return PropertyRef("_id")

    @staticmethod
    def all_of(filters: Sequence[Filter]) -> Filter:
        """Match objects that every filter matches."""
        return And(tuple(filters))

    @staticmethod
    def any_of(filters: Sequence[Filter]) -> Filter:
        """Match objects that at least one filter matches."""
        return Or(tuple(filters))

    def __and__(self, other: Filter) -> Filter:
        return And((*_parts(self, And), *_parts(other, And)))  # a & b & c is one And, not nested ones

    def __or__(self, other: Filter) -> Filter:
        return Or((*_parts(self, Or), *_parts(other, Or)))

    def __invert__(self) -> Filter:
        return Not(self)


@dataclass(frozen=True, repr=False)
class Condition(Filter):
    """One comparison of a property with a value."""

    prop: str
    op: str
    value: Any

    def __repr__(self) -> str:
        return f"Condition({self.prop!r}, {self.op!r}, {self.value!r})"


@dataclass(frozen=True, repr=False)
class And(Filter):
    """All of the parts match."""

    parts: tuple[Filter, ...]

    def __repr__(self) -> str:
        return f"And({', '.join(map(repr, self.parts))})"


@dataclass(frozen=True, repr=False)
class Or(Filter):
    """Any of the parts matches."""

    parts: tuple[Filter, ...]

    def __repr__(self) -> str:
        return f"Or({', '.join(map(repr, self.parts))})"


@dataclass(frozen=True, repr=False)
class Not(Filter):
    """The part does not match."""

    part: Filter

    def __repr__(self) -> str:
        return f"Not({self.part!r})"


def _parts(flt: Filter, kind: type[And] | type[Or]) -> tuple[Filter, ...]:
    return flt.parts if isinstance(flt, kind) else (flt,)


class PropertyRef:
    """A property name waiting for its comparison (``Filter.by_property("year") >= 2000``)."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, name: str) -> None:
        self.name = name

    def equal(self, value: Any) -> Condition:
        """Property equals ``value`` (for arrays: any element equals it)."""
        return Condition(self.name, "==", value)

    def not_equal(self, value: Any) -> Condition:
        """Property differs from ``value``."""
        return Condition(self.name, "!=", value)

    def less_than(self, value: Any) -> Condition:
        """Property is below ``value``."""
        return Condition(self.name, "<", value)

    def less_or_equal(self, value: Any) -> Condition:
        """Property is at most ``value``."""
        return Condition(self.name, "<=", value)

    def greater_than(self, value: Any) -> Condition:
        """Property is above ``value``."""
        return Condition(self.name, ">", value)

    def greater_or_equal(self, value: Any) -> Condition:
        """Property is at least ``value``."""
        return Condition(self.name, ">=", value)

    def like(self, pattern: str) -> Condition:
        """Text matches ``pattern``: ``*`` is any run of characters, ``?`` one character."""
        return Condition(self.name, "like", pattern)

    def contains_any(self, values: Sequence[Any]) -> Condition:
        """Array property holds at least one of ``values`` (scalars: equals one of them)."""
        return Condition(self.name, "contains_any", list(values))

    def contains_all(self, values: Sequence[Any]) -> Condition:
        """Array property holds every one of ``values``."""
        return Condition(self.name, "contains_all", list(values))

    def is_none(self, value: bool = True) -> Condition:
        """Property is missing or null (``False``: it is set)."""
        return Condition(self.name, "is_none", bool(value))

    __eq__ = equal  # type: ignore[assignment]
    __ne__ = not_equal  # type: ignore[assignment]
    __lt__ = less_than
    __le__ = less_or_equal
    __gt__ = greater_than
    __ge__ = greater_or_equal


def check_size(flt: Filter) -> None:
    """Raise ``ValueError`` when ``flt`` nests too deep or holds too many conditions or values (or an
    ``is_none`` that is not a boolean: ``"no"`` would be true).

    >>> check_size(Filter.by_property("tags").contains_any(range(5000)))
    Traceback (most recent call last):
    ...
    ValueError: contains_any on 'tags' has 5000 values; a list takes at most 4096
    """
    conditions = values = 0
    todo: list[tuple[Filter, int]] = [(flt, 0)]
    while todo:  # a loop, not recursion: a filter built in Python may nest very deep
        node, depth = todo.pop()
        if isinstance(node, (And, Or, Not)):
            if depth == MAX_FILTER_DEPTH:
                raise ValueError(
                    f"filter is nested more than {MAX_FILTER_DEPTH} and/or/not levels deep; "
                    "give one 'and' or 'or' many operands instead of nesting them"
                )
            parts = (node.part,) if isinstance(node, Not) else node.parts
            todo.extend((part, depth + 1) for part in parts)
            continue
        conditions += 1
        values += _checked_values(node)
        if conditions > MAX_FILTER_CONDITIONS:
            raise ValueError(
                f"filter has over {MAX_FILTER_CONDITIONS} conditions; match many values of one property "
                "with contains_any instead"
            )
        if values > MAX_FILTER_VALUES:
            raise ValueError(
                f"filter holds over {MAX_FILTER_VALUES} values in its lists; split it into several queries"
            )


def _checked_values(node: Filter) -> int:
    """How many list values a condition holds, once its list size, ``is_none`` value and ``like``
    pattern length are checked."""
    if not isinstance(node, Condition):
        return 0  # the compiler names what is not a filter
    if node.op == "is_none" and not isinstance(node.value, bool):
        raise ValueError(f"is_none on {node.prop!r} takes true or false, got {node.value!r:.60}")
    if node.op == "like" and isinstance(node.value, str) and len(node.value) > MAX_LIKE_PATTERN:
        raise ValueError(
            f"like pattern on {node.prop!r} has {len(node.value)} characters; the most is {MAX_LIKE_PATTERN}"
        )
    if not isinstance(node.value, (list, tuple)):
        return 0
    if len(node.value) > MAX_FILTER_LIST_VALUES:
        raise ValueError(
            f"{node.op} on {node.prop!r} has {len(node.value)} values; a list takes at most "
            f"{MAX_FILTER_LIST_VALUES}"
        )
    return len(node.value)


def to_sql(flt: Filter, schema: Schema) -> tuple[str, list[Any]]:
    """Compile ``flt`` into a WHERE clause over the ``properties`` JSON column and its parameters."""
    check_size(flt)
    params: list[Any] = []
    return _compile(flt, schema, params), params


def _compile(flt: Filter, schema: Schema, params: list[Any]) -> str:
    if isinstance(flt, And):
        return (
            "(" + " AND ".join(_compile(part, schema, params) for part in flt.parts) + ")"
            if flt.parts
            else "1"
        )
    if isinstance(flt, Or):
        return (
            "(" + " OR ".join(_compile(part, schema, params) for part in flt.parts) + ")"
            if flt.parts
            else "0"
        )
    if isinstance(flt, Not):
        return f"NOT {_compile(flt.part, schema, params)}"
    if isinstance(flt, Condition):
        return _condition(flt, schema, params)
    raise TypeError(f"not a filter: {flt!r}; build one with Filter.by_property(name)")


def _condition(cond: Condition, schema: Schema, params: list[Any]) -> str:
    if cond.prop == "_id":
        column, kind = "uuid", "uuid"
    else:
        keys, kind = resolve(cond, schema)
        column = f"json_extract(properties, '$.{'.'.join(keys)}')"  # keys are checked identifiers
    if cond.op == "is_none":
        return f"({column} IS {'' if cond.value else 'NOT '}NULL)"
    scalar = kind.removesuffix("[]")
    if cond.op in ("contains_any", "contains_all"):
        values = [_param(cond.prop, scalar, v) for v in cond.value]
        if not values:
            raise ValueError(f"{cond.op} on {cond.prop!r} needs at least one value")
        return _contains(column, kind, cond.op, values, params, keyed=cond.prop in schema.properties)
    if cond.op == "like" and scalar != "text":
        raise ValueError(f"like works on text properties; {cond.prop!r} is {kind}")
    value = _param(cond.prop, scalar, cond.value)
    if cond.op == "like":
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        value = escaped.replace("*", "%").replace("?", "_")
        operator, suffix = "LIKE", " ESCAPE '\\'"
    else:
        operator, suffix = _COMPARISONS[cond.op], ""
    if kind.endswith("[]"):
        params.append(value)
        quantifier = "NOT EXISTS" if cond.op == "!=" else "EXISTS"
        positive = "=" if cond.op == "!=" else operator
        return f"{quantifier} (SELECT 1 FROM json_each({column}) WHERE value {positive} ?{suffix})"
    if kind == "text" and cond.op == "==" and cond.prop in schema.properties:  # the indexed key first
        params.extend([value[:TEXT_KEY_CHARS], value])
        return f"({index_key(column, kind)} = ? AND {column} = ?)"
    params.append(value)
    return f"({column} {operator} ?{suffix})"


def index_key(column: str, kind: str) -> str:
    """The SQL expression the filter index of a property of ``kind`` holds, read from ``column``."""
    return f"substr({column}, 1, {TEXT_KEY_CHARS})" if kind == "text" else column


def resolve(cond: Condition, schema: Schema) -> tuple[list[str], str]:
    """The keys a condition's property path names and the type it compares as.

    A path into an ``object`` property (``metadata.author``) compares as the type of the filter's
    value (text, number or bool): object values carry no declared types below the top.
    """
    head, keys = split_path(cond.prop)
    kind = schema.properties.get(head)
    if kind is None:
        raise ValueError(
            f"filter on unknown property {cond.prop!r}; the collection has {sorted(schema.properties)}"
        )
    if not keys and kind.startswith("object"):
        raise ValueError(f"{kind} property {head!r} is filtered by a path inside it, e.g. {head + '.key'!r}")
    if keys and kind != "object":
        hint = " (paths into object[] values are not supported yet)" if kind == "object[]" else ""
        raise ValueError(f"filter path {cond.prop!r}: {head!r} is {kind}, not an object{hint}")
    if keys:
        kind = _nested_kind(cond)
    return [head, *keys], kind


def _nested_kind(cond: Condition) -> str:
    """The type a nested value is compared as, from the filter's value(s)."""
    if cond.op == "is_none":
        return "text"
    values = cond.value if isinstance(cond.value, (list, tuple)) else [cond.value]
    kinds = {
        "bool" if isinstance(v, bool) else "number" if isinstance(v, (int, float)) else "text" for v in values
    }
    if len(kinds) != 1 or not all(isinstance(v, (str, int, float, bool)) for v in values):
        raise ValueError(
            f"filter on {cond.prop!r} compares with {cond.value!r:.60}; give text, a number or a boolean"
        )
    return kinds.pop()


def _contains(
    column: str, kind: str, op: str, values: list[Any], params: list[Any], *, keyed: bool = False
) -> str:
    marks = ", ".join("?" * len(values))
    if not kind.endswith("[]") and op == "contains_all" and len(set(values)) > 1:
        return "0"  # a scalar cannot equal two different values (and "0" takes no parameters)
    if kind == "text" and keyed:  # narrow by the indexed key first
        params.extend(value[:TEXT_KEY_CHARS] for value in values)
        params.extend(values)
        return f"({index_key(column, kind)} IN ({marks}) AND {column} IN ({marks}))"
    params.extend(values)
    if not kind.endswith("[]"):
        return f"({column} IN ({marks}))"
    if op == "contains_any":
        return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value IN ({marks}))"
    params.append(len(set(values)))
    return f"((SELECT COUNT(DISTINCT value) FROM json_each({column}) WHERE value IN ({marks})) = ?)"


def _param(prop: str, kind: str, value: Any) -> Any:
    if kind == "int" and isinstance(value, float) and value.is_integer():
        value = int(value)
    if kind in ("image", "audio", "video"):
        raise ValueError(f"{kind} property {prop!r} cannot be filtered")
    try:
        cleaned = clean_value(prop, kind, value)
    except ValueError as error:
        raise ValueError(f"filter value: {error}") from None
    return int(cleaned) if kind == "bool" else cleaned
