"""Each evaluator gives the reference evaluator's numbers on the same model and data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from omniembed.training import evaluators

from helpers.training import NEGATIVES, PAIRS, both_models

pytest.importorskip("sentence_transformers")
from sentence_transformers.sentence_transformer import evaluation as reference_evaluation

S1 = [a for a, _, _ in PAIRS]
S2 = [b for _, b, _ in PAIRS]
SCORES = [s for _, _, s in PAIRS]


@pytest.fixture(scope="module")
def folder(tiny_model: Callable[..., Path]) -> Path:
    return tiny_model("bert", seed=11)


def assert_same_metrics(ours: dict[str, float], reference: dict[str, float]) -> None:
    assert set(ours) <= set(reference), sorted(set(ours) - set(reference))
    for key, value in ours.items():
        assert value == pytest.approx(reference[key], abs=1e-6, rel=1e-6), key


def test_embedding_similarity(folder: Path, tmp_path: Path) -> None:
    ours, reference = both_models(folder)
    names = ["cosine", "dot", "euclidean", "manhattan"]
    mine = evaluators.EmbeddingSimilarityEvaluator(S1, S2, SCORES, similarity_fn_names=names, name="sts")
    theirs = reference_evaluation.EmbeddingSimilarityEvaluator(
        S1, S2, SCORES, similarity_fn_names=names, name="sts"
    )
    got = mine(ours, output_path=str(tmp_path))
    assert_same_metrics(got, theirs(reference))
    assert set(got) == set(theirs(reference))
    assert mine.primary_metric_name == theirs.primary_metric == "sts_spearman_max"
    assert (tmp_path / "similarity_evaluation_sts_results.csv").is_file()


def test_information_retrieval(folder: Path) -> None:
    ours, reference = both_models(folder)
    corpus = {f"d{i}": text for i, text in enumerate(S2 + NEGATIVES)}
    queries = {f"q{i}": text for i, text in enumerate(S1)}
    relevant = {f"q{i}": {f"d{i}", f"d{(i + 3) % 16}"} for i in range(len(S1))}
    options = {"mrr_at_k": [3, 10], "ndcg_at_k": [5, 10], "map_at_k": [10], "name": "ir"}
    got = evaluators.InformationRetrievalEvaluator(queries, corpus, relevant, **options)(ours)
    expected = reference_evaluation.InformationRetrievalEvaluator(queries, corpus, relevant, **options)(
        reference
    )
    assert_same_metrics(got, expected)
    assert set(got) == set(expected)


def test_mse_and_translation(folder: Path, tiny_model: Callable[..., Path]) -> None:
    ours, reference = both_models(folder)
    teacher, reference_teacher = both_models(tiny_model("bert", seed=12))
    got = evaluators.MSEEvaluator(S1, S2, teacher_model=teacher, name="mse")(ours)
    expected = reference_evaluation.MSEEvaluator(S1, S2, teacher_model=reference_teacher, name="mse")(
        reference
    )
    assert_same_metrics(got, expected)
    got = evaluators.TranslationEvaluator(S1, S2, name="tr")(ours)
    expected = reference_evaluation.TranslationEvaluator(S1, S2, name="tr")(reference)
    assert_same_metrics(got, expected)
    assert set(got) == set(expected)


def test_sequential(folder: Path) -> None:
    ours, reference = both_models(folder)
    mine = evaluators.SequentialEvaluator(
        [
            evaluators.TranslationEvaluator(S1, S2, name="tr"),
            evaluators.EmbeddingSimilarityEvaluator(S1, S2, SCORES),
        ]
    )
    theirs = reference_evaluation.SequentialEvaluator(
        [
            reference_evaluation.TranslationEvaluator(S1, S2, name="tr"),
            reference_evaluation.EmbeddingSimilarityEvaluator(S1, S2, SCORES),
        ]
    )
    got, expected = mine(ours), theirs(reference)
    assert_same_metrics(got, expected)
    assert got["sequential_score"] == pytest.approx(expected["spearman_cosine"])


def test_correlations_match_scipy() -> None:
    from scipy.stats import pearsonr, spearmanr

    from omniembed.training.evaluators.similarity import pearson, spearman

    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 50).astype(float)  # ties, as gold scores have
    y = x + rng.normal(size=50)
    assert pearson(x, y) == pytest.approx(pearsonr(x, y)[0], abs=1e-12)
    assert spearman(x, y) == pytest.approx(spearmanr(x, y)[0], abs=1e-12)
