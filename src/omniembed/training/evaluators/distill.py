"""Evaluators for distillation: MSE against a teacher, and translation matching accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from omniembed.embedding.similarity import cos_sim
from omniembed.training.evaluators.base import Evaluator

if TYPE_CHECKING:
    from omniembed.embedding.encoder import SentenceTransformer


class MSEEvaluator(Evaluator):
    """Mean squared error (times 100) between the student's embeddings of ``target_sentences`` and
    the teacher's of ``source_sentences``; reported as ``negative_mse`` (higher is better).

    Args:
        source_sentences: embedded once by ``teacher_model``.
        target_sentences: embedded by the model under evaluation (row ``i`` translates source ``i``).
        teacher_model: the model whose embeddings the student learns.
        batch_size: for encoding.
        name: prefixed to each metric.
        truncate_dim: evaluate embeddings truncated to this width.
    """

    primary_metric = "negative_mse"

    def __init__(
        self,
        source_sentences: Sequence[str],
        target_sentences: Sequence[str],
        teacher_model: SentenceTransformer,
        batch_size: int = 32,
        name: str = "",
        truncate_dim: int | None = None,
        show_progress_bar: bool = False,
    ) -> None:
        _check_parallel(source_sentences, target_sentences)
        self.target_sentences = list(target_sentences)
        self.batch_size = batch_size
        self.name = name
        self.truncate_dim = truncate_dim
        self.show_progress_bar = show_progress_bar
        self.csv_file = f"mse_evaluation_{name}_results.csv"
        self.source_embeddings = self._embed(teacher_model, list(source_sentences))

    def _embed(self, model: SentenceTransformer, sentences: list[str]) -> np.ndarray:
        embeddings: np.ndarray = model.encode(
            sentences,
            batch_size=self.batch_size,
            truncate_dim=self.truncate_dim,
            show_progress_bar=self.show_progress_bar,
        )
        return embeddings

    def compute_metrics(self, model: SentenceTransformer) -> dict[str, float]:
        """``negative_mse``: minus 100 times the mean squared error."""
        targets = self._embed(model, self.target_sentences)
        mse = float(((self.source_embeddings - targets) ** 2).mean()) * 100
        return {"negative_mse": -mse}

    @property
    def description(self) -> str:
        """What is measured."""
        return "Knowledge Distillation"


class TranslationEvaluator(Evaluator):
    """How often a sentence's most similar translation (by cosine) is its own, in both directions.

    Metrics: ``src2trg_accuracy``, ``trg2src_accuracy`` and their ``mean_accuracy`` (primary). A
    match counts when the text found equals the right one (duplicate texts count as right).

    Args:
        source_sentences: sentences in one language.
        target_sentences: their translations, row for row.
        batch_size: for encoding.
        name: prefixed to each metric.
        truncate_dim: evaluate embeddings truncated to this width.
    """

    primary_metric = "mean_accuracy"

    def __init__(
        self,
        source_sentences: Sequence[str],
        target_sentences: Sequence[str],
        batch_size: int = 16,
        name: str = "",
        truncate_dim: int | None = None,
        show_progress_bar: bool = False,
    ) -> None:
        _check_parallel(source_sentences, target_sentences)
        self.source_sentences = list(source_sentences)
        self.target_sentences = list(target_sentences)
        self.batch_size = batch_size
        self.name = name
        self.truncate_dim = truncate_dim
        self.show_progress_bar = show_progress_bar
        self.csv_file = f"translation_evaluation{'_' + name if name else ''}_results.csv"

    def compute_metrics(self, model: SentenceTransformer) -> dict[str, float]:
        """Matching accuracy source to target, target to source, and their mean."""
        options: dict[str, Any] = {
            "batch_size": self.batch_size,
            "truncate_dim": self.truncate_dim,
            "convert_to_tensor": True,
        }
        options["show_progress_bar"] = self.show_progress_bar
        sources = model.encode(self.source_sentences, **options)
        targets = model.encode(self.target_sentences, **options)
        scores = cos_sim(sources, targets)
        src2trg = _matches(scores, self.target_sentences)
        trg2src = _matches(scores.T, self.source_sentences)
        return {
            "src2trg_accuracy": src2trg,
            "trg2src_accuracy": trg2src,
            "mean_accuracy": (src2trg + trg2src) / 2,
        }

    @property
    def description(self) -> str:
        """What is measured."""
        return "Translation"


def _matches(scores: torch.Tensor, texts: list[str]) -> float:
    best: list[int] = scores.argmax(dim=1).tolist()
    return float(sum(texts[i] == texts[j] for i, j in enumerate(best)) / len(texts))


def _check_parallel(source_sentences: Sequence[str], target_sentences: Sequence[str]) -> None:
    """Refuse source and target lists of different lengths (row i of one translates row i of the other)."""
    if len(source_sentences) != len(target_sentences):
        raise ValueError(
            f"source_sentences ({len(source_sentences)}) and target_sentences ({len(target_sentences)}) "
            "must have the same length"
        )
