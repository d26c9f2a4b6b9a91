"""Losses with in-batch negatives: each anchor ranks its own positive above every other candidate."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from omniembed.embedding.similarity import cos_sim
from omniembed.training.losses.base import ColumnSpec, EmbeddingLoss

if TYPE_CHECKING:
    from omniembed.embedding.encoder import SentenceTransformer

Similarity = Callable[[Tensor, Tensor], Tensor]


def ranking_loss(anchors: Tensor, candidates: list[Tensor], scale: float, similarity: Similarity) -> Tensor:
    """Cross-entropy of each anchor over every candidate of the batch, its positive the target.

    ``candidates[0]`` holds the positives (row ``i`` for anchor ``i``); further entries hold hard
    negatives, which every anchor scores too.
    """
    scores = similarity(anchors, torch.cat(candidates)) * scale
    target = torch.arange(len(anchors), device=anchors.device)
    return torch.nn.functional.cross_entropy(scores, target)


class MultipleNegativesRankingLoss(EmbeddingLoss):
    """Rank each anchor's positive above the other rows' positives and every hard negative.

    Columns: ``(anchor, positive[, negative...])``. Use the ``no_duplicates`` batch sampler so that
    a repeated text never serves as a false negative.

    Args:
        model: the model being trained.
        scale: the inverse temperature applied to the similarities (20 suits cosine).
        similarity_fct: scores every anchor against every candidate (default: cosine).
        symmetric: also rank each positive's anchor above the other anchors, and average the two.
    """

    columns = ColumnSpec(min_inputs=2, example="(anchor, positive[, negative...])")

    def __init__(
        self,
        model: SentenceTransformer,
        scale: float = 20.0,
        similarity_fct: Similarity = cos_sim,
        symmetric: bool = False,
    ) -> None:
        super().__init__(model)
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale!r}")
        self.scale = scale
        self.similarity_fct = similarity_fct
        self.symmetric = symmetric

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """Average cross-entropy over the anchors (and over the positives when symmetric)."""
        if len(embeddings) < 2:
            raise ValueError(f"{type(self).__name__} needs at least an anchor and a positive column")
        anchors, positives = embeddings[0], embeddings[1]
        loss = ranking_loss(anchors, embeddings[1:], self.scale, self.similarity_fct)
        if self.symmetric:
            backward = ranking_loss(positives, [anchors], self.scale, self.similarity_fct)
            loss = (loss + backward) / 2
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        """The scale, similarity and direction."""
        name = getattr(self.similarity_fct, "__name__", repr(self.similarity_fct))
        return {"scale": self.scale, "similarity_fct": name, "symmetric": self.symmetric}


class MultipleNegativesSymmetricRankingLoss(MultipleNegativesRankingLoss):
    """``MultipleNegativesRankingLoss`` ranking in both directions (anchor to positive and back),
    the two averaged; hard negatives count in the anchor-to-positive direction only."""

    def __init__(
        self, model: SentenceTransformer, scale: float = 20.0, similarity_fct: Similarity = cos_sim
    ) -> None:
        super().__init__(model, scale, similarity_fct, symmetric=True)
