"""Dataset columns for training: which are texts and which the label, checks against a loss, and
the collator that tokenizes a batch the way ``encode`` does (prompts included)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from omniembed.errors import InvalidInputError

if TYPE_CHECKING:
    from omniembed.embedding.encoder import SentenceTransformer
    from omniembed.modules import Features
    from omniembed.training.losses.base import ColumnSpec

LABEL_COLUMNS = ("label", "labels", "score", "scores")
"""Column names read as the label, first match wins; every other column is a text input, in order."""
RESERVED_COLUMNS = ("return_loss", "dataset_name")
SEPARATOR = ":"
"""Between a column name and a feature name in a collated batch (feature names never hold it)."""


class DatasetColumnsError(InvalidInputError, ValueError):
    """A training dataset's columns do not fit the loss (also a ``ValueError``)."""


def split_columns(names: Sequence[str]) -> tuple[list[str], str | None]:
    """Return the text columns in order and the label column (``None`` when there is none)."""
    label = next((name for name in LABEL_COLUMNS if name in names), None)
    return [name for name in names if name != label], label


def check_dataset(dataset: Any, spec: ColumnSpec, loss_name: str, role: str) -> None:
    """Raise ``DatasetColumnsError`` naming the problem and the fix when ``dataset`` cannot feed the loss."""
    names = list(getattr(dataset, "column_names", None) or [])
    if not names:
        raise DatasetColumnsError(f"the {role} dataset has no columns; {loss_name} takes {spec.example}")
    if len(dataset) == 0:
        raise DatasetColumnsError(f"the {role} dataset is empty (columns {names}); give it at least one row")
    if reserved := [name for name in names if name in RESERVED_COLUMNS]:
        raise DatasetColumnsError(f"the {role} dataset uses reserved column names {reserved}; rename them")
    inputs, label = split_columns(names)
    _check_counts(inputs, label, spec, loss_name, role)
    features = getattr(dataset, "features", None) or {}
    for name in inputs:
        feature = features.get(name)
        dtype = getattr(feature, "dtype", None)
        if hasattr(feature, "feature"):  # a list per row
            dtype = None if spec.text_lists else "a list per row"
        if dtype not in (None, "string", "large_string"):
            raise DatasetColumnsError(
                f"column {name!r} of the {role} dataset holds {dtype}, not text; {loss_name} reads every "
                f"column but the label ({', '.join(LABEL_COLUMNS)}) as text: remove it, or name it 'label'"
            )
    if label is not None and spec.label != "unused":
        _check_label(dataset, features.get(label), label, spec, role)


def _check_counts(inputs: list[str], label: str | None, spec: ColumnSpec, loss_name: str, role: str) -> None:
    found = f"the {role} dataset has text columns {inputs}" + (
        f" and label {label!r}" if label else " and no label"
    )
    wanted = f"{loss_name} takes {spec.example}"
    if len(inputs) < spec.min_inputs or (spec.max_inputs is not None and len(inputs) > spec.max_inputs):
        count = f"{spec.min_inputs}" if spec.max_inputs == spec.min_inputs else f"at least {spec.min_inputs}"
        if spec.max_inputs not in (None, spec.min_inputs):
            count = f"{spec.min_inputs} to {spec.max_inputs}"
        raise DatasetColumnsError(
            f"{found}; {wanted}: {count} text column(s). Select or rename columns "
            "(dataset.select_columns([...]), dataset.rename_column(old, new))"
        )
    if spec.label == "required" and label is None:
        raise DatasetColumnsError(f"{found}; {wanted}: name the label column one of {list(LABEL_COLUMNS)}")


def _check_label(dataset: Any, feature: Any, label: str, spec: ColumnSpec, role: str) -> None:
    sample = dataset[0][label]
    numeric = (int, float, bool)
    if spec.label_kind == "number":
        ok = isinstance(sample, numeric)
    elif spec.label_kind == "vector":
        ok = isinstance(sample, (list, tuple)) and len(sample) > 0 and _all_numeric(sample)
    else:
        ok = isinstance(sample, numeric) or (isinstance(sample, (list, tuple)) and _all_numeric(sample))
    if not ok:
        kind = "a number" if spec.label_kind == "number" else "a list of numbers"
        dtype = getattr(feature, "dtype", type(sample).__name__)
        raise DatasetColumnsError(
            f"label column {label!r} of the {role} dataset holds {dtype} "
            f"(first value {sample!r}); it must hold "
            f"{kind}: convert it, e.g. dataset.cast_column({label!r}, Value('float32'))"
        )


def _all_numeric(values: Sequence[Any]) -> bool:
    flat: list[Any] = []
    for value in values:
        flat.extend(value if isinstance(value, (list, tuple)) else [value])
    return all(isinstance(value, (int, float, bool)) for value in flat)


@dataclass
class Collator:
    """Turn dataset rows into a batch: each text column tokenized as ``encode`` tokenizes (with the
    column's prompt before each text, and its length for pooling), the label as a tensor.

    Keys of the batch are ``"<column>:<feature>"`` and ``"label"``.

    Args:
        model: the model whose tokenizer and truncation length apply.
        prompts: one prompt for every column, or a prompt per column name.
    """

    model: SentenceTransformer
    prompts: str | dict[str, str] | None = None
    _prompt_lengths: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Collate a list of rows into one batch."""
        if not rows:
            return {}
        inputs, label = split_columns(list(rows[0]))
        batch: dict[str, Any] = {}
        if label is not None:
            values = [row[label] for row in rows]
            batch["label"] = torch.stack(values) if isinstance(values[0], Tensor) else torch.tensor(values)
        for column in inputs:
            for name, value in self.tokenize_column(column, [row[column] for row in rows]).items():
                batch[f"{column}{SEPARATOR}{name}"] = value
        return batch

    def prompt_for(self, column: str) -> str | None:
        """The prompt for a column (``None``: none)."""
        if isinstance(self.prompts, str):
            return self.prompts
        return (self.prompts or {}).get(column)

    def tokenize_column(self, column: str, texts: list[Any]) -> Features:
        """Tokenize one column's texts, with its prompt."""
        bad = next((text for text in texts if not isinstance(text, str)), None)
        if bad is not None:
            raise DatasetColumnsError(f"column {column!r} holds {type(bad).__name__} {bad!r}, not text")
        prompt = self.prompt_for(column)
        transformer = self.model.transformer
        if prompt:
            texts = [prompt + text for text in texts]
        features, _ = transformer.tokenize(texts)
        if prompt:
            if prompt not in self._prompt_lengths:
                self._prompt_lengths[prompt] = transformer.prompt_length(prompt)
            features["prompt_length"] = self._prompt_lengths[prompt]
        return features


def split_batch(batch: dict[str, Any]) -> tuple[list[Features], Tensor | None]:
    """Undo ``Collator``: one feature dict per text column, in column order, and the labels."""
    columns: dict[str, dict[str, Any]] = {}
    for key, value in batch.items():
        column, separator, name = key.rpartition(SEPARATOR)
        if separator:
            columns.setdefault(column, {})[name] = value
    return list(columns.values()), batch.get("label")
