"""``RerankingEvaluator``: how well a ``CrossEncoder`` orders each query's candidate documents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from omniembed.training.evaluators.base import Evaluator

if TYPE_CHECKING:
    from omniembed.rerank.cross_encoder import CrossEncoder


def rerank_metrics(
    relevant: Sequence[int], scores: np.ndarray, positives: int, k: int
) -> tuple[float, float, float]:
    """MRR@k, nDCG@k and average precision of one query's candidates ordered by ``scores``.

    ``positives`` counts every relevant document, including any not among the candidates (they
    lower nDCG's ideal and AP); ties between scores keep the candidates' order.
    """
    found = sum(relevant)
    if found == 0:
        return 0.0, 0.0, 0.0
    positives = max(positives, found)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    flags = [relevant[index] for index in order]
    first = next((rank for rank, flag in enumerate(flags[:k]) if flag), None)
    mrr = 0.0 if first is None else 1.0 / (first + 1)
    gain = sum(flag / np.log2(rank + 2) for rank, flag in enumerate(flags[:k]))
    ideal = sum(1 / np.log2(rank + 2) for rank in range(min(positives, k)))
    hits, precision_sum = 0, 0.0
    for rank, flag in enumerate(flags):
        if flag:
            hits += 1
            precision_sum += hits / (rank + 1)
    average_precision = precision_sum / found * (found / positives)
    return float(mrr), float(gain / ideal), float(average_precision)


class RerankingEvaluator(Evaluator):
    """Rerank each query's candidates with the model; report MAP, MRR@k and nDCG@k (the primary).

    Args:
        samples: one mapping per query with ``query``, ``positive`` (a text or a list) and either
            ``negative`` (a list: candidates are the positives then these) or ``documents`` (a
            retrieved list, which may miss positives; their order gives ``base_*`` metrics too).
        at_k: the cut-off of MRR and nDCG.
        always_rerank_positives: with ``documents``, put every positive among the candidates
            (positives first, then the other documents); otherwise rerank ``documents`` as given.
        name: prefixed to the metric names.
        batch_size: pairs per forward pass.
    """

    def __init__(
        self,
        samples: Sequence[Mapping[str, Any]],
        at_k: int = 10,
        always_rerank_positives: bool = True,
        name: str = "",
        batch_size: int = 64,
    ) -> None:
        for index, sample in enumerate(samples):
            if "query" not in sample or "positive" not in sample:
                raise ValueError(f"sample {index} needs 'query' and 'positive' keys, got {sorted(sample)}")
            if ("negative" in sample) == ("documents" in sample):
                raise ValueError(f"sample {index} needs exactly one of 'negative' and 'documents'")
        if at_k < 1:
            raise ValueError(f"at_k must be a positive number, got {at_k!r}")
        self.samples = list(samples)
        self.at_k = at_k
        self.always_rerank_positives = always_rerank_positives
        self.name = name
        self.batch_size = batch_size
        self.primary_metric = f"ndcg@{at_k}"
        self.csv_file = f"RerankingEvaluator{'_' + name if name else ''}_results_@{at_k}.csv"

    def candidates(self, sample: Mapping[str, Any]) -> tuple[list[str], list[int], list[int] | None]:
        """The documents to rerank, their relevance, and the retrieved list's relevance (if any)."""
        positive = sample["positive"]
        positives = [positive] if isinstance(positive, str) else list(positive)
        documents = sample.get("documents")
        if documents is None:
            negatives = list(sample["negative"])
            return positives + negatives, [1] * len(positives) + [0] * len(negatives), None
        base = [int(document in positives) for document in documents]
        if not self.always_rerank_positives:
            return list(documents), base, base
        others = [document for document in documents if document not in positives]
        return positives + others, [1] * len(positives) + [0] * len(others), base

    def compute_metrics(self, model: CrossEncoder) -> dict[str, float]:  # type: ignore[override]
        """Score every (query, candidate) pair once, then average the per-query metrics."""
        rows: list[tuple[list[int], int, int] | None] = []
        pairs: list[tuple[str, str]] = []
        base_rows: list[tuple[float, float, float]] = []
        for sample in self.samples:
            documents, relevant, base = self.candidates(sample)
            positive = sample["positive"]
            total = 1 if isinstance(positive, str) else len(positive)
            if base is not None:
                base_rows.append(rerank_metrics(base, np.arange(len(base), 0, -1), total, self.at_k))
            rows.append((relevant, total, len(pairs)) if sum(relevant) else None)
            if sum(relevant):
                pairs += [(sample["query"], document) for document in documents]
        scores = np.zeros(0)
        if pairs:
            scores = np.asarray(model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False))
        found = [(0.0, 0.0, 0.0)] * len(rows)
        for index, row in enumerate(rows):
            if row is not None:
                relevant, total, start = row
                found[index] = rerank_metrics(
                    relevant, scores[start : start + len(relevant)], total, self.at_k
                )
        metrics = self._means(found, "")
        if base_rows:
            metrics.update(self._means(base_rows, "base_"))
        return metrics

    def _means(self, rows: list[tuple[float, float, float]], prefix: str) -> dict[str, float]:
        mrr, ndcg, average_precision = (float(np.mean(values)) for values in zip(*rows, strict=True))
        return {
            f"{prefix}map": average_precision,
            f"{prefix}mrr@{self.at_k}": mrr,
            f"{prefix}ndcg@{self.at_k}": ndcg,
        }

    @property
    def description(self) -> str:
        """What is measured, for the model card."""
        return "Reranking"
