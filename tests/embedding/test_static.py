"""Encoding with static models, and ``distill_static`` from a bi-encoder to a saved static model
(``embedding/static.py`` and ``embedding/distill.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer as Reference

import omniembed
from omniembed import SentenceTransformer, StaticEmbedding
from omniembed.embedding import static as static_encoding

from helpers.static import build_reference_static


@pytest.fixture(scope="module")
def static_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_reference_static(tmp_path_factory.mktemp("static"), normalize=False)


@pytest.fixture(scope="module")
def distilled(tiny_model: Callable[..., Path]) -> SentenceTransformer:
    teacher = SentenceTransformer(
        tiny_model("bert", normalize=True, prompts={"query": "query: "}), device="cpu"
    )
    return omniembed.distill_static(teacher, pca_dims=16, show_progress_bar=False)


def test_encode_options(static_folder: Path, sts_sentences: list[str]) -> None:
    model = SentenceTransformer(static_folder, device="cpu")
    texts = sts_sentences[:50]
    full = model.encode(texts)
    assert full.dtype == np.float32
    assert model.encode(texts[0]).shape == (32,)
    assert model.encode([]).shape == (0, 32)
    assert model.encode([{"text": texts[0]}]).shape == (1, 32)
    truncated = model.encode(texts, truncate_dim=8, normalize_embeddings=True)
    expected = full[:, :8] / np.linalg.norm(full[:, :8], axis=1, keepdims=True)
    np.testing.assert_allclose(truncated, expected, atol=1e-6)
    assert isinstance(model.encode(texts, convert_to_tensor=True), torch.Tensor)
    assert model.encode(texts, precision="int8").dtype == np.int8
    # chunking does not change a row
    np.testing.assert_array_equal(model.encode(texts[:3]), full[:3])


def test_many_chunks_keep_input_order(
    static_folder: Path, sts_sentences: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = SentenceTransformer(static_folder, device="cpu")
    expected = np.stack([model.encode(text) for text in sts_sentences[:40]])
    monkeypatch.setattr(static_encoding, "STATIC_CHUNK", 7)
    np.testing.assert_allclose(model.encode(sts_sentences[:40]), expected, atol=1e-7)


def test_static_refuses_what_it_does_not_have(static_folder: Path) -> None:
    model = SentenceTransformer(static_folder, device="cpu")
    with pytest.raises(
        ValueError, match="output_value 'token_embeddings' is not available for a static model"
    ):
        model.encode(["a"], output_value="token_embeddings")
    with pytest.raises(ValueError, match="table lookup"):
        SentenceTransformer(static_folder, device="cpu", dtype="bfloat16")
    with pytest.raises(ValueError, match="table lookup"):
        SentenceTransformer(static_folder, device="cpu", backend="onnx")
    with pytest.raises(ValueError, match="a Transformer, a StaticEmbedding"):
        SentenceTransformer(modules=[])


def test_distilled_model_saves_in_the_reference_format(
    distilled: SentenceTransformer, tmp_path: Path, sts_sentences: list[str]
) -> None:
    assert isinstance(distilled[0], StaticEmbedding)
    assert [type(module).__name__ for module in distilled] == ["StaticEmbedding", "Normalize"]
    assert distilled.get_sentence_embedding_dimension() == 16
    assert distilled.prompts["query"] == "query: "
    texts = sts_sentences[:200]
    embeddings = distilled.encode(texts)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    distilled.save(tmp_path / "static")
    np.testing.assert_array_equal(
        SentenceTransformer(tmp_path / "static", device="cpu").encode(texts), embeddings
    )
    reference = Reference(str(tmp_path / "static"), device="cpu")
    np.testing.assert_allclose(reference.encode(texts), embeddings, atol=1e-6)


def test_distilled_model_keeps_some_of_the_teacher(
    tiny_model: Callable[..., Path], sts_sentences: list[str]
) -> None:
    """Word overlap the teacher sees should show in the student's similarities too (random teacher, so
    only a loose check: the student ranks the texts' own near-copies above unrelated texts)."""
    teacher = SentenceTransformer(tiny_model("bert", normalize=True), device="cpu")
    student = omniembed.distill_static(teacher, pca_dims=None, sif_coefficient=None, show_progress_bar=False)
    texts = sts_sentences[:30]
    copies = [text + " ." for text in texts]
    scores = student.similarity(student.encode(texts), student.encode(copies)).numpy()
    assert (scores.argmax(axis=1) == np.arange(len(texts))).mean() > 0.9
    assert student.get_sentence_embedding_dimension() == 32


def test_distill_from_a_folder_path(tiny_model: Callable[..., Path]) -> None:
    student = omniembed.distill_static(
        tiny_model("bert"), pca_dims=4, normalize=False, show_progress_bar=False
    )
    assert [type(module).__name__ for module in student] == ["StaticEmbedding"]
    assert student.encode("hello").shape == (4,)
    assert student.max_seq_length == omniembed.modules.static_embedding.NO_LIMIT


def test_tokenizer_for_token_counting_callers(static_folder: Path) -> None:
    """The store's chunking and the server's usage counts call the tokenizer the transformers way."""
    from omniembed.store.chunking import chunk_text

    model = SentenceTransformer(static_folder, device="cpu")
    ids = model.tokenizer("boundary layer flow", add_special_tokens=False)["input_ids"]
    assert ids == model[0].tokenizer.encode("boundary layer flow", add_special_tokens=False).ids
    assert model.tokenizer.model_max_length == 128
    pieces = chunk_text(model, "supersonic flow " * 200)
    assert len(pieces) > 1
    # calling the transformers tokenizer leaves the model's own tokenizer (and numbers) alone
    model.tokenizer(["a " * 500], truncation=True, max_length=5)
    assert model[0].tokenizer.truncation["max_length"] == 128
    assert model[0].tokenizer.padding is None


@pytest.mark.slow
def test_distilled_minilm_keeps_most_of_its_sts_quality(minilm: SentenceTransformer, tmp_path: Path) -> None:
    """The real all-MiniLM-L6-v2 (0.867 STS-B dev Spearman) distilled: about 0.75 (a minute on 2 cores)."""
    from scipy.stats import spearmanr

    from helpers.static import sts_dev_pairs

    student = omniembed.distill_static(minilm, show_progress_bar=False)
    assert student.get_sentence_embedding_dimension() == 256
    first, second, gold = sts_dev_pairs()
    scores = student.similarity_pairwise(student.encode(first), student.encode(second)).numpy()
    assert spearmanr(scores, gold).statistic > 0.72
    student.save(tmp_path / "static")
    reference = Reference(str(tmp_path / "static"), device="cpu")
    np.testing.assert_allclose(reference.encode(first[:100]), student.encode(first[:100]), atol=1e-6)


def test_static_model_vectorizes_a_collection(distilled: SentenceTransformer) -> None:
    docs = ["boundary layer flow over a flat plate", "the stock market fell today", "supersonic " * 300]
    with omniembed.connect() as db:
        collection = db.collections.create(
            "Docs",
            properties={"body": "text"},
            vectors={"text": omniembed.Vectorizer(distilled, properties=["body"])},
        )
        assert collection.data.insert_many([{"body": doc} for doc in docs]).errors == {}
        found = collection.query.near_text(docs[1], limit=1).objects
    assert found[0].properties["body"] == docs[1]
