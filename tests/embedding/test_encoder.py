"""SentenceTransformer.encode: shapes, options and bad input."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from omniembed import InvalidInputError, SentenceTransformer

SEED_SENTENCES = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]


def test_seed_example(minilm: SentenceTransformer) -> None:
    embeddings = minilm.encode(SEED_SENTENCES)
    assert embeddings.shape == (3, 384)
    assert embeddings.dtype == np.float32
    expected = [[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]]
    np.testing.assert_allclose(minilm.similarity(embeddings, embeddings).numpy(), expected, atol=1e-4)


def test_one_string_gives_one_vector(minilm: SentenceTransformer) -> None:
    vector = minilm.encode(SEED_SENTENCES[0])
    assert vector.shape == (384,)
    np.testing.assert_allclose(vector, minilm.encode(SEED_SENTENCES)[0], atol=1e-6)


def test_results_follow_input_order_whatever_the_batching(minilm: SentenceTransformer) -> None:
    texts = ["short", "a somewhat longer text here", "x", "the longest text of them all, by quite a margin"]
    together = minilm.encode(texts, batch_size=2)
    for text, row in zip(texts, together, strict=True):
        np.testing.assert_allclose(row, minilm.encode(text), atol=1e-5)


def test_empty_list_gives_an_empty_matrix(minilm: SentenceTransformer) -> None:
    assert minilm.encode([]).shape == (0, 384)
    assert minilm.encode([], convert_to_tensor=True).shape == (0, 384)
    assert minilm.encode([], precision="ubinary").shape == (0, 48)
    assert minilm.encode([], truncate_dim=64).shape == (0, 64)


def test_output_types(minilm: SentenceTransformer) -> None:
    tensor = minilm.encode(SEED_SENTENCES, convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor)
    assert tensor.shape == (3, 384)
    rows = minilm.encode(SEED_SENTENCES, convert_to_numpy=False)
    assert isinstance(rows, list)
    assert all(isinstance(row, torch.Tensor) for row in rows)
    everything = minilm.encode(SEED_SENTENCES, output_value=None)
    assert set(everything[0]) >= {"input_ids", "attention_mask", "token_embeddings", "sentence_embedding"}


def test_normalize_embeddings(tiny_model: Callable[..., Path]) -> None:
    model = SentenceTransformer(tiny_model("bert"), device="cpu")
    raw = model.encode(SEED_SENTENCES)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    normalized = model.encode(SEED_SENTENCES, normalize_embeddings=True)
    np.testing.assert_allclose(np.linalg.norm(normalized, axis=1), 1.0, atol=1e-6)


def test_truncate_dim_then_normalize(minilm: SentenceTransformer) -> None:
    full = minilm.encode(SEED_SENTENCES)
    short = minilm.encode(SEED_SENTENCES, truncate_dim=32, normalize_embeddings=True)
    expected = full[:, :32] / np.linalg.norm(full[:, :32], axis=1, keepdims=True)
    np.testing.assert_allclose(short, expected, atol=1e-6)


def test_truncation_warns_once_with_the_count(
    minilm: SentenceTransformer, caplog: pytest.LogCaptureFixture
) -> None:
    long_text = "word " * 400
    with caplog.at_level(logging.WARNING, logger="omniembed"):
        minilm.encode([long_text, "short", long_text], batch_size=1)
    warnings = [record for record in caplog.records if "truncated" in record.getMessage()]
    assert len(warnings) == 1
    assert "2 of 3 inputs" in warnings[0].getMessage()
    assert "256" in warnings[0].getMessage()


def test_prompt_wins_over_prompt_name_and_default(tiny_model: Callable[..., Path]) -> None:
    folder = tiny_model("bert", prompts={"query": "query: ", "doc": "doc: "}, default_prompt_name="query")
    model = SentenceTransformer(folder, device="cpu")
    text = "a sentence"
    np.testing.assert_allclose(model.encode(text), model.encode("query: " + text, prompt=""), atol=1e-6)
    np.testing.assert_allclose(
        model.encode(text, prompt_name="doc"), model.encode("doc: " + text, prompt=""), atol=1e-6
    )
    np.testing.assert_allclose(
        model.encode(text, prompt="x: ", prompt_name="doc"), model.encode("x: " + text, prompt=""), atol=1e-6
    )


def test_constructor_prompts_override_saved_ones(tiny_model: Callable[..., Path]) -> None:
    folder = tiny_model("bert", prompts={"query": "query: "})
    model = SentenceTransformer(folder, device="cpu", prompts={"query": "", "passage": "p: "})
    assert model.prompts == {"query": "", "passage": "p: "}


def test_unknown_prompt_name(minilm: SentenceTransformer) -> None:
    with pytest.raises(ValueError, match="'nope' is not one of the model's prompts"):
        minilm.encode("x", prompt_name="nope")


def test_unknown_default_prompt_name(tiny_model: Callable[..., Path]) -> None:
    with pytest.raises(ValueError, match="default_prompt_name 'nope'"):
        SentenceTransformer(tiny_model("bert"), default_prompt_name="nope")


def test_modalities(minilm: SentenceTransformer) -> None:
    assert minilm.modalities == ["text"]
    assert minilm.supports("text")
    assert not minilm.supports("image")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (None, "got None"),
        (42, "got a int"),
        (b"bytes", "got a bytes"),
        ({"txt": "x"}, "a dict with keys \\[.txt.\\]"),
        (["fine", None], "index 1 is None"),
        (["fine", "fine", 3.5], "index 2 is a float"),
        ([["nested", "list"]], "index 0 is a list"),
        (np.array([1, 2]), "index 0 is a int"),
    ],
)
def test_bad_input_names_the_offender(minilm: SentenceTransformer, bad: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as caught:
        minilm.encode(bad)  # type: ignore[arg-type]
    assert isinstance(caught.value, TypeError)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"precision": "float16"}, "precision 'float16' is not supported"),
        ({"output_value": "logits"}, "output_value 'logits' is not supported"),
        ({"truncate_dim": 0}, "truncate_dim must be a positive integer"),
        ({"device": 5}, "device must be a device such as 'cpu' or a list of them, got 5"),
        ({"device": []}, "give the worker devices as a non-empty list"),
        ({"chunk_size": 0}, "chunk_size must be a positive integer"),
    ],
)
def test_bad_options(minilm: SentenceTransformer, options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        minilm.encode(SEED_SENTENCES, **options)  # type: ignore[arg-type]


def test_int8_of_a_single_input_needs_calibration(minilm: SentenceTransformer) -> None:
    with pytest.raises(ValueError, match="calibration_embeddings"):
        minilm.encode("one text", precision="int8")


def test_empty_and_huge_strings(minilm: SentenceTransformer) -> None:
    vectors = minilm.encode(["", " ", "word " * 20_000])
    assert vectors.shape == (3, 384)
    assert np.isfinite(vectors).all()


def test_unknown_similarity_name(tiny_model: Callable[..., Path]) -> None:
    with pytest.raises(ValueError, match="unknown similarity function 'cosin'"):
        SentenceTransformer(tiny_model("bert"), similarity_fn_name="cosin")


def test_all_outputs_respect_truncate_dim(minilm: SentenceTransformer) -> None:
    rows = minilm.encode(SEED_SENTENCES, output_value=None, truncate_dim=16)
    assert rows[0]["sentence_embedding"].shape == (16,)


def test_token_embeddings_of_left_padded_inputs_keep_only_real_tokens(
    tiny_model: Callable[..., Path],
) -> None:
    model = SentenceTransformer(tiny_model("qwen3"), device="cpu")
    short, long = model.encode(["hi", "a much longer input than the first"], output_value="token_embeddings")
    assert len(short) == len(model.tokenizer("hi")["input_ids"])
    assert len(long) > len(short)
