"""CachedMultipleNegativesRankingLoss: in-batch negatives over a batch larger than fits in memory.

GradCache: embed the batch in mini-batches without keeping activations, compute the loss and its
gradient with respect to the embeddings, then run each mini-batch again with gradients and push
that cached gradient through it. The numbers equal ``MultipleNegativesRankingLoss`` on the whole
batch; memory is that of one mini-batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from omniembed.embedding.similarity import cos_sim
from omniembed.training.losses.ranking import MultipleNegativesRankingLoss, Similarity

if TYPE_CHECKING:
    from omniembed.embedding.encoder import SentenceTransformer
    from omniembed.modules import Features


def slice_features(features: Features, start: int, stop: int) -> Features:
    """Rows ``start:stop`` of a tokenized batch (values that are not per-row kept as they are)."""
    rows = len(features["input_ids"]) if "input_ids" in features else None
    return {
        name: value[start:stop] if isinstance(value, Tensor) and value.dim() and len(value) == rows else value
        for name, value in features.items()
    }


@contextmanager
def replayed_rng(state: Tensor | None) -> Iterator[Tensor]:
    """Run the block from CPU random state ``state`` (or the current one), restoring the outer
    state afterwards; yield the state the block started from (so dropout can be replayed)."""
    outer = torch.get_rng_state()
    start = outer if state is None else state
    torch.set_rng_state(start)
    try:
        yield start
    finally:
        if state is not None:
            torch.set_rng_state(outer)


class CachedMultipleNegativesRankingLoss(MultipleNegativesRankingLoss):
    """``MultipleNegativesRankingLoss`` computed with GradCache, ``mini_batch_size`` rows at a time.

    Args:
        model: the model being trained.
        scale: the inverse temperature applied to the similarities.
        similarity_fct: scores every anchor against every candidate (default: cosine).
        mini_batch_size: rows per forward pass; memory grows with this, not with the batch size.
        symmetric: also rank each positive's anchor above the other anchors.
    """

    def __init__(
        self,
        model: SentenceTransformer,
        scale: float = 20.0,
        similarity_fct: Similarity = cos_sim,
        mini_batch_size: int = 32,
        symmetric: bool = False,
    ) -> None:
        super().__init__(model, scale, similarity_fct, symmetric)
        if mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be a positive integer, got {mini_batch_size!r}")
        self.mini_batch_size = mini_batch_size

    def forward(self, features: Sequence[Features], labels: Tensor | None) -> Tensor:
        """The loss value; its backward pass runs the model again, one mini-batch at a time."""
        states: list[list[Tensor]] = []
        embeddings: list[Tensor] = []
        with torch.no_grad():
            for column in features:
                parts, column_states = [], []
                for chunk in self._chunks(column):
                    with replayed_rng(None) as state:
                        column_states.append(state.clone())
                        parts.append(self.model(dict(chunk))["sentence_embedding"])
                embeddings.append(torch.cat(parts))
                states.append(column_states)
        if not torch.is_grad_enabled():
            return self.compute_loss_from_embeddings(embeddings, labels)
        leaves = [e.detach().requires_grad_() for e in embeddings]
        loss = self.compute_loss_from_embeddings(leaves, labels)
        loss.backward()  # type: ignore[no-untyped-call]
        cached = [leaf.grad for leaf in leaves]
        result = loss.detach().requires_grad_()
        result.register_hook(lambda grad: self._backward(features, states, cached, grad))  # type: ignore[no-untyped-call]
        return result

    def _chunks(self, column: Features) -> Iterator[Features]:
        rows = len(column["input_ids"])
        for start in range(0, rows, self.mini_batch_size):
            yield slice_features(column, start, start + self.mini_batch_size)

    def _backward(
        self,
        features: Sequence[Features],
        states: list[list[Tensor]],
        cached: list[Tensor | None],
        grad_output: Tensor,
    ) -> Tensor:
        """Run each mini-batch again with gradients and push its cached embedding gradient through."""
        with torch.enable_grad():
            for column, column_states, gradient in zip(features, states, cached, strict=True):
                assert gradient is not None
                start = 0
                for chunk, state in zip(self._chunks(column), column_states, strict=True):
                    with replayed_rng(state):
                        output = self.model(dict(chunk))["sentence_embedding"]
                    stop = start + len(output)
                    surrogate = (output * gradient[start:stop] * grad_output).sum()
                    surrogate.backward()
                    start = stop
        return grad_output

    def get_config_dict(self) -> dict[str, Any]:
        """The MultipleNegativesRankingLoss settings and the mini-batch size."""
        return {**super().get_config_dict(), "mini_batch_size": self.mini_batch_size}
