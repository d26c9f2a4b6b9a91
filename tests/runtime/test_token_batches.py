"""Token-budget batching: packing, padding, and the same results as fixed-count batches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from omniembed import SentenceTransformer
from omniembed.runtime.token_batches import (
    SPREAD,
    TOKENS_PER_INPUT,
    pack_by_tokens,
    pad_rows,
    tokenize_unpadded,
)


def test_batches_hold_every_position_once_longest_first() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 300, size=1000)
    batches = pack_by_tokens(lengths, budget=4096)
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(1000))
    assert np.all(np.diff(lengths[seen]) <= 0)
    for batch in batches:
        assert len(batch) * lengths[batch].max() <= 4096 or len(batch) == 1
        assert lengths[batch].min() >= SPREAD * lengths[batch].max()


def test_padding_stays_small_on_mixed_lengths() -> None:
    # Log-uniform lengths from 5 to 256 tokens: without the spread rule 25% of the tokens are padding.
    rng = np.random.default_rng(1)
    lengths = np.minimum(np.exp(rng.uniform(np.log(5), np.log(300), size=300)).astype(int), 256)
    padded = sum(len(batch) * int(lengths[batch].max()) for batch in pack_by_tokens(lengths, 4096))
    assert padded <= 1.05 * lengths.sum()


def test_short_inputs_share_bigger_batches_than_long_ones() -> None:
    budget = 32 * TOKENS_PER_INPUT
    sizes = [len(batch) for batch in pack_by_tokens([250] * 40, budget)]
    assert sizes[0] == budget // 250
    assert sum(sizes) == 40
    assert [len(batch) for batch in pack_by_tokens([10] * 100, budget)] == [100]


def test_an_input_longer_than_the_budget_gets_its_own_batch() -> None:
    assert [b.tolist() for b in pack_by_tokens([500, 400, 3], budget=100)] == [[0], [1], [2]]


def test_pad_rows_left_and_right() -> None:
    assert pad_rows([[1, 2], [3]], 9, left=True).tolist() == [[1, 2], [9, 3]]
    assert pad_rows([], 0).shape == (0, 0)


def test_unpadded_tokenization_counts_truncated_inputs(minilm: SentenceTransformer) -> None:
    tokenized = tokenize_unpadded(minilm.tokenizer, ["short", "word " * 400], 16, type_ids=True)
    assert tokenized.lengths.tolist() == [3, 16]
    assert tokenized.truncated == 1
    assert tokenized.token_type_ids == [[0, 0, 0], [0] * 16]


def test_token_budget_gives_the_same_embeddings_as_small_batches(
    tiny_model: Callable[..., Path], sts_sentences: list[str]
) -> None:
    model = SentenceTransformer(tiny_model("bert"), device="cpu")
    texts = sts_sentences[:300]
    packed = model.encode(texts)  # up to 32 x TOKENS_PER_INPUT tokens per batch
    one_by_one = np.stack([model.encode(text) for text in texts[:40]])
    np.testing.assert_allclose(packed[:40], one_by_one, atol=1e-5)
    np.testing.assert_allclose(model.encode(texts, batch_size=1), packed, atol=1e-5)
