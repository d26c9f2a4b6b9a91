"""Exact top-k search over a matrix of embeddings, and two-step retrieval (bi-encoder, then reranker)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

from omniembed.embedding.similarity import ArrayLike, as_matrix, cos_sim

Hit = dict[str, Any]


class Reranker(Protocol):
    """Anything that orders documents for a query: ``CrossEncoder`` is one.

    ``rank`` returns ``[{"corpus_id": index into documents, "score": float}, ...]`` best first.
    """

    def rank(self, query: str, documents: Sequence[str], top_k: int | None = None) -> list[Hit]:
        """Score the documents against the query; return at most ``top_k``, best first."""
        ...


class QueryEncoder(Protocol):
    """Anything with ``encode_query`` returning one vector per string (``SentenceTransformer`` is one)."""

    def encode_query(self, inputs: str, **kwargs: Any) -> Any:
        """Embed one query."""
        ...


def semantic_search(
    query_embeddings: ArrayLike,
    corpus_embeddings: ArrayLike,
    *,
    top_k: int = 10,
    score_function: Callable[[ArrayLike, ArrayLike], Tensor] = cos_sim,
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 500_000,
) -> list[list[Hit]]:
    """Return, for each query, the ``top_k`` corpus entries with the highest scores, best first.

    The corpus is scored in chunks so that memory stays bounded on large corpora.

    >>> semantic_search([[1.0, 0.0]], [[0.0, 1.0], [2.0, 0.0]], top_k=1)
    [[{'corpus_id': 1, 'score': 1.0}]]
    """
    if top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    queries, corpus = as_matrix(query_embeddings), as_matrix(corpus_embeddings)
    if queries.shape[1] != corpus.shape[1]:
        raise ValueError(
            f"query embeddings have {queries.shape[1]} dims, corpus embeddings {corpus.shape[1]}; "
            "embed both with the same model"
        )
    results: list[list[Hit]] = []
    for q_start in range(0, len(queries), query_chunk_size):
        chunk = queries[q_start : q_start + query_chunk_size]
        best_scores, best_ids = [], []
        for c_start in range(0, len(corpus), corpus_chunk_size):
            scores = score_function(chunk, corpus[c_start : c_start + corpus_chunk_size])
            values, indices = torch.topk(scores, min(top_k, scores.shape[1]), dim=1)
            best_scores.append(values)
            best_ids.append(indices + c_start)
        if not best_scores:
            results.extend([] for _ in range(len(chunk)))
            continue
        values, positions = torch.topk(torch.cat(best_scores, 1), min(top_k, len(corpus)), dim=1)
        ids = torch.gather(torch.cat(best_ids, 1), 1, positions)
        for row_values, row_ids in zip(values.tolist(), ids.tolist(), strict=True):
            results.append([{"corpus_id": i, "score": s} for i, s in zip(row_ids, row_values, strict=True)])
    return results


def retrieve_and_rerank(
    query: str,
    corpus: Sequence[str],
    corpus_embeddings: ArrayLike,
    *,
    encoder: QueryEncoder,
    reranker: Reranker,
    top_k: int = 10,
    candidates: int = 100,
) -> list[Hit]:
    """Find ``candidates`` documents with the bi-encoder, then order them with the reranker.

    Args:
        query: the search text.
        corpus: the documents, in the same order as ``corpus_embeddings``.
        corpus_embeddings: one embedding per document, from ``encoder``.
        encoder: embeds the query (its ``encode_query``).
        reranker: orders the candidates (its ``rank``).
        top_k: how many results to return.
        candidates: how many bi-encoder hits the reranker reads (more: better recall, slower).

    Returns:
        ``[{"corpus_id", "score" (reranker), "retrieval_score" (bi-encoder), "text"}]`` best first,
        ``corpus_id`` indexing ``corpus``.
    """
    if len(corpus) != len(as_matrix(corpus_embeddings)):
        raise ValueError(
            f"corpus has {len(corpus)} documents but corpus_embeddings has "
            f"{len(as_matrix(corpus_embeddings))} rows; embed every document once, in order"
        )
    if not len(corpus):
        return []
    query_embedding = encoder.encode_query(query)
    hits = semantic_search(query_embedding, corpus_embeddings, top_k=max(candidates, top_k))[0]
    ranked = reranker.rank(query, [corpus[hit["corpus_id"]] for hit in hits], top_k=top_k)
    results = []
    for row in ranked:
        hit = hits[int(row["corpus_id"])]
        results.append(
            {
                "corpus_id": hit["corpus_id"],
                "score": float(row["score"]),
                "retrieval_score": float(hit["score"]),
                "text": corpus[hit["corpus_id"]],
            }
        )
    return results
