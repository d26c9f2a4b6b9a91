"""Property types inferred from sample objects: the widest type that fits every value seen.

>>> infer_properties([{"year": 1, "meta": {"a": 1}}, {"year": 2.5, "tags": ["x"]}])
{'year': 'number', 'meta': 'object', 'tags': 'text[]'}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

SAMPLE_SIZE = 1000
"""Objects a command reads to infer a new collection's property types."""
_WIDER = {("int", "number"): "number", ("int[]", "number[]"): "number[]"}


def value_type(value: Any) -> str | None:
    """The property type of one value (``None`` for null and for an empty list, which fit any type)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        kinds = {value_type(item) for item in value} - {None}
        if not kinds:
            return None
        if kinds == {"int", "number"}:
            return "number[]"
        if len(kinds) == 1 and (kind := kinds.pop()) in ("text", "int", "number", "bool", "date", "object"):
            return kind + "[]"
        raise ValueError(f"a list holding {sorted(map(str, kinds))}; lists hold one kind of value")
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, date):  # Parquet dates and timestamps
        return "date"
    raise ValueError(f"a {type(value).__name__} ({value!r:.60}), which is not a JSON value")


def widest(name: str, seen: tuple[str, str], new: tuple[str, str]) -> tuple[str, str]:
    """The type that holds both ``(type, where seen)`` pairs, or ``ValueError`` naming both places."""
    if seen[0] == new[0]:
        return seen
    wider = _WIDER.get((seen[0], new[0])) or _WIDER.get((new[0], seen[0]))
    if wider is not None:
        return (wider, seen[1] if wider == seen[0] else new[1])
    raise ValueError(
        f"property {name!r} holds {seen[0]} ({seen[1]}) and {new[0]} ({new[1]}); state its type "
        "(--schema FILE on the command line, properties= in Python) or fix the data"
    )


def infer_properties(
    objects: Iterable[Mapping[str, Any]],
    *,
    images: Sequence[str] = (),
    places: Iterable[str] | None = None,
) -> dict[str, str]:
    """Infer property types from ``objects`` (a sample), widening ``int`` to ``number`` where both occur.

    Args:
        objects: the objects to look at (all of them are read: pass a sample).
        images: properties whose values are images (paths or bytes) rather than text.
        places: where each object comes from (``"corpus.jsonl:7"``), for the conflict message.
    """
    found: dict[str, tuple[str, str]] = {}
    labels = iter(places) if places is not None else None
    for number, obj in enumerate(objects):
        place = next(labels) if labels is not None else f"object {number}"
        for name, value in obj.items():
            try:
                kind = "image" if name in images and value is not None else value_type(value)
            except ValueError as error:
                raise ValueError(f"property {name!r} ({place}) holds {error}") from None
            if kind is not None:
                found[name] = widest(name, found[name], (kind, place)) if name in found else (kind, place)
    return {name: kind for name, (kind, _) in found.items()}
