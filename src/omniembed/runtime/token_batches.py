"""Tokenize inputs once, sort them by token count and pack batches by a padded-token budget.

A batch of length-sorted inputs costs about ``rows × longest row`` tokens of compute, so a fixed
count of 32 wastes little on long documents but runs tiny, overhead-bound batches of short
sentences. Packing by a token budget keeps every forward pass about the same size instead.
Right-padded encoders give each input the same embedding whatever else is in its batch, so the
packing changes no result; left-padded decoders do not (see ``encoder.py``), and keep the
reference library's fixed-count batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

TOKENS_PER_INPUT = 64
"""``batch_size × TOKENS_PER_INPUT`` padded tokens make one batch's budget. The activations of one
batch are most of the peak memory, so the budget is the smallest that kept full speed
(BENCHMARKS.md, "Figures behind the runtime choices")."""

SPREAD = 0.9
"""A batch holds rows of at least ``SPREAD ×`` its longest row's tokens, so padding stays small."""

CHUNK_INPUTS = 16384
"""Inputs tokenized and sorted together; bounds the memory the token ids take on huge inputs."""


@dataclass(frozen=True)
class TokenBatch:
    """One forward pass: which inputs it holds (positions in the input list) and their tensors."""

    indices: np.ndarray
    features: dict[str, Tensor]


def pack_by_tokens(
    lengths: Sequence[int] | np.ndarray, budget: int, spread: float = SPREAD
) -> list[np.ndarray]:
    """Sort positions longest first and cut them into batches of at most ``budget`` padded tokens.

    A batch pads every row to its first (longest) row, so it takes ``budget // longest`` rows,
    and ends early at a row shorter than ``spread ×`` the longest; an input longer than the
    budget still gets a batch of its own.

    >>> [batch.tolist() for batch in pack_by_tokens([3, 10, 2, 9, 2], budget=20, spread=0.0)]
    [[1, 3], [0, 2, 4]]
    >>> [batch.tolist() for batch in pack_by_tokens([3, 10, 2, 9, 2], budget=20)]
    [[1, 3], [0], [2, 4]]
    """
    sizes = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-sizes, kind="stable")
    descending = sizes[order]
    batches, start = [], 0
    while start < len(order):
        longest = max(int(descending[start]), 1)
        similar = int(np.searchsorted(-descending, -spread * longest, side="right"))
        end = max(start + 1, min(start + budget // longest, similar))
        batches.append(order[start:end])
        start = end
    return batches


def pad_rows(rows: Sequence[Sequence[int]], pad_value: int, *, left: bool = False) -> np.ndarray:
    """Stack rows of token ids into one int64 matrix, padded to the longest row.

    >>> pad_rows([[5, 6, 7], [8]], 0).tolist()
    [[5, 6, 7], [8, 0, 0]]
    """
    width = max((len(row) for row in rows), default=0)
    matrix = np.full((len(rows), width), pad_value, dtype=np.int64)
    for index, row in enumerate(rows):
        if left:
            matrix[index, width - len(row) :] = row
        else:
            matrix[index, : len(row)] = row
    return matrix


@dataclass(frozen=True)
class Tokenized:
    """Unpadded token ids of a list of texts, and how many of them were cut at ``max_length``."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    truncated: int

    @property
    def lengths(self) -> np.ndarray:
        """Token count of each text."""
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))


def tokenize_unpadded(tokenizer: Any, texts: list[str], max_length: int, type_ids: bool) -> Tokenized:
    """Tokenize ``texts`` in one call, truncated at ``max_length`` and not padded."""
    encoded = tokenizer(
        texts,
        padding=False,
        truncation="longest_first",
        max_length=max_length,
        return_attention_mask=False,
        return_token_type_ids=type_ids,
    )
    truncated = sum(1 for encoding in encoded.encodings or () if encoding.overflowing)
    types = encoded["token_type_ids"] if type_ids else None
    return Tokenized(list(encoded["input_ids"]), types, truncated)


def batch_features(
    tokenized: Tokenized, indices: np.ndarray, pad_id: int, pad_type_id: int
) -> dict[str, Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` (and ``token_type_ids``) for some of the texts."""
    rows = [tokenized.input_ids[i] for i in indices]
    input_ids = pad_rows(rows, pad_id)
    mask = np.zeros_like(input_ids)
    for index, row in enumerate(rows):
        mask[index, : len(row)] = 1
    features = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}
    if tokenized.token_type_ids is not None:
        types = pad_rows([tokenized.token_type_ids[i] for i in indices], pad_type_id)
        features["token_type_ids"] = torch.from_numpy(types)
    return features


def token_budget_batches(
    tokenizer: Any,
    texts: list[str],
    *,
    batch_size: int,
    max_length: int,
    type_ids: bool,
    truncated: list[int],
) -> Iterator[TokenBatch]:
    """Yield right-padded batches of at most ``batch_size × TOKENS_PER_INPUT`` padded tokens.

    Texts are tokenized once per chunk of ``CHUNK_INPUTS`` and sorted longest first within it;
    the number of truncated texts is added to ``truncated[0]``.
    """
    budget = batch_size * TOKENS_PER_INPUT
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    pad_type_id = int(getattr(tokenizer, "pad_token_type_id", 0) or 0)
    for offset in range(0, len(texts), CHUNK_INPUTS):
        chunk = texts[offset : offset + CHUNK_INPUTS]
        tokenized = tokenize_unpadded(tokenizer, chunk, max_length, type_ids)
        truncated[0] += tokenized.truncated
        for indices in pack_by_tokens(tokenized.lengths, budget):
            features = batch_features(tokenized, indices, pad_id, pad_type_id)
            yield TokenBatch(indices + offset, features)
