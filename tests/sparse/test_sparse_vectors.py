"""Sparse vectors given as {indices, values} are checked, with errors that name the value and the fix."""

from __future__ import annotations

import math

import numpy as np
import pytest

from omniembed import InvalidInputError
from omniembed.sparse import SparseVector, check_sparse


def test_a_good_vector_comes_back_checked() -> None:
    vector = check_sparse(
        {"indices": [1, np.int64(5), 9], "values": [0.5, 2, np.float32(1.5)]}, vocab_size=10
    )
    assert vector == SparseVector((1, 5, 9), (0.5, 2.0, 1.5))
    assert vector.as_dict() == {"indices": [1, 5, 9], "values": [0.5, 2.0, 1.5]}
    assert check_sparse({"indices": [], "values": []}) == SparseVector((), ())


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        ({"indices": [3, 1], "values": [1.0, 1.0]}, "sorted in increasing order, found 3 before 1"),
        ({"indices": [1, 1], "values": [1.0, 2.0]}, "index 1 appears twice"),
        ({"indices": [1, 2], "values": [1.0, -0.5]}, r"values\[1\] is -0.5; weights must be positive"),
        ({"indices": [1], "values": [0.0]}, "leave zero weights out"),
        ({"indices": [1], "values": [math.nan]}, "must be finite"),
        ({"indices": [1], "values": [math.inf]}, "must be finite"),
        ({"indices": [10], "values": [1.0]}, "beyond the vocabulary of 10 tokens"),
        ({"indices": [-1], "values": [1.0]}, "token ids are 0 or more"),
        ({"indices": [1.5], "values": [1.0]}, "must be an integer token id"),
        ({"indices": [True], "values": [1.0]}, "must be an integer token id"),
        ({"indices": [1], "values": ["2"]}, "must be a number"),
        ({"indices": [1, 2], "values": [1.0]}, "2 indices and 1 values"),
        ({"indices": "12", "values": [1.0]}, "indices must be a list"),
        ({"indices": [1]}, r'must be \{"indices"'),
        ([1, 2], r'must be \{"indices"'),
    ],
)
def test_bad_vectors_are_refused(vector: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        check_sparse(vector, vocab_size=10, name="object 0's vector 'splade'")  # type: ignore[arg-type]


def test_the_error_names_the_vector_and_is_a_value_of_the_wrong_kind() -> None:
    with pytest.raises(TypeError, match="object 7's vector 'splade': index 4 appears twice"):
        check_sparse({"indices": [4, 4], "values": [1, 1]}, name="object 7's vector 'splade'")
