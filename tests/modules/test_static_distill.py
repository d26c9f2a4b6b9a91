"""Distilling a static table: each vocabulary token through the teacher, PCA, SIF weights."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from omniembed import SentenceTransformer, StaticEmbedding
from omniembed.modules.static_distill import (
    principal_components,
    sif_weights,
    special_tokens,
    vocabulary_embeddings,
)


@pytest.fixture(scope="module")
def teacher(tiny_model: Callable[..., Path]) -> SentenceTransformer:
    return SentenceTransformer(tiny_model("bert", normalize=True), device="cpu")


def test_each_token_is_embedded_alone_as_the_teacher_pools(teacher: SentenceTransformer) -> None:
    table = vocabulary_embeddings(list(teacher), batch_size=4096, progress=False).numpy()
    assert table.shape == (30522, 32)
    # "the" is one token, so the teacher's own encoding of "the" ([CLS] the [SEP], mean pooled) is its
    # row; the teacher's Normalize is left out of the table
    the = teacher.tokenizer.convert_tokens_to_ids("the")
    unnormalized = SentenceTransformer(modules=list(teacher)[:-1], device="cpu")
    np.testing.assert_allclose(table[the], unnormalized.encode("the"), atol=1e-5)
    assert abs(np.linalg.norm(table[the]) - 1) > 1e-3


def test_special_tokens_of_a_bert_tokenizer(teacher: SentenceTransformer) -> None:
    tokenizer = teacher.tokenizer
    assert special_tokens(tokenizer) == ([tokenizer.cls_token_id], [tokenizer.sep_token_id])


def test_principal_components_match_sklearn() -> None:
    from sklearn.decomposition import PCA

    rows = np.random.default_rng(1).normal(size=(300, 12)) @ np.random.default_rng(2).normal(size=(12, 12))
    ours = principal_components(rows, 5)
    theirs = PCA(n_components=5, svd_solver="full").fit_transform(rows)
    # components are defined up to sign
    np.testing.assert_allclose(np.abs(ours), np.abs(theirs), atol=1e-8)
    assert np.all(np.abs((ours * theirs).sum(axis=0)) > 0)


def test_sif_weights_follow_rank() -> None:
    weights = sif_weights(30522, 1e-4)
    assert np.all(np.diff(weights) > 0)  # a later id is a rarer token: a larger weight
    assert 0 < weights[0] < 0.1
    assert 0.9 < weights[-1] < 1


@pytest.mark.parametrize(("pca_dims", "message"), [(64, "pca_dims=64 does not fit"), (0, "pca_dims=0")])
def test_pca_dims_that_do_not_fit(teacher: SentenceTransformer, pca_dims: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StaticEmbedding.from_distillation(teacher, pca_dims=pca_dims, show_progress_bar=False)


def test_bad_sif_coefficient() -> None:
    with pytest.raises(ValueError, match="sif_coefficient must be positive"):
        sif_weights(10, 0.0)


def test_teacher_must_start_with_a_transformer(teacher: SentenceTransformer) -> None:
    with pytest.raises(TypeError, match="starting with Normalize"):
        vocabulary_embeddings(list(teacher)[-1:], progress=False)
