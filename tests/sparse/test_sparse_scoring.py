"""Sparse scores equal the dense ones; top-k pruning and decoding."""

from __future__ import annotations

import pytest
import torch
import transformers

from omniembed.sparse.scoring import decode_tokens, select_max_active_dims, sparse_similarity

from helpers.models import MINILM_DIR


@pytest.fixture
def vectors() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    a = torch.relu(torch.randn(3, 50)) * (torch.rand(3, 50) > 0.7)
    b = torch.relu(torch.randn(4, 50)) * (torch.rand(4, 50) > 0.7)
    return a, b


@pytest.mark.parametrize("sparse_side", ["a", "b", "both", "neither"])
def test_dot_and_cosine_equal_dense(vectors: tuple[torch.Tensor, torch.Tensor], sparse_side: str) -> None:
    a, b = vectors
    left = a.to_sparse() if sparse_side in ("a", "both") else a
    right = b.to_sparse() if sparse_side in ("b", "both") else b
    assert torch.allclose(sparse_similarity(left, right, "dot"), a @ b.T, atol=1e-6)
    cosine = torch.nn.functional.normalize(a, dim=1) @ torch.nn.functional.normalize(b, dim=1).T
    assert torch.allclose(sparse_similarity(left, right, "cosine"), cosine, atol=1e-6)


def test_pairwise(vectors: tuple[torch.Tensor, torch.Tensor]) -> None:
    a, b = vectors
    b = b[:3]
    assert torch.allclose(
        sparse_similarity(a.to_sparse(), b.to_sparse(), "dot", pairwise=True), (a * b).sum(1)
    )
    with pytest.raises(ValueError, match="as many rows"):
        sparse_similarity(a, vectors[1], "dot", pairwise=True)


def test_select_max_active_dims_keeps_the_largest() -> None:
    rows = torch.tensor([[0.1, 3.0, 0.0, 2.0, 1.0], [5.0, 0.0, 0.0, 0.0, 0.0]])
    kept = select_max_active_dims(rows, 2)
    assert kept.tolist() == [[0.0, 3.0, 0.0, 2.0, 0.0], [5.0, 0.0, 0.0, 0.0, 0.0]]
    assert select_max_active_dims(rows, None) is rows


def test_decode_sorts_heaviest_first() -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(MINILM_DIR))
    vector = torch.zeros(30522)
    ids = tokenizer.convert_tokens_to_ids(["weather", "sunny", "today"])
    vector[ids] = torch.tensor([2.0, 1.0, 0.5])
    assert decode_tokens(vector.to_sparse(), tokenizer, top_k=2) == [("weather", 2.0), ("sunny", 1.0)]
    assert decode_tokens(torch.stack([vector, torch.zeros(30522)]), tokenizer) == [
        [("weather", 2.0), ("sunny", 1.0), ("today", 0.5)],
        [],
    ]
