"""One column of a Ray batch as model inputs, and embeddings back as plain Arrow columns.

The output columns are Arrow types any Parquet reader understands: a fixed-size list per row
(one vector), a list of fixed-size lists (a matrix of token vectors), or a struct of ``indices`` and
``values`` lists (a sparse vector).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Modality = Literal["text", "image"]
OnBad = Literal["refuse", "skip"]


@dataclass(frozen=True)
class BadRow:
    """A row the model cannot take: its place in the batch, how to name it, and why."""

    position: int
    label: str
    reason: str

    def message(self, column: str) -> str:
        return f"{self.label}: column {column!r} {self.reason}"


def column_values(table: Any, name: str) -> list[Any]:
    """The values of one column of a ``pyarrow.Table`` (Ray's tensor columns as one array per row)."""
    import pyarrow as pa

    if name not in table.column_names:
        raise KeyError(
            f"the dataset has no column {name!r} (it has {', '.join(table.column_names)}); "
            "name the input column with column=..."
        )
    column = table.column(name)
    if isinstance(column.type, pa.ExtensionType):  # Ray's tensor columns (ray.data.read_images)
        return [row for chunk in column.chunks for row in chunk.to_numpy()]
    values: list[Any] = column.to_pylist()
    return values


def row_label(keys: Sequence[Any] | None, key_column: str | None, position: int) -> str:
    """How an error names a row: by its key when there is a key column, else by its place in the batch."""
    if keys is not None:
        return f"row {key_column}={keys[position]!r:.80}"
    return f"row {position} of its batch"


def why_bad(value: Any, modality: Modality) -> str | None:
    """Why ``value`` cannot be embedded as ``modality``; ``None`` when it can.

    >>> why_bad(None, "text")
    'is null'
    >>> why_bad(7, "text")
    'holds int 7, not text'
    >>> why_bad("a cat", "text") is None
    True
    """
    if value is None:
        return "is null"
    if modality == "text":
        return None if isinstance(value, str) else f"holds {type(value).__name__} {value!r:.60}, not text"
    if isinstance(value, (str, bytes, np.ndarray)):
        return None
    return f"holds {type(value).__name__}, not an image path, image bytes or an array of pixels"


def find_bad(
    values: Sequence[Any], modality: Modality, keys: Sequence[Any] | None, key_column: str | None
) -> list[BadRow]:
    """The rows whose value the model cannot take, in batch order."""
    bad = []
    for position, value in enumerate(values):
        reason = why_bad(value, modality)
        if reason is not None:
            bad.append(BadRow(position, row_label(keys, key_column, position), reason))
    return bad


def as_inputs(values: Sequence[Any], modality: Modality) -> list[Any]:
    """Model inputs for checked values: texts as they are, images wrapped so a path reads as an image."""
    if modality == "text":
        return list(values)
    return [{"image": value} for value in values]


def batch_digest(values: Sequence[Any]) -> str:
    """A short fingerprint of a batch's inputs, the same when a retried task sees the batch again."""
    digest = hashlib.blake2b(digest_size=8)
    for value in values:
        digest.update(value if isinstance(value, bytes) else repr(value)[:1000].encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def dense_column(matrix: np.ndarray) -> Any:
    """One vector per row as a fixed-size list column (the matrix's dtype kept)."""
    import pyarrow as pa

    width = int(matrix.shape[1]) if matrix.ndim == 2 else 0
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(matrix).reshape(-1)), width)


def multi_vector_column(matrices: Sequence[np.ndarray], width: int) -> Any:
    """One (tokens x width) matrix per row as a list of fixed-size lists."""
    import pyarrow as pa

    counts = np.array([len(matrix) for matrix in matrices], dtype=np.int32)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    parts = [np.asarray(m, dtype=np.float32).reshape(-1) for m in matrices]
    flat = np.concatenate(parts or [np.zeros(0, np.float32)])
    rows = pa.FixedSizeListArray.from_arrays(pa.array(flat.astype(np.float32)), width)
    return pa.ListArray.from_arrays(offsets, rows)


def sparse_column(matrix: Any) -> Any:
    """Rows of a torch sparse (or dense) matrix as a struct of ``indices`` and ``values`` lists."""
    import pyarrow as pa

    coo = (matrix if matrix.is_sparse else matrix.to_sparse()).coalesce()
    rows, columns = coo.indices().numpy()
    values = coo.values().float().numpy()
    offsets = pa.array(np.searchsorted(rows, np.arange(matrix.shape[0] + 1)).astype(np.int32))
    return pa.StructArray.from_arrays(
        [
            pa.ListArray.from_arrays(offsets, pa.array(columns.astype(np.int32))),
            pa.ListArray.from_arrays(offsets, pa.array(values)),
        ],
        names=["indices", "values"],
    )
