"""Reranker training: each loss gives the reference's loss and gradients on the same batch, the
evaluator its numbers, and a trained model saves to a folder the reference scores the same way."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from omniembed.rerank.cross_encoder import CrossEncoder
from omniembed.training.rerank import (
    BinaryCrossEntropyLoss,
    ListNetLoss,
    MultipleNegativesRankingLoss,
    RerankingEvaluator,
)

from helpers import models as mf
from helpers.training import NEGATIVES, PAIRS, no_dropout

pytest.importorskip("datasets")
pytest.importorskip("sentence_transformers")
from datasets import Dataset
from sentence_transformers.cross_encoder import CrossEncoder as Reference
from sentence_transformers.cross_encoder import losses as reference_losses

pytestmark = pytest.mark.filterwarnings("ignore:.*pin_memory.*:UserWarning", "ignore:.*DataParallel.*")

QUERIES = [a for a, _, _ in PAIRS]
DOCUMENTS = [b for _, b, _ in PAIRS]
LABELS = [float(s > 0.5) for _, _, s in PAIRS]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mf.build_cross_encoder(tmp_path_factory.mktemp("cross") / "model", seed=4)


def both(folder: Path) -> tuple[Any, Any]:
    return (
        no_dropout(CrossEncoder(folder, device="cpu")),
        no_dropout(Reference(str(folder), device="cpu")),
    )


def grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Gradients keyed by the name inside the transformers network."""
    found = {}
    for name, parameter in model.named_parameters():
        if parameter.grad is not None:
            found[re.sub(r"^(scorer\.model\.|0\.model\.|model\.)", "", name)] = parameter.grad.clone()
    return found


def run(model: Any, loss: Any, inputs: list[Any], labels: Any) -> tuple[float, dict[str, torch.Tensor]]:
    model.train()
    model.zero_grad()
    value = loss(inputs, labels)
    value.backward()
    return value.item(), grads(model)


LISTS = [DOCUMENTS[:3], [NEGATIVES[0], DOCUMENTS[1]], DOCUMENTS[2:7]]
LIST_LABELS = [[1.0, 0.0, 0.5], [0.0, 1.0], [0.0, 0.0, 1.0, 0.2, 0.0]]
CASES: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any], list[Any], Any]] = {
    "bce": (
        BinaryCrossEntropyLoss,
        reference_losses.BinaryCrossEntropyLoss,
        [QUERIES, DOCUMENTS],
        torch.tensor(LABELS),
    ),
    "bce-pos-weight": (
        lambda m: BinaryCrossEntropyLoss(m, pos_weight=torch.tensor(3.0)),
        lambda m: reference_losses.BinaryCrossEntropyLoss(m, pos_weight=torch.tensor(3.0)),
        [QUERIES, DOCUMENTS],
        torch.tensor(LABELS),
    ),
    "mnrl": (
        lambda m: MultipleNegativesRankingLoss(m, num_negatives=None),
        lambda m: reference_losses.MultipleNegativesRankingLoss(m, num_negatives=None),
        [QUERIES[:4], DOCUMENTS[:4]],
        None,
    ),
    "mnrl-hard-negatives": (
        lambda m: MultipleNegativesRankingLoss(m, num_negatives=None, activation_fn=None, scale=5.0),
        lambda m: reference_losses.MultipleNegativesRankingLoss(
            m, num_negatives=None, activation_fn=None, scale=5.0
        ),
        [QUERIES[:4], DOCUMENTS[:4], NEGATIVES[:4]],
        None,
    ),
    "listnet": (
        ListNetLoss,
        reference_losses.ListNetLoss,
        [QUERIES[:3], LISTS],
        [torch.tensor(row) for row in LIST_LABELS],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_and_gradients_match_the_reference(folder: Path, case: str) -> None:
    ours_loss, reference_loss, inputs, labels = CASES[case]
    ours, reference = both(folder)
    value, our_grads = run(ours, ours_loss(ours), inputs, labels)
    expected, reference_grads = run(reference, reference_loss(reference), inputs, labels)
    assert value == pytest.approx(expected, abs=1e-5)
    assert set(our_grads) == set(reference_grads)
    for name, grad in our_grads.items():
        torch.testing.assert_close(grad, reference_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_sampled_in_batch_negatives_match_the_reference_for_one_seed(folder: Path) -> None:
    ours, reference = both(folder)
    torch.manual_seed(11)
    value, _ = run(ours, MultipleNegativesRankingLoss(ours, num_negatives=2), [QUERIES, DOCUMENTS], None)
    torch.manual_seed(11)
    expected, _ = run(
        reference,
        reference_losses.MultipleNegativesRankingLoss(reference, num_negatives=2),
        [QUERIES, DOCUMENTS],
        None,
    )
    assert value == pytest.approx(expected, abs=1e-5)


def evaluator_samples() -> list[dict[str, Any]]:
    return [
        {"query": QUERIES[0], "positive": [DOCUMENTS[0]], "negative": NEGATIVES[:4]},
        {"query": QUERIES[1], "positive": DOCUMENTS[1], "negative": [*NEGATIVES[2:7], DOCUMENTS[5]]},
        {"query": QUERIES[2], "positive": [DOCUMENTS[2], DOCUMENTS[7]], "negative": NEGATIVES[:3]},
        {"query": QUERIES[3], "positive": [DOCUMENTS[3]], "negative": [*NEGATIVES, *DOCUMENTS[4:7]]},
    ]


def document_samples() -> list[dict[str, Any]]:
    return [
        {
            "query": QUERIES[0],
            "positive": [DOCUMENTS[0]],
            "documents": [NEGATIVES[0], DOCUMENTS[0], NEGATIVES[1]],
        },
        {
            "query": QUERIES[1],
            "positive": [DOCUMENTS[1], DOCUMENTS[2]],
            "documents": [*NEGATIVES[:5], DOCUMENTS[1]],
        },
        {"query": QUERIES[2], "positive": [DOCUMENTS[2]], "documents": NEGATIVES[:4]},
    ]


@pytest.mark.parametrize("samples", [evaluator_samples, document_samples])
@pytest.mark.parametrize("always_rerank_positives", [True, False])
@pytest.mark.parametrize("at_k", [3, 10])
def test_evaluator_gives_the_references_numbers(
    folder: Path, samples: Callable[[], list[dict[str, Any]]], always_rerank_positives: bool, at_k: int
) -> None:
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

    ours, reference = both(folder)
    options = {"at_k": at_k, "always_rerank_positives": always_rerank_positives, "name": "dev"}
    found = RerankingEvaluator(samples(), **options)(ours)
    expected = CrossEncoderRerankingEvaluator(samples(), **options)(reference)
    assert set(found) == set(expected)
    for key, value in expected.items():
        assert found[key] == pytest.approx(value, abs=1e-6), key


def test_evaluator_refuses_a_sample_without_candidates() -> None:
    with pytest.raises(ValueError, match="exactly one of 'negative' and 'documents'"):
        RerankingEvaluator([{"query": "q", "positive": "p"}])


TRAIN_ARGS = {
    "per_device_train_batch_size": 4,
    "learning_rate": 1e-3,
    "num_train_epochs": 1,
    "seed": 7,
    "report_to": "none",
    "save_strategy": "no",
    "logging_strategy": "no",
    "use_cpu": True,
    "dataloader_pin_memory": False,
    "disable_tqdm": True,
}
BCE_DATA = {"query": QUERIES * 2, "document": DOCUMENTS * 2, "label": LABELS * 2}


def test_training_gives_the_reference_trainers_weights(folder: Path, tmp_path: Path) -> None:
    from sentence_transformers.cross_encoder import CrossEncoderTrainer as ReferenceTrainer
    from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments

    from omniembed.training import TrainingArguments
    from omniembed.training.rerank import CrossEncoderTrainer

    ours, reference = both(folder)
    before = {name: p.detach().clone() for name, p in ours.named_parameters()}
    CrossEncoderTrainer(
        model=ours,
        args=TrainingArguments(output_dir=str(tmp_path / "ours"), **TRAIN_ARGS),
        train_dataset=Dataset.from_dict(BCE_DATA),
        loss=BinaryCrossEntropyLoss(ours),
    ).train()
    ReferenceTrainer(
        model=reference,
        args=CrossEncoderTrainingArguments(output_dir=str(tmp_path / "reference"), **TRAIN_ARGS),
        train_dataset=Dataset.from_dict(BCE_DATA),
        loss=reference_losses.BinaryCrossEntropyLoss(reference),
    ).train()
    moved = max((p.detach() - before[name]).abs().max().item() for name, p in ours.named_parameters())
    assert moved > 1e-3
    pairs = list(zip(QUERIES, NEGATIVES, strict=True))
    np.testing.assert_allclose(ours.predict(pairs), reference.predict(pairs), atol=2e-5)


def test_trained_model_saves_a_folder_the_reference_scores_the_same(folder: Path, tmp_path: Path) -> None:
    from omniembed.training import TrainingArguments
    from omniembed.training.rerank import CrossEncoderTrainer, RerankingEvaluator

    model, _ = both(folder)
    pairs = list(zip(QUERIES, DOCUMENTS, strict=True))
    before = model.predict(pairs)
    evaluator = RerankingEvaluator(evaluator_samples(), name="dev")
    trainer = CrossEncoderTrainer(
        model=model,
        args=TrainingArguments(output_dir=str(tmp_path / "run"), **{**TRAIN_ARGS, "max_steps": 3}),
        train_dataset=Dataset.from_dict({"query": QUERIES, "positive": DOCUMENTS, "negative": NEGATIVES}),
        loss=MultipleNegativesRankingLoss(model, num_negatives=2),
        evaluator=evaluator,
    )
    trainer.train()
    metrics = trainer.evaluate()
    assert "eval_dev_ndcg@10" in metrics
    model.save(tmp_path / "final")
    expected = model.predict(pairs)
    assert np.abs(expected - before).max() > 1e-4
    np.testing.assert_allclose(
        Reference(str(tmp_path / "final"), device="cpu").predict(pairs), expected, atol=1e-5
    )
    np.testing.assert_allclose(
        CrossEncoder(tmp_path / "final", device="cpu").predict(pairs), expected, atol=1e-5
    )
    card = (tmp_path / "final" / "README.md").read_text()
    assert "MultipleNegativesRankingLoss" in card
    assert "# Fine-tuned reranker" in card


def test_listwise_training_runs_on_list_columns(folder: Path, tmp_path: Path) -> None:
    from omniembed.training import TrainingArguments
    from omniembed.training.rerank import CrossEncoderTrainer

    model, _ = both(folder)
    data = Dataset.from_dict({"query": QUERIES[:3], "docs": LISTS, "labels": LIST_LABELS})
    trainer = CrossEncoderTrainer(
        model=model,
        args=TrainingArguments(output_dir=str(tmp_path / "run"), **{**TRAIN_ARGS, "max_steps": 1}),
        train_dataset=data,
        loss=ListNetLoss(model),
    )
    assert trainer.train().training_loss > 0


def test_bad_input_fails_before_training(folder: Path, tmp_path: Path) -> None:
    from omniembed.training import TrainingArguments
    from omniembed.training.data import DatasetColumnsError
    from omniembed.training.rerank import CrossEncoderTrainer

    model, _ = both(folder)
    args = TrainingArguments(output_dir=str(tmp_path / "run"), **TRAIN_ARGS)
    with pytest.raises(DatasetColumnsError, match="label"):
        CrossEncoderTrainer(
            model=model, args=args, train_dataset=Dataset.from_dict({"q": QUERIES, "d": DOCUMENTS})
        )
    other, _ = both(folder)
    with pytest.raises(ValueError, match="different model"):
        CrossEncoderTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_dict(BCE_DATA),
            loss=BinaryCrossEntropyLoss(other),
        )
    three = CrossEncoder(mf.build_cross_encoder(tmp_path / "three", num_labels=3), device="cpu")
    with pytest.raises(ValueError, match="one output label"):
        BinaryCrossEntropyLoss(three)
