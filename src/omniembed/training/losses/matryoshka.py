"""MatryoshkaLoss: train a loss at several embedding widths at once, so that truncated embeddings
(``truncate_dim``) keep their quality."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from omniembed.training.losses.base import EmbeddingLoss

if TYPE_CHECKING:
    from omniembed.embedding.encoder import SentenceTransformer
    from omniembed.modules import Features


def shrink(embeddings: Tensor, dim: int) -> Tensor:
    """Keep the first ``dim`` dimensions of each row and scale the rows to unit length."""
    return nn.functional.normalize(embeddings[..., :dim].float(), p=2, dim=-1).to(embeddings.dtype)


def full_dimension(model: SentenceTransformer) -> int:
    """The model's embedding width before any ``truncate_dim``."""
    truncate_dim = model.truncate_dim
    model.truncate_dim = None
    try:
        return model.get_sentence_embedding_dimension()
    finally:
        model.truncate_dim = truncate_dim


class MatryoshkaLoss(EmbeddingLoss):
    """Sum of ``loss`` on embeddings truncated to each of ``matryoshka_dims`` (and renormalized).

    The model runs once per batch; each width reuses its embeddings.

    Args:
        model: the model being trained.
        loss: the loss to apply at each width (any loss of this package but MatryoshkaLoss).
        matryoshka_dims: the widths, such as ``[384, 256, 128, 64]``; none above the model's.
        matryoshka_weights: one weight per width (default: 1 each).
        n_dims_per_step: train a random subset of this many widths per step (-1: all).
    """

    def __init__(
        self,
        model: SentenceTransformer,
        loss: EmbeddingLoss,
        matryoshka_dims: Sequence[int],
        matryoshka_weights: Sequence[float] | None = None,
        n_dims_per_step: int = -1,
    ) -> None:
        super().__init__(model)
        if not isinstance(loss, EmbeddingLoss) or isinstance(loss, MatryoshkaLoss):
            raise TypeError(f"MatryoshkaLoss wraps one of the embedding losses, got {type(loss).__name__}")
        dims = list(matryoshka_dims)
        if not dims or any(not isinstance(d, int) or d <= 0 for d in dims):
            raise ValueError(f"matryoshka_dims must be positive integers, got {matryoshka_dims!r}")
        width = full_dimension(model)
        if max(dims) > width:
            raise ValueError(
                f"matryoshka_dims {dims} go above the model's embedding dimension {width}; "
                f"use widths of at most {width}"
            )
        weights = [1.0] * len(dims) if matryoshka_weights is None else list(matryoshka_weights)
        if len(weights) != len(dims):
            raise ValueError(f"give one weight per dimension: {len(dims)} dims, {len(weights)} weights")
        pairs = sorted(zip(dims, weights, strict=True), key=lambda pair: pair[0], reverse=True)
        self.matryoshka_dims = tuple(d for d, _ in pairs)
        self.matryoshka_weights = tuple(w for _, w in pairs)
        self.n_dims_per_step = n_dims_per_step
        self.loss = loss
        self.columns = loss.columns

    def forward(self, features: Sequence[Features], labels: Tensor | None) -> Tensor:
        """The weighted sum of the inner loss at each (sampled) width."""
        embeddings = self.loss.embed(features)
        indices = list(range(len(self.matryoshka_dims)))
        if 0 < self.n_dims_per_step < len(indices):
            indices = sorted(random.sample(indices, self.n_dims_per_step))
        full_width = embeddings[0].shape[-1]
        total: Tensor | None = None
        for index in indices:
            dim = self.matryoshka_dims[index]
            dim_labels = labels
            if labels is not None and labels.dim() in (2, 3) and labels.shape[-1] == full_width:
                dim_labels = labels[..., :dim]
            value = self.loss.compute_loss_from_embeddings([shrink(e, dim) for e in embeddings], dim_labels)
            term = self.matryoshka_weights[index] * value
            total = term if total is None else total + term
        assert total is not None
        return total

    def get_config_dict(self) -> dict[str, Any]:
        """The inner loss and the widths."""
        return {
            "loss": type(self.loss).__name__,
            "matryoshka_dims": list(self.matryoshka_dims),
            "matryoshka_weights": list(self.matryoshka_weights),
            "n_dims_per_step": self.n_dims_per_step,
        }
