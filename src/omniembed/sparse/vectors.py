"""Sparse vectors given as ``{"indices": [...], "values": [...]}``: the one place they are checked."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omniembed.errors import InvalidInputError

FLOAT32_MAX = 3.4028234663852886e38
"""The largest weight: stored vectors keep float32 weights."""
FLOAT32_TINY = 2.0**-149
"""The smallest positive float32; a smaller weight would be stored as 0."""


@dataclass(frozen=True)
class SparseVector:
    """A checked sparse vector: strictly increasing token ids and their finite, positive weights."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    def as_dict(self) -> dict[str, list[Any]]:
        """The JSON shape: ``{"indices": [...], "values": [...]}``."""
        return {"indices": list(self.indices), "values": list(self.values)}


def check_sparse(
    vector: Mapping[str, Any], vocab_size: int | None = None, *, name: str = "sparse vector"
) -> SparseVector:
    """Check a sparse vector given as ``{"indices": [...], "values": [...]}`` and return it.

    Indices must be integers in ``[0, vocab_size)``, strictly increasing (sorted, no duplicates);
    values finite and positive (a learned sparse model gives no zero or negative weight; leave a
    zero weight out). Zero-length vectors are fine.

    Args:
        vector: the mapping to check.
        vocab_size: the model's vocabulary size, when known.
        name: what to call the vector in errors (``"object 3's vector 'splade'"``).

    >>> check_sparse({"indices": [3, 17], "values": [0.5, 1.25]}, vocab_size=100)
    SparseVector(indices=(3, 17), values=(0.5, 1.25))
    """
    if not isinstance(vector, Mapping) or set(vector) != {"indices", "values"}:
        raise InvalidInputError(f'{name} must be {{"indices": [...], "values": [...]}}, got {_show(vector)}')
    indices, values = vector["indices"], vector["values"]
    for key, items in (("indices", indices), ("values", values)):
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            raise InvalidInputError(f"{name}: {key} must be a list, got {_show(items)}")
    if len(indices) != len(values):
        raise InvalidInputError(
            f"{name} has {len(indices)} indices and {len(values)} values; give one value per index"
        )
    checked_indices = tuple(
        _check_index(index, position, vocab_size, name) for position, index in enumerate(indices)
    )
    for position in range(1, len(checked_indices)):
        before, here = checked_indices[position - 1], checked_indices[position]
        if here == before:
            raise InvalidInputError(
                f"{name}: index {here} appears twice; give each index once (sum its weights)"
            )
        if here < before:
            raise InvalidInputError(
                f"{name}: indices must be sorted in increasing order, found {before} before {here}; "
                "sort the pairs"
            )
    checked_values = tuple(_check_value(value, position, name) for position, value in enumerate(values))
    return SparseVector(checked_indices, checked_values)


def _check_index(index: Any, position: int, vocab_size: int | None, name: str) -> int:
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise InvalidInputError(
            f"{name}: indices[{position}] must be an integer token id, got {_show(index)}"
        )
    number = int(index)
    if number < 0:
        raise InvalidInputError(f"{name}: indices[{position}] is {number}; token ids are 0 or more")
    if vocab_size is not None and number >= vocab_size:
        raise InvalidInputError(
            f"{name}: indices[{position}] is {number}, beyond the vocabulary of {vocab_size} tokens "
            f"(ids 0..{vocab_size - 1}); encode it with the collection's sparse model"
        )
    return number


def _check_value(value: Any, position: int, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"{name}: values[{position}] must be a number, got {_show(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInputError(f"{name}: values[{position}] is {number}; weights must be finite numbers")
    if number < FLOAT32_TINY:
        raise InvalidInputError(
            f"{name}: values[{position}] is {number}; weights must be positive float32 numbers "
            "(leave zero weights out)"
        )
    if number > FLOAT32_MAX:
        raise InvalidInputError(
            f"{name}: values[{position}] is {number}; weights are kept as float32, at most {FLOAT32_MAX:.4g}"
        )
    return number


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
