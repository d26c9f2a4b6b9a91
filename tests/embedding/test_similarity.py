"""Similarity functions agree with the reference library's on matrices, lists and single vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers import util

from omniembed.embedding import similarity as ours

RNG = np.random.default_rng(0)
A = RNG.normal(size=(5, 16)).astype(np.float32)
B = RNG.normal(size=(7, 16)).astype(np.float32)

MATRIX = [
    (ours.cos_sim, util.cos_sim),
    (ours.dot_score, util.dot_score),
    (ours.euclidean_sim, util.euclidean_sim),
    (ours.manhattan_sim, util.manhattan_sim),
]
PAIRWISE = [
    (ours.pairwise_cos_sim, util.pairwise_cos_sim),
    (ours.pairwise_dot_score, util.pairwise_dot_score),
    (ours.pairwise_euclidean_sim, util.pairwise_euclidean_sim),
    (ours.pairwise_manhattan_sim, util.pairwise_manhattan_sim),
]


@pytest.mark.parametrize(("mine", "reference"), MATRIX)
def test_matrix_functions(mine: ours.SimilarityFn, reference: ours.SimilarityFn) -> None:
    expected = reference(A, B).numpy()
    np.testing.assert_allclose(mine(A, B).numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(mine(torch.from_numpy(A), list(B)).numpy(), expected, atol=1e-5)
    assert mine(A[0], B).shape == (1, 7)


@pytest.mark.parametrize(("mine", "reference"), PAIRWISE)
def test_pairwise_functions(mine: ours.SimilarityFn, reference: ours.SimilarityFn) -> None:
    np.testing.assert_allclose(mine(A, B[:5]).numpy(), reference(A, B[:5]).numpy(), atol=1e-5)


def test_integer_embeddings_are_scored_as_floats() -> None:
    quantized = np.array([[1, 2], [3, 4]], dtype=np.int8)
    assert ours.dot_score(quantized, quantized).tolist() == [[5.0, 11.0], [11.0, 25.0]]
