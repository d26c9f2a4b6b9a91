"""EmbeddingSimilarityEvaluator: how well embedding similarities rank scored sentence pairs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from omniembed.embedding.similarity import similarity_functions
from omniembed.training.evaluators.base import Evaluator

if TYPE_CHECKING:
    from omniembed.embedding.encoder import SentenceTransformer


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two vectors (in float64).

    >>> round(pearson(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 7.0])), 4)
    0.9934
    """
    x = np.asarray(x, dtype=np.float64) - np.mean(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64) - np.mean(y, dtype=np.float64)
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator else float("nan")


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    values = np.asarray(values)
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values), dtype=np.float64)
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (Pearson of the average ranks).

    >>> spearman(np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 9.0]))
    1.0
    """
    return pearson(average_ranks(x), average_ranks(y))


class EmbeddingSimilarityEvaluator(Evaluator):
    """Pearson and Spearman correlation between gold scores and the pairs' embedding similarities.

    Metrics: ``pearson_<fn>`` and ``spearman_<fn>`` for each similarity function (and
    ``*_max`` when there are several); the primary metric is ``spearman_<main_similarity>``.

    Args:
        sentences1: the first sentence of each pair.
        sentences2: the second.
        scores: the gold score of each pair.
        batch_size: for encoding.
        main_similarity: the function of the primary metric.
        similarity_fn_names: the functions to report (default: the model's).
        name: prefixed to each metric (``sts-dev`` gives ``sts-dev_spearman_cosine``).
        truncate_dim: evaluate embeddings truncated to this width.
    """

    def __init__(
        self,
        sentences1: Sequence[str],
        sentences2: Sequence[str],
        scores: Sequence[float],
        batch_size: int = 16,
        main_similarity: str | None = None,
        similarity_fn_names: Sequence[str] | None = None,
        name: str = "",
        truncate_dim: int | None = None,
        show_progress_bar: bool = False,
    ) -> None:
        if not len(sentences1) == len(sentences2) == len(scores):
            raise ValueError(
                f"sentences1, sentences2 and scores must have one entry per pair, got "
                f"{len(sentences1)}, {len(sentences2)} and {len(scores)}"
            )
        self.sentences1, self.sentences2 = list(sentences1), list(sentences2)
        self.scores = np.asarray(scores, dtype=np.float64)
        self.batch_size = batch_size
        self.main_similarity = main_similarity
        names = list(similarity_fn_names or ([main_similarity] if main_similarity else []))
        for fn_name in names:
            similarity_functions(fn_name)  # raises on an unknown name
        self.similarity_fn_names = names
        self.name = name
        self.truncate_dim = truncate_dim
        self.show_progress_bar = show_progress_bar
        self.csv_file = f"similarity_evaluation{'_' + name if name else ''}_results.csv"

    def compute_metrics(self, model: SentenceTransformer) -> dict[str, float]:
        """Correlations for each similarity function."""
        options: dict[str, Any] = {"batch_size": self.batch_size, "truncate_dim": self.truncate_dim}
        options["show_progress_bar"] = self.show_progress_bar
        embeddings1 = model.encode(self.sentences1, convert_to_tensor=True, **options)
        embeddings2 = model.encode(self.sentences2, convert_to_tensor=True, **options)
        names = self.similarity_fn_names or [model.similarity_fn_name]
        metrics: dict[str, float] = {}
        for fn_name in names:
            _, pairwise = similarity_functions(fn_name)
            predicted = pairwise(embeddings1, embeddings2).double().numpy()
            metrics[f"pearson_{fn_name}"] = pearson(self.scores, predicted)
            metrics[f"spearman_{fn_name}"] = spearman(self.scores, predicted)
        if len(names) > 1:
            metrics["pearson_max"] = max(metrics[f"pearson_{n}"] for n in names)
            metrics["spearman_max"] = max(metrics[f"spearman_{n}"] for n in names)
        if self.main_similarity:
            self.primary_metric = f"spearman_{self.main_similarity}"
        else:
            self.primary_metric = "spearman_max" if len(names) > 1 else f"spearman_{names[0]}"
        return metrics

    @property
    def description(self) -> str:
        """What is measured."""
        return "Semantic Similarity"
