"""A short training run gives the reference trainer's weights; checkpoints load in both libraries;
bad input fails before training starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from helpers.training import NEGATIVES, PAIRS, both_models, weights

pytest.importorskip("datasets")
pytest.importorskip("sentence_transformers")
from datasets import Dataset

from omniembed.training import Trainer, TrainingArguments, evaluators, losses
from omniembed.training.data import DatasetColumnsError

pytestmark = pytest.mark.filterwarnings(
    # transformers' Trainer on a CPU-only machine: pin_memory has no device to pin for.
    "ignore:.*pin_memory.*:UserWarning",
)

PAIR_DATA = {
    "sentence1": [a for a, _, _ in PAIRS] * 2,
    "sentence2": [b for _, b, _ in PAIRS] * 2,
    "score": [s for _, _, s in PAIRS] * 2,
}
TRIPLET_DATA = {
    "anchor": [a for a, _, _ in PAIRS],
    "positive": [b for _, b, _ in PAIRS],
    "negative": NEGATIVES,
}
ARGS = {
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


@pytest.fixture(scope="module")
def folder(tiny_model: Callable[..., Path]) -> Path:
    return tiny_model("bert", seed=5)


def train_both(
    folder: Path,
    tmp_path: Path,
    data: dict[str, list[Any]],
    ours: Callable[[Any], Any],
    reference: Callable[[Any], Any],
) -> tuple[Any, Any]:
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    our_model, reference_model = both_models(folder)
    Trainer(
        model=our_model,
        args=TrainingArguments(output_dir=str(tmp_path / "ours"), **ARGS),
        train_dataset=Dataset.from_dict(data),
        loss=ours(our_model),
    ).train()
    SentenceTransformerTrainer(
        model=reference_model,
        args=SentenceTransformerTrainingArguments(output_dir=str(tmp_path / "reference"), **ARGS),
        train_dataset=Dataset.from_dict(data),
        loss=reference(reference_model),
    ).train()
    return our_model, reference_model


@pytest.mark.filterwarnings("ignore:.*DataParallel.*")
def test_training_gives_the_reference_trainers_weights(folder: Path, tmp_path: Path) -> None:
    from sentence_transformers.sentence_transformer import losses as reference_losses

    before = weights(both_models(folder)[0])
    ours, reference = train_both(folder, tmp_path, PAIR_DATA, losses.CoSENTLoss, reference_losses.CoSENTLoss)
    ours_after, reference_after = weights(ours), weights(reference)
    moved = max((ours_after[name] - before[name]).abs().max().item() for name in before)
    assert moved > 1e-3  # four steps at this learning rate move the weights well past the tolerance
    for name, value in ours_after.items():
        torch.testing.assert_close(value, reference_after[name], atol=2e-5, rtol=1e-4, msg=name)


@pytest.mark.filterwarnings("ignore:.*DataParallel.*")
def test_saved_model_loads_in_the_reference_with_the_same_embeddings(folder: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer as Reference

    from omniembed import SentenceTransformer

    model, _ = both_models(folder)
    texts = [a for a, _, _ in PAIRS]
    before = model.encode(texts)  # fills the fast paths' packed weights, which training must refresh
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(tmp_path / "run"), **{**ARGS, "max_steps": 2, "optim": "adamw_torch_fused"}
        ),
        train_dataset=Dataset.from_dict(TRIPLET_DATA),
        loss=losses.MultipleNegativesRankingLoss(model),
    )
    trainer.train()
    model.save(tmp_path / "final")
    expected = model.encode(texts)
    assert np.abs(expected - before).max() > 1e-3
    np.testing.assert_allclose(
        Reference(str(tmp_path / "final"), device="cpu").encode(texts), expected, atol=1e-5
    )
    np.testing.assert_allclose(
        SentenceTransformer(tmp_path / "final", device="cpu").encode(texts), expected, atol=1e-5
    )
    card = (tmp_path / "final" / "README.md").read_text()
    assert "MultipleNegativesRankingLoss" in card
    assert "Training rows: 8" in card
    assert str(folder) in card


@pytest.mark.filterwarnings("ignore:.*DataParallel.*")
def test_evaluator_runs_on_eval_steps_and_reaches_the_card(folder: Path, tmp_path: Path) -> None:
    model, _ = both_models(folder)
    dev = evaluators.EmbeddingSimilarityEvaluator(
        PAIR_DATA["sentence1"][:8], PAIR_DATA["sentence2"][:8], PAIR_DATA["score"][:8], name="dev"
    )
    args = {**ARGS, "eval_strategy": "steps", "eval_steps": 2, "save_strategy": "steps", "save_steps": 2}
    trainer = Trainer(
        model=model,
        args=TrainingArguments(output_dir=str(tmp_path / "run"), **args),
        train_dataset=Dataset.from_dict(PAIR_DATA),
        loss=losses.CoSENTLoss(model),
        evaluator=dev,
    )
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "eval_dev_spearman_cosine" in entry]
    assert [entry["step"] for entry in logged] == [2, 4]
    checkpoint = tmp_path / "run" / "checkpoint-4"
    assert (checkpoint / "modules.json").is_file()
    assert (checkpoint / "README.md").is_file()
    assert "dev_spearman_cosine" in (checkpoint / "README.md").read_text()


def test_missing_label_column_fails_before_training(folder: Path, tmp_path: Path) -> None:
    model, _ = both_models(folder)
    data = Dataset.from_dict({"sentence1": PAIR_DATA["sentence1"], "sentence2": PAIR_DATA["sentence2"]})
    with pytest.raises(DatasetColumnsError, match=r"CoSENTLoss takes \(sentence1, sentence2, score\).*label"):
        Trainer(
            model=model,
            args=TrainingArguments(output_dir=str(tmp_path), **ARGS),
            train_dataset=data,
            loss=losses.CoSENTLoss(model),
        )


def test_wrong_column_count_fails_before_training(folder: Path, tmp_path: Path) -> None:
    model, _ = both_models(folder)
    data = Dataset.from_dict({"anchor": TRIPLET_DATA["anchor"]})
    with pytest.raises(DatasetColumnsError, match=r"text columns \['anchor'\].*at least 2"):
        Trainer(
            model=model,
            args=TrainingArguments(output_dir=str(tmp_path), **ARGS),
            train_dataset=data,
            loss=losses.MultipleNegativesRankingLoss(model),
        )


def test_non_numeric_scores_fail_before_training(folder: Path, tmp_path: Path) -> None:
    model, _ = both_models(folder)
    data = Dataset.from_dict({**PAIR_DATA, "score": [str(s) for s in PAIR_DATA["score"]]})
    with pytest.raises(DatasetColumnsError, match=r"label column 'score'.*string.*cast_column"):
        Trainer(
            model=model,
            args=TrainingArguments(output_dir=str(tmp_path), **ARGS),
            train_dataset=data,
            loss=losses.CoSENTLoss(model),
        )


def test_empty_dataset_fails_before_training(folder: Path, tmp_path: Path) -> None:
    model, _ = both_models(folder)
    data = Dataset.from_dict({"sentence1": [], "sentence2": [], "score": []})
    with pytest.raises(DatasetColumnsError, match="empty"):
        Trainer(
            model=model,
            args=TrainingArguments(output_dir=str(tmp_path), **ARGS),
            train_dataset=data,
            loss=losses.CoSENTLoss(model),
        )


def test_loss_made_with_another_model_is_refused(folder: Path, tmp_path: Path) -> None:
    model, _ = both_models(folder)
    other, _ = both_models(folder)
    with pytest.raises(ValueError, match="different model"):
        Trainer(
            model=model,
            args=TrainingArguments(output_dir=str(tmp_path), **ARGS),
            train_dataset=Dataset.from_dict(PAIR_DATA),
            loss=losses.CoSENTLoss(other),
        )


def test_no_duplicates_sampler_keeps_each_text_once_per_batch() -> None:
    from omniembed.training.samplers import NoDuplicatesBatchSampler

    data = Dataset.from_dict(
        {"anchor": ["a", "a", "b", "c", "a", "d"], "positive": ["x", "y", "x", "z", "w", "v"]}
    )
    batches = list(NoDuplicatesBatchSampler(data, batch_size=3, drop_last=False, seed=1))
    assert sorted(i for batch in batches for i in batch) == list(range(6))
    for batch in batches:
        texts = [data[i][column] for i in batch for column in ("anchor", "positive")]
        assert len(texts) == len(set(texts))
