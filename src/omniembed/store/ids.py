"""Deterministic object uuids from an id field of the source data.

Every bulk path (``insert_many(id_field=...)``, ``omniembed import --id-field``, the REST batch
route's ``id_field``) names an object by :func:`object_uuid`, so importing the same data twice finds
the same uuids and updates the objects instead of adding copies.
"""

from __future__ import annotations

import uuid
from typing import Any

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "omniembed:object")
"""The uuid5 namespace of object ids (fixed: changing it would change every derived uuid)."""


def object_uuid(collection: str, value: Any) -> str:
    """The uuid of the object whose id field holds ``value`` in ``collection``: uuid5 of both.

    Text and integers are taken as their text, so ``7`` and ``"7"`` name the same object.

    >>> object_uuid("Docs", "1") == object_uuid("Docs", 1) != object_uuid("Other", "1")
    True
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"an id field holds text or an integer, got {type(value).__name__} {value!r:.60}")
    if value == "":
        raise ValueError("the id field is empty; every object needs a value there")
    # Collection names hold no '/', so the pair is unambiguous.
    return str(uuid.uuid5(NAMESPACE, f"{collection}/{value}"))
