"""InformationRetrievalEvaluator: rank a corpus for each query and score the ranking."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from omniembed.training.evaluators.base import Evaluator

if TYPE_CHECKING:
    from omniembed.embedding.encoder import SentenceTransformer

Hit = tuple[float, str]


def top_hits(scores: torch.Tensor, corpus_ids: Sequence[str], k: int) -> list[list[Hit]]:
    """The ``k`` best ``(score, corpus id)`` of each row, best first, ties broken by corpus id."""
    k = min(k, scores.shape[1])
    values, _ = torch.topk(scores, k, dim=1)
    thresholds = values[:, -1:]
    hits = []
    for row, threshold in zip(scores, thresholds, strict=True):
        candidates = torch.nonzero(row >= threshold).flatten().tolist()  # every tie at the boundary
        ranked = sorted(
            ((float(row[i]), corpus_ids[i]) for i in candidates), key=lambda hit: (-hit[0], hit[1])
        )
        hits.append(ranked[:k])
    return hits


def dcg(relevances: Sequence[int], k: int) -> float:
    """Discounted cumulative gain of the first ``k`` binary relevances."""
    return float(sum(rel / np.log2(rank + 2) for rank, rel in enumerate(relevances[:k])))


def ranking_metrics(
    ranked: Sequence[str], relevant: set[str], ks: Mapping[str, Sequence[int]]
) -> dict[str, dict[int, float]]:
    """Accuracy, precision, recall, MRR, nDCG and MAP at each cut-off for one query's ranking."""
    flags = [1 if doc in relevant else 0 for doc in ranked]
    out: dict[str, dict[int, float]] = {
        name: {} for name in ("accuracy", "precision", "recall", "mrr", "ndcg", "map")
    }
    for k in ks["accuracy"]:
        out["accuracy"][k] = float(any(flags[:k]))
    for k in ks["precision_recall"]:
        out["precision"][k] = sum(flags[:k]) / k
        out["recall"][k] = sum(flags[:k]) / len(relevant)
    for k in ks["mrr"]:
        first = next((rank for rank, flag in enumerate(flags[:k]) if flag), None)
        out["mrr"][k] = 0.0 if first is None else 1.0 / (first + 1)
    for k in ks["ndcg"]:
        out["ndcg"][k] = dcg(flags, k) / dcg([1] * len(relevant), k)
    for k in ks["map"]:
        found, total = 0, 0.0
        for rank, flag in enumerate(flags[:k]):
            if flag:
                found += 1
                total += found / (rank + 1)
        out["map"][k] = total / min(k, len(relevant))
    return out


class InformationRetrievalEvaluator(Evaluator):
    """Retrieval quality: for each query, rank the whole corpus by the model's similarity.

    Metrics per similarity function: ``<fn>_accuracy@k``, ``<fn>_precision@k``, ``<fn>_recall@k``,
    ``<fn>_mrr@k``, ``<fn>_ndcg@k`` and ``<fn>_map@k``; the primary metric is nDCG at the largest k.
    Queries are embedded with ``encode_query`` and documents with ``encode_document``, so the model's
    query and document prompts apply.

    Args:
        queries: query id to text (queries with no relevant document are skipped).
        corpus: document id to text.
        relevant_docs: query id to the ids of its relevant documents.
        mrr_at_k, ndcg_at_k, accuracy_at_k, precision_recall_at_k, map_at_k: the cut-offs.
        batch_size: for encoding.
        corpus_chunk_size: documents scored at a time.
        name: prefixed to each metric.
        truncate_dim: evaluate embeddings truncated to this width.
        query_prompt, corpus_prompt: prompts that override the model's.
    """

    def __init__(
        self,
        queries: Mapping[str, str],
        corpus: Mapping[str, str],
        relevant_docs: Mapping[str, set[str]],
        mrr_at_k: Sequence[int] = (10,),
        ndcg_at_k: Sequence[int] = (10,),
        accuracy_at_k: Sequence[int] = (1, 3, 5, 10),
        precision_recall_at_k: Sequence[int] = (1, 3, 5, 10),
        map_at_k: Sequence[int] = (100,),
        batch_size: int = 32,
        corpus_chunk_size: int = 50000,
        name: str = "",
        truncate_dim: int | None = None,
        query_prompt: str | None = None,
        corpus_prompt: str | None = None,
        show_progress_bar: bool = False,
    ) -> None:
        self.query_ids = [qid for qid in queries if relevant_docs.get(qid)]
        if not self.query_ids:
            raise ValueError(
                "no query has a relevant document: relevant_docs maps query ids to sets of corpus ids"
            )
        if not corpus:
            raise ValueError("the corpus is empty")
        self.queries = [queries[qid] for qid in self.query_ids]
        self.corpus_ids = list(corpus)
        self.corpus = [corpus[cid] for cid in self.corpus_ids]
        self.relevant_docs = {qid: set(relevant_docs[qid]) for qid in self.query_ids}
        self.ks = {
            "mrr": list(mrr_at_k),
            "ndcg": list(ndcg_at_k),
            "accuracy": list(accuracy_at_k),
            "precision_recall": list(precision_recall_at_k),
            "map": list(map_at_k),
        }
        self.batch_size = batch_size
        self.corpus_chunk_size = corpus_chunk_size
        self.name = name
        self.truncate_dim = truncate_dim
        self.query_prompt = query_prompt
        self.corpus_prompt = corpus_prompt
        self.show_progress_bar = show_progress_bar
        self.csv_file = f"Information-Retrieval_evaluation{'_' + name if name else ''}_results.csv"

    def compute_metrics(self, model: SentenceTransformer) -> dict[str, float]:
        """Every metric at every cut-off, averaged over the queries."""
        options: dict[str, Any] = {
            "batch_size": self.batch_size,
            "truncate_dim": self.truncate_dim,
            "convert_to_tensor": True,
            "show_progress_bar": self.show_progress_bar,
        }
        queries = model.encode_query(self.queries, prompt=self.query_prompt, **options)
        max_k = max(max(values) for values in self.ks.values())
        hits: list[list[Hit]] = [[] for _ in self.queries]
        for start in range(0, len(self.corpus), self.corpus_chunk_size):
            chunk = self.corpus[start : start + self.corpus_chunk_size]
            documents = model.encode_document(chunk, prompt=self.corpus_prompt, **options)
            scores = model.similarity(queries, documents)
            chunk_ids = self.corpus_ids[start : start + len(chunk)]
            for found, new in zip(hits, top_hits(scores, chunk_ids, max_k), strict=True):
                found.extend(new)
                found.sort(key=lambda hit: (-hit[0], hit[1]))
                del found[max_k:]
        per_query = [
            ranking_metrics([doc for _, doc in found], self.relevant_docs[qid], self.ks)
            for qid, found in zip(self.query_ids, hits, strict=True)
        ]
        fn_name = model.similarity_fn_name
        metrics = {
            f"{fn_name}_{metric}@{k}": float(np.mean([result[metric][k] for result in per_query]))
            for metric in ("accuracy", "precision", "recall", "ndcg", "mrr", "map")
            for k in per_query[0][metric]
        }
        self.primary_metric = f"{fn_name}_ndcg@{max(self.ks['ndcg'])}"
        return metrics

    @property
    def description(self) -> str:
        """What is measured."""
        return "Information Retrieval"
