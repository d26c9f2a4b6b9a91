"""Distil a static embedding table from a bi-encoder: embed each vocabulary token, PCA, frequency weights.

The recipe is model2vec's, on torch and numpy only:

1. every token id of the teacher's vocabulary is embedded alone, between the special tokens the
   teacher's tokenizer adds to any text (``[CLS] token [SEP]`` for BERT), and pooled by the teacher's
   own modules (its Pooling and Dense; a final Normalize is skipped, so the table keeps magnitudes);
2. the table is centred and projected on its first ``pca_dims`` principal components (eigenvectors
   of its covariance, each signed so its largest entry is positive, for reproducible tables);
3. each row is scaled by SIF weighting, ``a / (a + p(token))``, with ``p`` estimated from Zipf's law
   by rank: the token with id ``i`` is taken as the ``i + 1``-th most frequent, so ``p ∝ 1 / (i + 2)``
   (token ids of BPE and WordPiece vocabularies roughly follow frequency order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from omniembed.modules.module import Module
from omniembed.modules.normalize import Normalize
from omniembed.modules.transformer import Transformer


def vocabulary_embeddings(teacher: Sequence[Module], batch_size: int = 1024, progress: bool = True) -> Tensor:
    """Return the teacher's embedding of each token id alone, one row per id of its tokenizer.

    Args:
        teacher: a text pipeline that starts with a ``Transformer`` (a ``SentenceTransformer``).
        batch_size: tokens per forward pass (every input has the same length: no padding).
        progress: show a tqdm bar.
    """
    transformer = teacher[0]
    if not isinstance(transformer, Transformer) or list(transformer.modalities) != ["text"]:
        raise TypeError(
            f"a static model is distilled from a text bi-encoder starting with a Transformer, "
            f"got one starting with {type(transformer).__name__}"
        )
    if transformer.weights_released:
        raise ValueError(
            "the teacher runs in ONNX Runtime or OpenVINO; load it with backend='torch' to distil it"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    tokenizer = transformer.tokenizer
    count = tokenizer.backend_tokenizer.get_vocab_size(with_added_tokens=True)
    if count < 1:
        raise ValueError("the teacher's tokenizer has an empty vocabulary: there is nothing to distil")
    prefix, suffix = special_tokens(tokenizer)
    ids = torch.arange(count, dtype=torch.long)[:, None]
    rows = torch.cat(
        [torch.tensor([prefix] * count).view(count, -1), ids, torch.tensor([suffix] * count).view(count, -1)],
        1,
    )
    device = next(transformer.parameters()).device
    steps = [module for module in teacher if not isinstance(module, Normalize)]
    parts = []
    with (
        torch.inference_mode(),
        tqdm(total=count, desc="Vocabulary", unit="token", disable=not progress) as bar,
    ):
        for start in range(0, count, batch_size):
            batch = rows[start : start + batch_size].to(device)
            features: dict[str, Any] = {"input_ids": batch, "attention_mask": torch.ones_like(batch)}
            if "token_type_ids" in transformer.model_inputs:
                features["token_type_ids"] = torch.zeros_like(batch)
            for module in steps:
                features = module(features)
            parts.append(features["sentence_embedding"].float().cpu())
            bar.update(len(batch))
    return torch.cat(parts)


def special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """Return the ids the tokenizer puts before and after any text (``[CLS]`` and ``[SEP]`` for BERT)."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return list(full[:start]), list(full[start + len(plain) :])
    return [], []


def principal_components(table: np.ndarray, dims: int) -> np.ndarray:
    """Centre ``table`` and project it on its first ``dims`` principal components (float64 maths).

    >>> rows = np.random.default_rng(0).normal(size=(50, 4)) * [5.0, 1.0, 0.1, 0.01]
    >>> reduced = principal_components(rows, 2)
    >>> reduced.shape, bool(abs(reduced[:, 0].std() - 5) < 1)
    ((50, 2), True)
    """
    if not 1 <= dims <= table.shape[1]:
        raise ValueError(
            f"pca_dims={dims} does not fit embeddings of {table.shape[1]} dimensions; "
            f"give 1..{table.shape[1]}, or pca_dims=None to keep them all without PCA"
        )
    if dims > table.shape[0]:
        raise ValueError(f"pca_dims={dims} is more than the {table.shape[0]} tokens of the vocabulary")
    centred = np.asarray(table, dtype=np.float64) - table.mean(axis=0, dtype=np.float64)
    values, vectors = np.linalg.eigh(centred.T @ centred)
    components = vectors[:, np.argsort(values)[::-1][:dims]]
    signs = np.sign(components[np.abs(components).argmax(axis=0), np.arange(dims)])
    return np.asarray(centred @ (components * np.where(signs == 0, 1.0, signs)))


def sif_weights(count: int, coefficient: float) -> np.ndarray:
    """Return ``a / (a + p)`` per token id, with ``p`` from Zipf's law by rank (id order).

    >>> weights = sif_weights(4, 1e-4)
    >>> bool(weights[0] < weights[-1] < 1)
    True
    """
    if coefficient <= 0:
        raise ValueError(f"sif_coefficient must be positive (or None for no weighting), got {coefficient!r}")
    inverse_rank = 1.0 / np.arange(2, count + 2, dtype=np.float64)
    probability = inverse_rank / inverse_rank.sum()
    return np.asarray(coefficient / (coefficient + probability))


def distil_table(
    teacher: Sequence[Module],
    pca_dims: int | None = 256,
    sif_coefficient: float | None = 1e-4,
    batch_size: int = 1024,
    progress: bool = True,
) -> np.ndarray:
    """Return the static table of ``teacher``: vocabulary embeddings, then PCA, then SIF weights."""
    table = vocabulary_embeddings(teacher, batch_size, progress).numpy().astype(np.float64)
    if pca_dims is not None:
        table = principal_components(table, pca_dims)
    if sif_coefficient is not None:
        table = table * sif_weights(len(table), sif_coefficient)[:, None]
    return table.astype(np.float32)
