"""Our embeddings equal the reference library's on the same model folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer as Reference

from omniembed import SentenceTransformer

from helpers.numbers import PARITY, assert_same, cosines

POOLING_MODES = ["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]


def both(folder: Path, **options: object) -> tuple[SentenceTransformer, Reference]:
    return SentenceTransformer(folder, device="cpu", **options), Reference(  # type: ignore[arg-type]
        str(folder), device="cpu", **options
    )


@pytest.mark.slow
def test_minilm_matches_reference_on_sts_dev(
    minilm: SentenceTransformer, minilm_reference: Reference, sts_sentences: list[str]
) -> None:
    ours = minilm.encode(sts_sentences)
    theirs = minilm_reference.encode(sts_sentences)
    assert ours.shape == (2910, 384)
    assert cosines(ours, theirs).min() >= PARITY


@pytest.mark.parametrize("layout", ["v2", "v6"])
@pytest.mark.parametrize("mode", POOLING_MODES)
def test_every_pooling_mode(
    tiny_model: Callable[..., Path], sts_sentences: list[str], mode: str, layout: str
) -> None:
    ours, theirs = both(tiny_model("bert", pooling=mode, layout=layout))
    texts = sts_sentences[:200]
    assert_same(ours.encode(texts), theirs.encode(texts))


def test_concatenated_pooling_modes(tiny_model: Callable[..., Path], sts_sentences: list[str]) -> None:
    ours, theirs = both(tiny_model("bert", pooling=("cls", "mean", "max"), layout="v6"))
    texts = sts_sentences[:100]
    assert ours.get_sentence_embedding_dimension() == 96
    assert_same(ours.encode(texts), theirs.encode(texts))


@pytest.mark.parametrize(
    ("activation", "bias"),
    [("torch.nn.modules.activation.Tanh", True), ("torch.nn.modules.linear.Identity", False)],
)
def test_dense_and_normalize(
    tiny_model: Callable[..., Path], sts_sentences: list[str], activation: str, bias: bool
) -> None:
    folder = tiny_model("bert", dense=(32, 16), dense_activation=activation, dense_bias=bias, normalize=True)
    ours, theirs = both(folder)
    texts = sts_sentences[:200]
    embeddings = ours.encode(texts)
    assert embeddings.shape == (200, 16)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert_same(embeddings, theirs.encode(texts))


def test_distilbert_cls(tiny_model: Callable[..., Path], sts_sentences: list[str]) -> None:
    ours, theirs = both(tiny_model("bert", arch="distilbert", pooling="cls", layout="v6"))
    texts = sts_sentences[:200]
    assert_same(ours.encode(texts), theirs.encode(texts))


@pytest.mark.parametrize("plain", [True, False])
def test_decoder_last_token_left_padding(
    tiny_model: Callable[..., Path], sts_sentences: list[str], plain: bool
) -> None:
    ours, theirs = both(tiny_model("qwen3", plain=plain))
    assert ours.tokenizer.padding_side == "left"
    assert ours[1].modes == ("lasttoken",)
    texts = sts_sentences[:150]
    assert_same(ours.encode(texts), theirs.encode(texts))


def test_qwen3_instruction_prompts(tiny_model: Callable[..., Path], sts_sentences: list[str]) -> None:
    ours, theirs = both(tiny_model("qwen3", plain=False))
    queries = sts_sentences[:64]
    assert_same(ours.encode_query(queries), theirs.encode_query(queries))
    assert_same(ours.encode_document(queries), theirs.encode_document(queries))
    instruction = "Instruct: Given a web search query, retrieve relevant passages\nQuery:"
    assert_same(ours.encode(queries, prompt=instruction), theirs.encode(queries, prompt=instruction))


@pytest.mark.parametrize("include_prompt", [True, False])
@pytest.mark.parametrize("mode", ["mean", "cls", "weightedmean"])
def test_prompts_with_and_without_prompt_tokens_in_the_pool(
    tiny_model: Callable[..., Path], sts_sentences: list[str], include_prompt: bool, mode: str
) -> None:
    prompts = {"query": "query: ", "passage": "passage: "}
    folder = tiny_model("bert", pooling=mode, include_prompt=include_prompt, prompts=prompts, layout="v6")
    ours, theirs = both(folder)
    texts = sts_sentences[:100]
    assert_same(ours.encode_query(texts), theirs.encode_query(texts))
    # The reference adds a blank "document" prompt to every model, so its encode_document never reaches
    # a saved "passage" prompt; ours uses the first of document/passage/corpus the model actually has.
    assert_same(ours.encode_document(texts), theirs.encode(texts, prompt_name="passage"))
    assert_same(
        ours.encode(texts, prompt="Represent this: "), theirs.encode(texts, prompt="Represent this: ")
    )
    plain = ours.encode(texts)
    assert np.abs(ours.encode_query(texts) - plain).max() > 1e-3


def test_default_prompt_name_from_config(tiny_model: Callable[..., Path], sts_sentences: list[str]) -> None:
    folder = tiny_model("bert", prompts={"query": "query: "}, default_prompt_name="query")
    ours, theirs = both(folder)
    texts = sts_sentences[:50]
    assert ours.default_prompt_name == "query"
    assert_same(ours.encode(texts), theirs.encode(texts))
    assert_same(ours.encode(texts, prompt=""), ours.encode(texts, prompt_name=None, prompt=""))


@pytest.mark.parametrize("dim", [8, 16])
def test_truncate_dim(tiny_model: Callable[..., Path], sts_sentences: list[str], dim: int) -> None:
    folder = tiny_model("bert", normalize=True)
    ours, theirs = both(folder, truncate_dim=dim)
    texts = sts_sentences[:100]
    assert ours.get_sentence_embedding_dimension() == dim
    assert_same(ours.encode(texts), theirs.encode(texts))
    assert_same(
        ours.encode(texts, normalize_embeddings=True), theirs.encode(texts, normalize_embeddings=True)
    )
    per_call = ours.encode(texts, truncate_dim=4)
    assert per_call.shape == (100, 4)


@pytest.mark.parametrize("precision", ["float32", "int8", "uint8", "binary", "ubinary"])
def test_every_precision(
    minilm: SentenceTransformer, minilm_reference: Reference, sts_sentences: list[str], precision: str
) -> None:
    texts = sts_sentences[:300]
    ours = minilm.encode(texts, precision=precision)
    theirs = minilm_reference.encode(texts, precision=precision)
    assert ours.dtype == theirs.dtype
    assert ours.shape == theirs.shape
    if precision == "float32":
        assert_same(ours, theirs)
    else:
        # Buckets are floor()ed, so a value that sits on a boundary may land one level apart.
        difference = np.abs(ours.astype(np.int16) - theirs.astype(np.int16))
        assert (difference > 0).mean() < 0.001
        assert difference.max() <= 1 if "int8" in precision else True


def test_token_embeddings(minilm: SentenceTransformer, minilm_reference: Reference) -> None:
    texts = ["A short one.", "A much longer sentence that needs quite a few more word pieces to say."]
    ours = minilm.encode(texts, output_value="token_embeddings")
    theirs = minilm_reference.encode(texts, output_value="token_embeddings")
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.shape == reference.shape
        np.testing.assert_allclose(mine.numpy(), reference.numpy(), atol=1e-5)


@pytest.mark.parametrize("similarity", ["cosine", "dot", "euclidean", "manhattan"])
def test_similarity_functions(minilm_dir: Path, sts_sentences: list[str], similarity: str) -> None:
    ours, theirs = both(minilm_dir, similarity_fn_name=similarity)
    a = ours.encode(sts_sentences[:20])
    b = ours.encode(sts_sentences[20:50])
    np.testing.assert_allclose(ours.similarity(a, b).numpy(), theirs.similarity(a, b).numpy(), atol=1e-5)
    np.testing.assert_allclose(
        ours.similarity_pairwise(a, b[:20]).numpy(),
        theirs.similarity_pairwise(a, b[:20]).numpy(),
        atol=1e-5,
    )
