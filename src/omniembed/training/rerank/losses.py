"""Losses for training a ``CrossEncoder``: each scores (query, document) pairs with the model itself.

A batch reaches a loss as its text columns (lists of strings, or lists of lists for listwise
losses) and its labels; the loss pairs the texts, tokenizes them as ``predict`` does, and scores them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from omniembed.training.losses.base import ColumnSpec, check_batch_labels

if TYPE_CHECKING:
    from omniembed.rerank.cross_encoder import CrossEncoder


def activation_name(activation: nn.Module | None) -> str:
    """The class path of an activation, for configs and model cards."""
    if activation is None:
        return "None"
    return f"{type(activation).__module__}.{type(activation).__name__}"


class RerankLoss(nn.Module):
    """Base of the reranker losses: holds the one-label ``CrossEncoder`` it trains and scores pairs."""

    columns = ColumnSpec(min_inputs=2)

    def __init__(self, model: CrossEncoder) -> None:
        super().__init__()
        from omniembed.rerank.cross_encoder import CrossEncoder

        if not isinstance(model, CrossEncoder):
            raise TypeError(
                f"{type(self).__name__} takes the omniembed CrossEncoder it trains, "
                f"got {type(model).__name__}"
            )
        if model.num_labels != 1:
            raise ValueError(
                f"{type(self).__name__} trains a model with one output label, this one has "
                f"{model.num_labels}; load it with CrossEncoder(path, num_labels=1)"
            )
        self.model = model

    def logits(self, pairs: Sequence[tuple[str, str]]) -> Tensor:
        """The model's logit for each pair, shape (pairs,)."""
        features, _ = self.model.scorer.tokenize(list(pairs), None)
        features = {name: value.to(self.model.device) for name, value in features.items()}
        logits: Tensor = self.model.scorer(features)
        return logits.view(-1)

    def forward(self, inputs: Sequence[Sequence[Any]], labels: Any) -> Tensor:
        """Return the loss of one batch: ``inputs`` holds each text column's values."""
        raise NotImplementedError

    def get_config_dict(self) -> dict[str, Any]:
        """Return the settings worth writing in a model card."""
        return {}


class BinaryCrossEntropyLoss(RerankLoss):
    """Binary cross-entropy of each pair's logit against its label (1 relevant, 0 not, or a score
    in [0, 1]).

    Columns: ``(query, document, label)``.

    Args:
        model: the reranker being trained (one output label).
        activation_fn: applied to the logits before the loss (default: none).
        pos_weight: the weight of positive labels, such as ``torch.tensor(4.0)``.
    """

    columns = ColumnSpec(min_inputs=2, max_inputs=2, label="required", example="(query, document, label)")

    def __init__(
        self, model: CrossEncoder, activation_fn: nn.Module | None = None, pos_weight: Tensor | None = None
    ) -> None:
        super().__init__(model)
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.pos_weight = pos_weight
        self.bce = nn.BCEWithLogitsLoss(pos_weight=pos_weight)

    def forward(self, inputs: Sequence[Sequence[Any]], labels: Any) -> Tensor:
        """Mean binary cross-entropy over the batch's pairs."""
        if len(inputs) != 2:
            raise ValueError(
                f"{type(self).__name__} takes two text columns (query, document), got {len(inputs)}"
            )
        logits = self.activation_fn(self.logits(list(zip(inputs[0], inputs[1], strict=True))))
        target = check_batch_labels(self, labels, len(logits))
        loss: Tensor = self.bce(logits, target.float())
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        """The activation and the positive weight."""
        weight = None if self.pos_weight is None else float(self.pos_weight.item())
        return {"activation_fn": activation_name(self.activation_fn), "pos_weight": weight}


class MultipleNegativesRankingLoss(RerankLoss):
    """Rank each query's positive above the other rows' documents (and its hard negatives).

    Columns: ``(query, positive[, negative...])``. Each query is scored with its positive, then with
    ``num_negatives`` documents of other rows (all of them when ``None``), then with its own hard
    negatives; the loss is the cross-entropy with the positive as the target.

    Args:
        model: the reranker being trained (one output label).
        num_negatives: in-batch negatives per query, drawn at random with torch's generator
            (``None``: every other row's documents, in order).
        scale: multiplies the activated scores before the softmax.
        activation_fn: applied to the logits first (default sigmoid; ``None`` for none).
    """

    columns = ColumnSpec(min_inputs=2, example="(query, positive[, negative...])")

    def __init__(
        self,
        model: CrossEncoder,
        num_negatives: int | None = 4,
        scale: float = 10.0,
        activation_fn: nn.Module | None = nn.Sigmoid(),  # noqa: B008 - stateless module
    ) -> None:
        super().__init__(model)
        if num_negatives is not None and num_negatives < 1:
            raise ValueError(f"num_negatives must be a positive number or None, got {num_negatives!r}")
        self.num_negatives = num_negatives
        self.scale = scale
        self.activation_fn = activation_fn

    def in_batch_negatives(self, candidates: Sequence[Sequence[str]]) -> Iterator[list[str]]:
        """Yield, for each negative slot, one document per query taken from the other rows."""
        rows, columns = len(candidates[0]), len(candidates)
        flat = [text for column in candidates for text in column]
        mask = ~torch.eye(rows, dtype=torch.bool).repeat(1, columns)
        if self.num_negatives is not None and self.num_negatives < len(flat) - columns:
            chosen = torch.multinomial(mask.float(), self.num_negatives)
        else:
            chosen = torch.arange(rows * columns).repeat(rows, 1)[mask].reshape(rows, -1)
        for slot in chosen.T:
            yield [flat[index] for index in slot.tolist()]

    def forward(self, inputs: Sequence[Sequence[Any]], labels: Any) -> Tensor:
        """Cross-entropy over each query's positive, in-batch negatives and hard negatives."""
        if len(inputs) < 2:
            raise ValueError(f"{type(self).__name__} needs at least a query and a positive column")
        queries = list(inputs[0])
        slots = [list(inputs[1]), *self.in_batch_negatives(inputs[1:]), *(list(c) for c in inputs[2:])]
        pairs = [(query, document) for slot in slots for query, document in zip(queries, slot, strict=True)]
        scores = self.logits(pairs).view(len(slots), len(queries)).T
        if self.activation_fn is not None:
            scores = self.activation_fn(scores)
        if self.scale:
            scores = scores * self.scale
        target = torch.zeros(len(queries), dtype=torch.long, device=scores.device)
        return nn.functional.cross_entropy(scores, target)

    def get_config_dict(self) -> dict[str, Any]:
        """The scale, negatives per query and activation."""
        return {
            "scale": self.scale,
            "num_negatives": self.num_negatives,
            "activation_fn": activation_name(self.activation_fn),
        }


class ListNetLoss(RerankLoss):
    """Listwise: the cross-entropy between the softmax of each query's labels and of its scores.

    Columns: ``(query, documents, labels)``: ``documents`` a list of texts per row and ``labels``
    a list of relevance numbers of the same length; queries may have different list lengths.

    Args:
        model: the reranker being trained (one output label).
        activation_fn: applied to the logits first (default: none).
        mini_batch_size: pairs per forward pass (default: one pass per query count of pairs).
    """

    columns = ColumnSpec(
        min_inputs=2, max_inputs=2, label="required", label_kind="vector", text_lists=True,
        example="(query, documents, labels) with a list of documents and of labels per row",
    )  # fmt: skip

    def __init__(
        self, model: CrossEncoder, activation_fn: nn.Module | None = None, mini_batch_size: int | None = None
    ) -> None:
        super().__init__(model)
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.mini_batch_size = mini_batch_size

    def forward(self, inputs: Sequence[Sequence[Any]], labels: Any) -> Tensor:
        """Mean over queries of the cross-entropy between label and score distributions."""
        if len(inputs) != 2:
            raise ValueError(f"{type(self).__name__} takes (query, documents) columns, got {len(inputs)}")
        if isinstance(labels, Tensor) and labels.dim() < 2:
            raise ValueError(f"{type(self).__name__} needs a list of labels per row, got one value per row")
        queries, documents = inputs
        lengths = [len(docs) for docs in documents]
        if lengths != [len(row) for row in labels]:
            raise ValueError(
                f"{type(self).__name__}: documents per query {lengths} differ from labels per query "
                f"{[len(row) for row in labels]}"
            )
        pairs = [(query, doc) for query, docs in zip(queries, documents, strict=True) for doc in docs]
        step = self.mini_batch_size or len(queries)
        logits = torch.cat([self.logits(pairs[i : i + step]) for i in range(0, len(pairs), step)]).float()
        logits = self.activation_fn(logits)
        rows = torch.repeat_interleave(torch.arange(len(queries)), torch.tensor(lengths))
        places = torch.cat([torch.arange(length) for length in lengths])
        device = logits.device
        scores = torch.full((len(queries), max(lengths)), -1e16, device=device)
        scores[rows, places] = logits
        targets = torch.full_like(scores, float("-inf"))
        targets[rows, places] = torch.cat([torch.as_tensor(row, device=device) for row in labels]).float()
        return nn.functional.cross_entropy(scores, targets.softmax(dim=1))

    def get_config_dict(self) -> dict[str, Any]:
        """The activation and the mini-batch size."""
        return {"activation_fn": activation_name(self.activation_fn), "mini_batch_size": self.mini_batch_size}
