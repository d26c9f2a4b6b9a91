"""Pooling maths on hand-made tensors."""

from __future__ import annotations

import pytest
import torch

from omniembed.modules import Pooling


def pool(mode: str, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    features = {"token_embeddings": tokens, "attention_mask": mask}
    return Pooling(tokens.shape[-1], mode)(features)["sentence_embedding"]


@pytest.mark.parametrize("mode", ["mean", "mean_sqrt_len_tokens", "weightedmean"])
def test_half_precision_sums_in_float32(mode: str) -> None:
    generator = torch.Generator().manual_seed(0)
    drift = torch.linspace(0, 6, 600).view(1, 600, 1)
    tokens = (torch.randn(2, 600, 8, generator=generator) + drift).to(torch.bfloat16)
    mask = torch.ones(2, 600, dtype=torch.int64)
    mask[1, 400:] = 0
    half = pool(mode, tokens, mask)
    assert half.dtype == torch.bfloat16
    # Only the final cast may round: positions past 256 and long sums must not lose bits in bf16.
    exact = pool(mode, tokens.float(), mask).to(torch.bfloat16)
    assert torch.equal(half, exact)


def test_weighted_mean_ignores_left_padding() -> None:
    tokens = torch.tensor([[[0.0], [1.0], [3.0]], [[1.0], [3.0], [9.0]]])
    mask = torch.tensor([[0, 1, 1], [1, 1, 0]])
    # weights 1, 2 on the real tokens of both rows, whatever side the padding is on
    assert pool("weightedmean", tokens, mask).flatten().tolist() == pytest.approx([7 / 3, 7 / 3])


def test_last_token_of_an_empty_row_is_zero() -> None:
    tokens = torch.ones(1, 3, 2)
    assert pool("lasttoken", tokens, torch.zeros(1, 3, dtype=torch.int64)).tolist() == [[0.0, 0.0]]
