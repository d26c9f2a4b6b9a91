"""TripletLoss: the anchor closer to the positive than to the negative, by a margin."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from omniembed.training.losses.base import ColumnSpec, EmbeddingLoss
from omniembed.training.losses.pairs import cosine_distance

if TYPE_CHECKING:
    from omniembed.embedding.encoder import SentenceTransformer


def euclidean_norm_distance(a: Tensor, b: Tensor) -> Tensor:
    """``||a[i] - b[i]||`` (no epsilon, unlike torch's pairwise distance)."""
    distance: Tensor = (a - b).norm(dim=-1)
    return distance


def sum_abs_distance(a: Tensor, b: Tensor) -> Tensor:
    """``sum |a[i] - b[i]|`` (no epsilon)."""
    return (a - b).abs().sum(dim=-1)


TRIPLET_DISTANCES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "euclidean": euclidean_norm_distance,
    "cosine": cosine_distance,
    "manhattan": sum_abs_distance,
}


class TripletLoss(EmbeddingLoss):
    """``relu(d(anchor, positive) - d(anchor, negative) + margin)``, averaged over the batch.

    Args:
        model: the model being trained.
        distance_metric: ``"euclidean"`` (default), ``"cosine"``, ``"manhattan"``, or a function of
            two embedding matrices giving one distance per row.
        triplet_margin: how much closer the positive must be.
    """

    columns = ColumnSpec(min_inputs=3, max_inputs=3, example="(anchor, positive, negative)")

    def __init__(
        self,
        model: SentenceTransformer,
        distance_metric: str | Callable[[Tensor, Tensor], Tensor] = "euclidean",
        triplet_margin: float = 5.0,
    ) -> None:
        super().__init__(model)
        if isinstance(distance_metric, str):
            if distance_metric not in TRIPLET_DISTANCES:
                raise ValueError(
                    f"unknown distance_metric {distance_metric!r}; use one of {sorted(TRIPLET_DISTANCES)}"
                )
            distance_metric = TRIPLET_DISTANCES[distance_metric]
        self.distance_metric = distance_metric
        self.triplet_margin = triplet_margin

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The mean triplet hinge of the batch."""
        anchor, positive, negative = embeddings
        positive_distance = self.distance_metric(anchor, positive)
        negative_distance = self.distance_metric(anchor, negative)
        return nn.functional.relu(positive_distance - negative_distance + self.triplet_margin).mean()

    def get_config_dict(self) -> dict[str, Any]:
        """The distance and margin."""
        return {
            "distance_metric": getattr(self.distance_metric, "__name__", ""),
            "triplet_margin": self.triplet_margin,
        }
