"""Exact top-k search equals the reference's; retrieve-then-rerank reorders the bi-encoder's candidates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers.util import semantic_search as reference_search

from omniembed import CrossEncoder, SentenceTransformer
from omniembed.embedding.similarity import dot_score
from omniembed.retrieval.search import retrieve_and_rerank, semantic_search

from helpers import models as mf


def test_semantic_search_matches_reference() -> None:
    rng = np.random.default_rng(0)
    queries = torch.from_numpy(rng.standard_normal((7, 16)).astype(np.float32))
    corpus = torch.from_numpy(rng.standard_normal((300, 16)).astype(np.float32))
    for function in (None, dot_score):
        kwargs = {} if function is None else {"score_function": function}
        ours = semantic_search(queries, corpus, top_k=5, corpus_chunk_size=64, query_chunk_size=3, **kwargs)
        theirs = reference_search(queries, corpus, top_k=5, **kwargs)
        assert [[hit["corpus_id"] for hit in row] for row in ours] == [
            [hit["corpus_id"] for hit in row] for row in theirs
        ]
        np.testing.assert_allclose(
            [[hit["score"] for hit in row] for row in ours],
            [[hit["score"] for hit in row] for row in theirs],
            rtol=1e-6,  # float32 dot products of size ~10, summed in other blocks by other chunking
        )


def test_semantic_search_edges() -> None:
    assert semantic_search(np.ones((2, 3)), np.ones((2, 3)), top_k=5)[0][1]["corpus_id"] in (0, 1)
    with pytest.raises(ValueError, match="query embeddings have 3 dims, corpus embeddings 4"):
        semantic_search(np.ones((1, 3)), np.ones((2, 4)))


def test_retrieve_then_rerank(
    minilm: SentenceTransformer, sts_sentences: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    reranker = CrossEncoder(mf.build_cross_encoder(tmp_path_factory.mktemp("ce")), device="cpu")
    corpus = sts_sentences[:300]
    embeddings = minilm.encode(corpus)
    query = sts_sentences[0]
    results = retrieve_and_rerank(
        query, corpus, embeddings, encoder=minilm, reranker=reranker, top_k=5, candidates=20
    )
    candidates = semantic_search(minilm.encode_query(query), embeddings, top_k=20)[0]
    candidate_ids = [hit["corpus_id"] for hit in candidates]
    expected = reranker.rank(query, [corpus[i] for i in candidate_ids], top_k=5)
    assert [row["corpus_id"] for row in results] == [candidate_ids[row["corpus_id"]] for row in expected]
    np.testing.assert_allclose([row["score"] for row in results], [row["score"] for row in expected])
    assert all(row["text"] == corpus[row["corpus_id"]] for row in results)
    assert results[0]["retrieval_score"] <= 1.0 + 1e-6
    assert retrieve_and_rerank(query, [], np.zeros((0, 384)), encoder=minilm, reranker=reranker) == []
    with pytest.raises(ValueError, match="corpus has 2 documents but corpus_embeddings has 300 rows"):
        retrieve_and_rerank(query, corpus[:2], embeddings, encoder=minilm, reranker=reranker)


def test_any_object_with_rank_plugs_in() -> None:
    # The store can wrap any object with rank(query, documents, top_k): a tiny stand-in proves it.
    class Reverse:
        def rank(self, query: str, documents: list[str], top_k: int | None = None) -> list[dict[str, object]]:
            order = list(range(len(documents)))[::-1][:top_k]
            return [{"corpus_id": i, "score": float(-i)} for i in order]

    class Identity:
        def encode_query(self, inputs: str, **kwargs: object) -> np.ndarray:
            return np.array([1.0, 0.0], dtype=np.float32)

    corpus = ["a", "b", "c"]
    embeddings = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], dtype=np.float32)
    results = retrieve_and_rerank(
        "q", corpus, embeddings, encoder=Identity(), reranker=Reverse(), top_k=2, candidates=2
    )
    assert [row["corpus_id"] for row in results] == [1, 0]
