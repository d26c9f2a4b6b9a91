"""Distillation losses: a student learns a teacher's embeddings (MSE) or score margins (MarginMSE)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from omniembed.embedding.similarity import pairwise_dot_score
from omniembed.training.losses.base import ColumnSpec, EmbeddingLoss

if TYPE_CHECKING:
    from omniembed.embedding.encoder import SentenceTransformer


class MSELoss(EmbeddingLoss):
    """Mean squared error between the student's embedding of each text column and the label.

    Columns: one or more text columns (a source sentence and its translations, say) and a
    ``label`` column holding the teacher's embedding of the source: every column learns to land
    where the teacher puts it (multilingual knowledge distillation). A label of shape
    ``(columns, dim)`` per row gives each column its own target.
    """

    columns = ColumnSpec(
        min_inputs=1, label="required", label_kind="vector", example="(english, french, label)"
    )

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The mean over the columns of each column's MSE against its target."""
        if labels is None:
            raise ValueError("MSELoss needs the teacher's embeddings in a 'label' column")
        labels = labels.detach()
        if labels.dim() == 2:
            targets = [labels] * len(embeddings)
        elif labels.dim() == 3 and labels.shape[1] == len(embeddings):
            targets = list(labels.unbind(1))
        else:
            raise ValueError(
                f"MSELoss labels must be (rows, dim) or (rows, {len(embeddings)}, dim), "
                f"got {tuple(labels.shape)}"
            )
        losses = [
            nn.functional.mse_loss(student, target.to(student.device, student.dtype))
            for student, target in zip(embeddings, targets, strict=True)
        ]
        return torch.stack(losses).mean()


class MarginMSELoss(EmbeddingLoss):
    """Match the student's score margins ``sim(q, pos) - sim(q, neg)`` to a teacher's.

    Columns: ``(query, positive, negative[, negative...], label)``; each label is the teacher's
    margins (one per negative) or its scores (positive first, then each negative).
    """

    columns = ColumnSpec(
        min_inputs=3, label="required", label_kind="any", example="(query, positive, negative, label)"
    )

    def __init__(
        self,
        model: SentenceTransformer,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = pairwise_dot_score,
    ) -> None:
        super().__init__(model)
        self.similarity_fct = similarity_fct

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """MSE between the student's margins and the teacher's."""
        if labels is None:
            raise ValueError("MarginMSELoss needs the teacher's margins or scores in a 'label' column")
        query, positive, negatives = embeddings[0], embeddings[1], embeddings[2:]
        rows = len(query)
        if labels.shape == (rows, len(negatives) + 1):
            labels = labels[:, :1] - labels[:, 1:]
        if labels.shape == (rows,):
            labels = labels.unsqueeze(1)
        if labels.shape != (rows, len(negatives)):
            raise ValueError(
                f"MarginMSELoss labels must be (rows, {len(negatives)}) margins "
                f"or (rows, {len(negatives) + 1}) "
                f"scores, got {tuple(labels.shape)}"
            )
        positive_scores = self.similarity_fct(query, positive)
        margins = torch.stack([positive_scores - self.similarity_fct(query, neg) for neg in negatives], dim=1)
        return nn.functional.mse_loss(margins, labels.detach().to(margins.dtype))

    def get_config_dict(self) -> dict[str, Any]:
        """The similarity."""
        return {"similarity_fct": getattr(self.similarity_fct, "__name__", "")}
