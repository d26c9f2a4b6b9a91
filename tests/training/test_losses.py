"""Each loss gives the reference library's loss value and gradients on the same batch and model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from omniembed.training import losses
from omniembed.training.data import Collator, split_batch

from helpers.training import NEGATIVES, PAIRS, both_models, gradients, reference_features

pytest.importorskip("sentence_transformers")
import sentence_transformers.sentence_transformer.losses as reference_losses

ANCHORS = [a for a, _, _ in PAIRS]
POSITIVES = [b for _, b, _ in PAIRS]
SCORES = [s for _, _, s in PAIRS]
BINARY = [float(s > 0.5) for s in SCORES]


@pytest.fixture(scope="module")
def folder(tiny_model: Callable[..., Path]) -> Path:
    return tiny_model("bert", seed=3)


def run_ours(
    model: Any, make_loss: Callable[[Any], Any], columns: dict[str, list[Any]]
) -> tuple[float, dict]:
    rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    features, labels = split_batch(Collator(model)(rows))
    model.train()
    model.zero_grad()
    loss = make_loss(model)(features, labels)
    loss.backward()
    return loss.item(), gradients(model)


def run_reference(
    model: Any, make_loss: Callable[[Any], Any], columns: dict[str, list[Any]]
) -> tuple[float, dict]:
    label_name = next((name for name in ("label", "score") if name in columns), None)
    texts = [values for name, values in columns.items() if name != label_name]
    labels = torch.tensor(columns[label_name]) if label_name else None
    model.train()
    model.zero_grad()
    loss = make_loss(model)([reference_features(model, column) for column in texts], labels)
    loss.backward()
    return loss.item(), gradients(model)


def assert_same(
    folder: Path, ours: Callable[[Any], Any], reference: Callable[[Any], Any], columns: dict
) -> None:
    our_model, reference_model = both_models(folder)
    our_value, our_grads = run_ours(our_model, ours, columns)
    reference_value, reference_grads = run_reference(reference_model, reference, columns)
    assert our_value == pytest.approx(reference_value, abs=1e-5, rel=1e-5)
    assert our_grads.keys() == reference_grads.keys()
    for name, gradient in our_grads.items():
        torch.testing.assert_close(gradient, reference_grads[name], atol=1e-5, rtol=1e-4, msg=name)


PAIR_COLUMNS = {"sentence1": ANCHORS, "sentence2": POSITIVES, "score": SCORES}
TRIPLETS = {"anchor": ANCHORS, "positive": POSITIVES, "negative": NEGATIVES}

CASES: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any], dict[str, list[Any]]]] = {
    "mnrl": (losses.MultipleNegativesRankingLoss, reference_losses.MultipleNegativesRankingLoss, TRIPLETS),
    "mnrl-pairs": (
        lambda m: losses.MultipleNegativesRankingLoss(m, scale=10.0),
        lambda m: reference_losses.MultipleNegativesRankingLoss(m, scale=10.0),
        {"anchor": ANCHORS, "positive": POSITIVES},
    ),
    "mnrl-symmetric": (
        lambda m: losses.MultipleNegativesRankingLoss(m, symmetric=True),
        lambda m: reference_losses.MultipleNegativesRankingLoss(
            m, directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction"
        ),
        {"anchor": ANCHORS, "positive": POSITIVES},
    ),
    "cached-mnrl": (
        lambda m: losses.CachedMultipleNegativesRankingLoss(m, mini_batch_size=3),
        lambda m: reference_losses.CachedMultipleNegativesRankingLoss(m, mini_batch_size=3),
        TRIPLETS,
    ),
    "cosent": (losses.CoSENTLoss, reference_losses.CoSENTLoss, PAIR_COLUMNS),
    "angle": (losses.AnglELoss, reference_losses.AnglELoss, PAIR_COLUMNS),
    "cosine-similarity": (losses.CosineSimilarityLoss, reference_losses.CosineSimilarityLoss, PAIR_COLUMNS),
    "contrastive": (
        losses.ContrastiveLoss,
        reference_losses.ContrastiveLoss,
        {"sentence1": ANCHORS, "sentence2": POSITIVES, "label": BINARY},
    ),
    "triplet": (losses.TripletLoss, reference_losses.TripletLoss, TRIPLETS),
    "triplet-cosine": (
        lambda m: losses.TripletLoss(m, distance_metric="cosine", triplet_margin=0.5),
        lambda m: reference_losses.TripletLoss(
            m, distance_metric=reference_losses.TripletDistanceMetric.COSINE, triplet_margin=0.5
        ),
        TRIPLETS,
    ),
    "margin-mse": (
        losses.MarginMSELoss,
        reference_losses.MarginMSELoss,
        {**TRIPLETS, "label": [[s, s / 2] for s in SCORES]},
    ),
    "matryoshka-cosent": (
        lambda m: losses.MatryoshkaLoss(m, losses.CoSENTLoss(m), [32, 16, 8]),
        lambda m: reference_losses.MatryoshkaLoss(m, reference_losses.CoSENTLoss(m), [32, 16, 8]),
        PAIR_COLUMNS,
    ),
    "matryoshka-mnrl": (
        lambda m: losses.MatryoshkaLoss(m, losses.MultipleNegativesRankingLoss(m), [32, 8], [1.0, 0.5]),
        lambda m: reference_losses.MatryoshkaLoss(
            m, reference_losses.MultipleNegativesRankingLoss(m), [32, 8], [1.0, 0.5]
        ),
        TRIPLETS,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_and_gradients_match_the_reference(folder: Path, case: str) -> None:
    ours, reference, columns = CASES[case]
    assert_same(folder, ours, reference, columns)


def test_mse_loss_matches_the_reference(folder: Path) -> None:
    torch.manual_seed(0)
    teacher = torch.randn(len(ANCHORS), 32).tolist()
    columns = {"english": ANCHORS, "other": POSITIVES, "label": teacher}
    assert_same(folder, losses.MSELoss, reference_losses.MSELoss, columns)


def test_cached_loss_equals_the_plain_loss(folder: Path) -> None:
    """GradCache changes the memory, not the numbers."""
    from helpers.training import both_models as load

    first, _ = load(folder)
    second, _ = load(folder)
    plain = run_ours(first, losses.MultipleNegativesRankingLoss, TRIPLETS)
    cached = run_ours(
        second, lambda m: losses.CachedMultipleNegativesRankingLoss(m, mini_batch_size=2), TRIPLETS
    )
    assert cached[0] == pytest.approx(plain[0], abs=1e-6)
    for name, gradient in plain[1].items():
        torch.testing.assert_close(cached[1][name], gradient, atol=1e-6, rtol=1e-5)


def test_matryoshka_dimension_above_the_models_is_refused(folder: Path) -> None:
    model, _ = both_models(folder)
    with pytest.raises(ValueError, match="above the model's embedding dimension 32"):
        losses.MatryoshkaLoss(model, losses.CoSENTLoss(model), [64, 16])


def test_a_loss_takes_our_model_only(folder: Path) -> None:
    _, reference = both_models(folder)
    with pytest.raises(TypeError, match="omniembed SentenceTransformer"):
        losses.CoSENTLoss(reference)
