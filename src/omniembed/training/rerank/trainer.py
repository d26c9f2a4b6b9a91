"""``CrossEncoderTrainer``: the embedding ``Trainer`` for rerankers, with texts passed to the loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from omniembed.rerank.cross_encoder import CrossEncoder
from omniembed.training.arguments import TrainingArguments
from omniembed.training.data import split_columns
from omniembed.training.rerank.losses import BinaryCrossEntropyLoss, RerankLoss
from omniembed.training.trainer import Trainer


@dataclass
class TextCollator:
    """Turn dataset rows into ``{"inputs": [column values...], "label": labels}``: the texts stay
    texts (a reranker loss pairs and tokenizes them); labels become a tensor, or a list of tensors
    when rows hold lists of different lengths."""

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Collate a list of rows into one batch."""
        if not rows:
            return {}
        inputs, label = split_columns(list(rows[0]))
        batch: dict[str, Any] = {"inputs": [[row[column] for row in rows] for column in inputs]}
        if label is not None:
            values = [row[label] for row in rows]
            ragged = isinstance(values[0], (list, tuple))
            batch["label"] = [torch.tensor(value) for value in values] if ragged else torch.tensor(values)
        return batch


class CrossEncoderTrainer(Trainer):
    """Train an omniembed ``CrossEncoder`` with a loss from ``omniembed.training.rerank``.

    Takes the same arguments as ``Trainer``: the model is a ``CrossEncoder`` with one output
    label, the loss one of ``BinaryCrossEntropyLoss`` (the default), ``MultipleNegativesRankingLoss``
    or ``ListNetLoss``, and the evaluator typically a ``RerankingEvaluator``. Checkpoints and
    ``model.save`` write the reference library's cross-encoder folder.
    """

    @staticmethod
    def check_model(model: Any) -> None:
        """Raise unless ``model`` is a classifier ``CrossEncoder`` that can learn."""
        if not isinstance(model, CrossEncoder):
            raise TypeError(
                f"CrossEncoderTrainer trains an omniembed CrossEncoder, got {type(model).__name__}"
            )

    @staticmethod
    def check_loss(loss: Any, model: Any) -> None:
        """Raise unless ``loss`` is a reranker loss made with ``model``."""
        if not isinstance(loss, RerankLoss):
            raise TypeError(
                "loss must be one of omniembed.training.rerank's losses "
                "(such as BinaryCrossEntropyLoss(model)), "
                f"got {type(loss).__name__}"
            )
        if loss.model is not model:
            raise ValueError(
                f"{type(loss).__name__} was made with a different model than the one given to the trainer; "
                "make the loss with the model you train: loss = Loss(model)"
            )

    @staticmethod
    def default_loss(model: Any) -> Any:
        """Binary cross-entropy on (query, document, label) rows."""
        return BinaryCrossEntropyLoss(model)

    @staticmethod
    def make_collator(model: Any, args: TrainingArguments) -> Any:
        """Keep the texts as texts."""
        if args.prompts:
            raise ValueError("CrossEncoderTrainer takes no prompts; put any instruction in the texts")
        return TextCollator()

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        """Return the loss of a collated batch."""
        value = self.loss(inputs["inputs"], inputs.get("label"))
        return (value, {}) if return_outputs else value
