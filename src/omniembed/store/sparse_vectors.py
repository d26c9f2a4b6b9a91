"""Sparse vectors in the store: what a caller may give, the checks they pass, and their stored bytes.

A caller gives ``{"indices": [...], "values": [...]}``, a :class:`~omniembed.sparse.SparseVector` or a
1-D torch sparse tensor (what ``SparseEncoder.encode`` returns for one text). Every form passes the
checks of :func:`omniembed.sparse.check_sparse` (numpy arrays take a vectorised path with the same
rules, falling back to that function for its error message). SQLite keeps one as its little-endian
``uint32`` indices followed by its ``float32`` values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from omniembed.errors import InvalidInputError
from omniembed.sparse import SparseVector, check_sparse
from omniembed.sparse.vectors import FLOAT32_MAX, FLOAT32_TINY
from omniembed.store.config import MAX_VOCAB


def is_sparse(value: Any) -> bool:
    """Whether ``value`` is given in one of the sparse forms (a mapping, a ``SparseVector``, a sparse
    tensor)."""
    if isinstance(value, (SparseVector, Mapping)):
        return True
    return bool(getattr(value, "is_sparse", False))


def as_sparse(value: Any, vocab_size: int | None, name: str) -> SparseVector:
    """Check ``value`` as a sparse vector over ``vocab_size`` tokens and return it.

    >>> as_sparse({"indices": [1, 4], "values": [0.5, 2.0]}, 10, "query")
    SparseVector(indices=(1, 4), values=(0.5, 2.0))
    """
    limit = vocab_size if vocab_size is not None else MAX_VOCAB  # ids are stored as 32-bit
    if isinstance(value, SparseVector):
        value = value.as_dict()
    elif getattr(value, "is_sparse", False):
        value = _from_tensor(value, name)
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            f'{name} is a sparse vector: give {{"indices": [...], "values": [...]}}, not '
            f"{type(value).__name__}"
        )
    fast = _checked_arrays(value, limit)
    if fast is not None:
        indices, values = fast
        return SparseVector(tuple(indices.tolist()), tuple(values.tolist()))
    return check_sparse(value, limit, name=name)


def _from_tensor(tensor: Any, name: str) -> dict[str, Any]:
    """The indices and values of a 1-D torch sparse tensor (zeros left out)."""
    if tensor.dim() != 1:
        raise InvalidInputError(
            f"{name}: a sparse tensor of shape {tuple(tensor.shape)} is several vectors; give one (1-D)"
        )
    tensor = tensor.coalesce()
    indices = tensor.indices()[0].numpy()
    values = tensor.values().float().numpy()
    keep = values != 0
    return {"indices": indices[keep], "values": values[keep]}


def _checked_arrays(value: Mapping[str, Any], limit: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The arrays of a well-formed vector, checked without a Python loop; ``None`` for anything else
    (which :func:`check_sparse` then checks one by one, naming what is wrong)."""
    if set(value) != {"indices", "values"}:
        return None
    indices, values = value["indices"], value["values"]
    if not isinstance(indices, np.ndarray) or not isinstance(values, np.ndarray):
        if not isinstance(indices, list) or not isinstance(values, list) or len(indices) < 32:
            return None
        if any(type(i) is not int for i in indices) or any(type(v) is not float for v in values):
            return None
        indices, values = np.array(indices), np.array(values)
    if indices.ndim != 1 or values.ndim != 1 or len(indices) != len(values):
        return None
    if indices.dtype.kind not in "ui" or values.dtype.kind != "f":
        return None
    indices = indices.astype(np.int64)  # np.diff of unsigned ids wraps around
    if len(indices) and (
        int(indices[0]) < 0
        or int(indices[-1]) >= limit
        or not bool(np.all(np.diff(indices) > 0))
        or not bool(np.all(np.isfinite(values)))
        or not bool(np.all((values >= FLOAT32_TINY) & (values <= FLOAT32_MAX)))
    ):
        return None
    return indices.astype(np.int64), values.astype(np.float64)


def to_bytes(vector: SparseVector) -> bytes:
    """The stored form: ``uint32`` indices then ``float32`` values, little-endian."""
    return (
        np.asarray(vector.indices, dtype="<u4").tobytes() + np.asarray(vector.values, dtype="<f4").tobytes()
    )


def arrays_of(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The ``int64`` indices and ``float32`` values of a stored vector."""
    count = len(data) // 8
    indices = np.frombuffer(data, dtype="<u4", count=count).astype(np.int64)
    values = np.frombuffer(data, dtype="<f4", count=count, offset=4 * count).astype(np.float32)
    return indices, values


def from_bytes(data: bytes) -> SparseVector:
    """Read back what :func:`to_bytes` wrote."""
    indices, values = arrays_of(data)
    return SparseVector(tuple(indices.tolist()), tuple(values.tolist()))


def wrong_kind(name: str, sparse: bool, value: Any) -> InvalidInputError | None:
    """The error for a dense vector given to a sparse target or the reverse (``None`` when it fits)."""
    if sparse and not is_sparse(value):
        return InvalidInputError(
            f'vector {name!r} is sparse: give it as {{"indices": [...], "values": [...]}} (token ids '
            "and weights from its sparse model), not a dense list of numbers"
        )
    if not sparse and is_sparse(value):
        return InvalidInputError(
            f"vector {name!r} is dense: give it as a list of numbers; a sparse vector "
            '({"indices", "values"}) goes to a sparse named vector (SelfProvided(sparse=True) or a '
            "Vectorizer over a SparseEncoder)"
        )
    return None
