"""Losses over scored pairs ``(sentence1, sentence2, score)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from omniembed.embedding.similarity import pairwise_cos_sim
from omniembed.training.losses.base import ColumnSpec, EmbeddingLoss, check_batch_labels

if TYPE_CHECKING:
    from omniembed.embedding.encoder import SentenceTransformer

PairSimilarity = Callable[[Tensor, Tensor], Tensor]
PAIR_COLUMNS = ColumnSpec(
    min_inputs=2, max_inputs=2, label="required", example="(sentence1, sentence2, score)"
)


def pairwise_angle_sim(a: Tensor, b: Tensor) -> Tensor:
    """AnglE similarity: ``|cos + sin|`` of the unit vectors, dimension ``i`` paired with ``i + d/2``
    (an odd width is padded with one zero)."""
    if a.shape[1] % 2:
        a = nn.functional.pad(a, (0, 1))
        b = nn.functional.pad(b, (0, 1))
    a = nn.functional.normalize(a, p=2, dim=1)
    b = nn.functional.normalize(b, p=2, dim=1)
    a_re, a_im = torch.chunk(a, 2, dim=1)
    b_re, b_im = torch.chunk(b, 2, dim=1)
    cosines = (a * b).sum(dim=1)
    sines = (a_im * b_re - a_re * b_im).sum(dim=1)
    return torch.abs(cosines + sines)


def cosent(scores: Tensor, labels: Tensor) -> Tensor:
    """``log(1 + sum exp(s_j - s_i))`` over every pair whose label says ``i`` ranks above ``j``."""
    if labels.dtype == torch.bool:
        labels = labels.int()
    differences = scores[None, :] - scores[:, None]  # [i, j] = s_j - s_i
    ranked_above = labels[:, None] > labels[None, :]
    terms = differences[ranked_above]
    return torch.logsumexp(torch.cat([terms.new_zeros(1), terms]), dim=0)


class CoSENTLoss(EmbeddingLoss):
    """Order the pairs' similarities as their scores are ordered (CoSENT).

    Args:
        model: the model being trained.
        scale: the inverse temperature applied to the similarities.
        similarity_fct: one score per pair (default: cosine).
    """

    columns = PAIR_COLUMNS

    def __init__(
        self,
        model: SentenceTransformer,
        scale: float = 20.0,
        similarity_fct: PairSimilarity = pairwise_cos_sim,
    ) -> None:
        super().__init__(model)
        self.scale = scale
        self.similarity_fct = similarity_fct

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The CoSENT loss of the batch's pairs."""
        labels = check_batch_labels(self, labels, len(embeddings[0]))
        scores = self.similarity_fct(embeddings[0], embeddings[1]).float() * self.scale
        return cosent(scores, labels)

    def get_config_dict(self) -> dict[str, Any]:
        """The scale and similarity."""
        return {"scale": self.scale, "similarity_fct": getattr(self.similarity_fct, "__name__", "")}


class AnglELoss(CoSENTLoss):
    """CoSENT over the AnglE similarity (angles in complex space), which keeps gradients away from
    the flat ends of the cosine."""

    def __init__(self, model: SentenceTransformer, scale: float = 20.0) -> None:
        super().__init__(model, scale, similarity_fct=pairwise_angle_sim)


class CosineSimilarityLoss(EmbeddingLoss):
    """Regress each pair's cosine similarity onto its score (MSE by default).

    Args:
        model: the model being trained.
        loss_fct: compares the cosines with the scores.
        cos_score_transformation: applied to the cosines first.
    """

    columns = PAIR_COLUMNS

    def __init__(
        self,
        model: SentenceTransformer,
        loss_fct: nn.Module | None = None,
        cos_score_transformation: nn.Module | None = None,
    ) -> None:
        super().__init__(model)
        self.loss_fct = loss_fct if loss_fct is not None else nn.MSELoss()
        self.cos_score_transformation = cos_score_transformation or nn.Identity()

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The regression loss of the pairs' cosines against their scores."""
        labels = check_batch_labels(self, labels, len(embeddings[0]))
        cosines = self.cos_score_transformation(torch.cosine_similarity(embeddings[0], embeddings[1]))
        loss: Tensor = self.loss_fct(cosines, labels.float())
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        """The regression loss."""
        return {"loss_fct": type(self.loss_fct).__name__}


def cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    """``1 - cos(a[i], b[i])``."""
    return 1 - nn.functional.cosine_similarity(a, b)


def euclidean_distance(a: Tensor, b: Tensor) -> Tensor:
    """``||a[i] - b[i]||``, as torch's pairwise distance computes it."""
    return nn.functional.pairwise_distance(a, b, p=2)


def manhattan_distance(a: Tensor, b: Tensor) -> Tensor:
    """``|a[i] - b[i]|_1``, as torch's pairwise distance computes it."""
    return nn.functional.pairwise_distance(a, b, p=1)


class ContrastiveLoss(EmbeddingLoss):
    """Pull pairs labelled 1 together; push pairs labelled 0 at least ``margin`` apart.

    Args:
        model: the model being trained.
        distance_metric: the distance between the two sides of a pair (default: cosine distance).
        margin: how far apart negative pairs should be.
        size_average: average over the batch (otherwise sum).
    """

    columns = ColumnSpec(
        min_inputs=2, max_inputs=2, label="required", example="(sentence1, sentence2, label)"
    )

    def __init__(
        self,
        model: SentenceTransformer,
        distance_metric: PairSimilarity = cosine_distance,
        margin: float = 0.5,
        size_average: bool = True,
    ) -> None:
        super().__init__(model)
        self.distance_metric = distance_metric
        self.margin = margin
        self.size_average = size_average

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The contrastive loss of the batch's pairs."""
        labels = check_batch_labels(self, labels, len(embeddings[0])).float()
        distances = self.distance_metric(embeddings[0], embeddings[1])
        far = nn.functional.relu(self.margin - distances)
        losses = 0.5 * (labels * distances.pow(2) + (1 - labels) * far.pow(2))
        return losses.mean() if self.size_average else losses.sum()

    def get_config_dict(self) -> dict[str, Any]:
        """The distance, margin and reduction."""
        name = getattr(self.distance_metric, "__name__", "")
        return {"distance_metric": name, "margin": self.margin, "size_average": self.size_average}
