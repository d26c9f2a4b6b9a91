"""What every training loss shares: the model it trains, how it embeds the columns of a batch, and
the columns it needs (checked against a dataset before training starts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from omniembed.embedding.encoder import SentenceTransformer
    from omniembed.modules import Features

LabelNeed = Literal["required", "optional", "unused"]


@dataclass(frozen=True)
class ColumnSpec:
    """The dataset columns a loss takes: how many text columns, and whether it reads a label column.

    ``label_kind`` says what each label is: ``"number"`` (a score or class) or ``"vector"`` (a
    teacher embedding, or a list of scores).
    """

    min_inputs: int
    max_inputs: int | None = None
    label: LabelNeed = "unused"
    label_kind: Literal["number", "vector", "any"] = "number"
    example: str = ""
    """Column names that fit, shown in errors, such as ``"(anchor, positive)"``."""
    text_lists: bool = False
    """Whether a text column may hold a list of texts per row (a query's documents)."""


class EmbeddingLoss(nn.Module):
    """Base of the losses over sentence embeddings: embed each text column, then score them.

    Subclasses set ``columns`` and implement ``compute_loss_from_embeddings``.
    """

    columns = ColumnSpec(min_inputs=1)

    def __init__(self, model: SentenceTransformer) -> None:
        super().__init__()
        from omniembed.embedding.encoder import SentenceTransformer

        if not isinstance(model, SentenceTransformer):
            raise TypeError(
                f"{type(self).__name__} takes the omniembed SentenceTransformer it trains, got "
                f"{type(model).__name__}"
            )
        self.model = model

    def embed(self, features: Sequence[Features]) -> list[Tensor]:
        """Return one embedding matrix per column: the first column in one forward pass, every
        other column together in a second (fewer, larger passes train faster)."""
        if not features:
            return []
        first = self.model(dict(features[0]))["sentence_embedding"]
        rest = list(features[1:])
        merged = merge_columns(rest) if len(rest) > 1 else None
        if merged is None:
            return [first, *(self.model(dict(column))["sentence_embedding"] for column in rest)]
        together = self.model(merged)["sentence_embedding"]
        return [first, *together.reshape(len(rest), -1, *together.shape[1:]).unbind(0)]

    def forward(self, features: Sequence[Features], labels: Tensor | None) -> Tensor:
        """Return the loss of one batch: ``features`` holds one tokenized batch per text column."""
        return self.compute_loss_from_embeddings(self.embed(features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """Return the loss given each column's embeddings."""
        raise NotImplementedError

    def get_config_dict(self) -> dict[str, Any]:
        """Return the settings worth writing in a model card."""
        return {}


def merge_columns(columns: Sequence[Features]) -> dict[str, Any] | None:
    """Stack several columns' tokenized batches into one batch, token tensors right-padded with
    zeros (masked out) to the longest; ``None`` when they cannot share a pass: different feature
    names, different row counts, or different non-tensor values (such as prompt lengths)."""
    first = columns[0]
    rows = first["input_ids"].shape[0] if isinstance(first.get("input_ids"), Tensor) else None
    if rows is None or any(set(column) != set(first) for column in columns[1:]):
        return None
    merged: dict[str, Any] = {}
    for key, value in first.items():
        values = [column[key] for column in columns]
        if not isinstance(value, Tensor):
            if any(other != value for other in values[1:]):
                return None
            merged[key] = value
            continue
        shapes_fit = all(
            isinstance(v, Tensor) and v.dim() == 2 and v.shape[0] == rows and not v.is_floating_point()
            for v in values
        )
        if not shapes_fit:
            return None
        width = max(v.shape[1] for v in values)
        merged[key] = torch.cat([nn.functional.pad(v, (0, width - v.shape[1])) for v in values])
    return merged


def check_batch_labels(loss: nn.Module, labels: Tensor | None, rows: int) -> Tensor:
    """Return ``labels`` as one value per row, or raise naming the loss and the label shape."""
    if labels is None:
        raise ValueError(f"{type(loss).__name__} needs a label or score column; the batch has none")
    if labels.numel() != rows:
        raise ValueError(
            f"{type(loss).__name__} expects one label per row ({rows}), "
            f"got labels of shape {tuple(labels.shape)}"
        )
    return labels.reshape(-1)
