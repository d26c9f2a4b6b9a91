"""Values of ``object`` and ``object[]`` properties: nested JSON, its limits and dotted paths into it.

An object value is a dict of JSON values (text, numbers, booleans, null, lists and dicts), stored as
JSON and returned as it went in. A path such as ``"metadata.author"`` names a value inside one, for
filters and vectorizers.

>>> clean_object("metadata", {"author": "brenckman,m.", "pages": [1, 2]})
{'author': 'brenckman,m.', 'pages': [1, 2]}
>>> value_at({"metadata": {"author": "brenckman,m."}}, "metadata.author")
'brenckman,m.'
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from omniembed.inputs.modality import check_text

MAX_OBJECT_DEPTH = 32
"""Nesting levels an object value may have (SQLite's JSON functions stop at 1,000)."""
MAX_OBJECT_BYTES = 1_000_000
"""Bytes of JSON one object property may take (an ``object[]`` value: all its objects together)."""
_INT64 = (-(2**63), 2**63 - 1)
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def clean_object(name: str, value: Any) -> dict[str, Any]:
    """Check one object value (a dict of JSON values within the limits) and return a JSON-ready copy."""
    if not isinstance(value, Mapping):
        raise ValueError(
            f"property {name!r} is object: give a dict, got {type(value).__name__} {value!r:.60}"
        )
    cleaned = _clean_json(name, value)
    size = len(json.dumps(cleaned, ensure_ascii=False).encode())
    if size > MAX_OBJECT_BYTES:
        raise ValueError(
            f"property {name!r} holds {size} bytes of JSON; an object property takes at most "
            f"{MAX_OBJECT_BYTES}: keep large text in a text property"
        )
    return dict(cleaned)


def clean_objects(name: str, value: Any) -> list[dict[str, Any]]:
    """Check an ``object[]`` value (a list of dicts, all of them within the object limits together)."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"property {name!r} is object[]: give a list of dicts, got {type(value).__name__}")
    items = [clean_object(name, item) for item in value]
    size = len(json.dumps(items, ensure_ascii=False).encode())
    if size > MAX_OBJECT_BYTES:
        raise ValueError(
            f"property {name!r} holds {size} bytes of JSON; an object[] property takes at most "
            f"{MAX_OBJECT_BYTES}: split the object"
        )
    return items


def _clean_json(name: str, root: Any) -> Any:
    """A copy of ``root`` with every value checked, walked with a stack (a value may nest very deep)."""
    out: list[Any] = [None]
    todo: list[tuple[Any, list[Any] | dict[str, Any], Any, int]] = [(root, out, 0, 1)]
    while todo:
        value, parent, slot, depth = todo.pop()
        if isinstance(value, (Mapping, list, tuple)):
            if depth > MAX_OBJECT_DEPTH:
                raise ValueError(
                    f"property {name!r} nests more than {MAX_OBJECT_DEPTH} levels deep; flatten it"
                )
            if isinstance(value, Mapping):
                container: Any = {}
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise ValueError(f"property {name!r} has a key {key!r:.60} that is not text")
                    check_text(key, f"a key of property {name!r}")
                    container[key] = None
                    todo.append((item, container, key, depth + 1))
            else:
                container = [None] * len(value)
                todo.extend((item, container, i, depth + 1) for i, item in enumerate(value))
            parent[slot] = container
        else:
            parent[slot] = _scalar(name, value)
    return out[0]


def _scalar(name: str, value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return check_text(value, f"property {name!r}")
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError(f"property {name!r} holds {value!r:.60}, outside the 64-bit integer range")
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise ValueError(
        f"property {name!r} holds {type(value).__name__} {value!r:.60}; objects hold text, finite "
        "numbers, booleans, null, lists and dicts"
    )


def split_path(path: str) -> tuple[str, list[str]]:
    """Split ``"metadata.author"`` into the property and the keys below it, checking each key.

    >>> split_path("metadata.author")
    ('metadata', ['author'])
    """
    head, *keys = path.split(".")
    for key in keys:
        if not _KEY.fullmatch(key):
            raise ValueError(
                f"path {path!r} has a key {key!r} that is not letters, digits and '_' (not first); "
                "paths name keys like metadata.author"
            )
    return head, keys


def value_at(properties: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (``None`` where a key is missing; through lists, every element's)."""
    head, *keys = path.split(".")
    value: Any = properties.get(head)
    for key in keys:
        if isinstance(value, list):
            found = [item.get(key) for item in value if isinstance(item, Mapping)]
            value = [item for item in found if item is not None] or None
        elif isinstance(value, Mapping):
            value = value.get(key)
        else:
            return None
    return value
