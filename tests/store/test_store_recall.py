"""HNSW recall against exact search on real sentence embeddings."""

from __future__ import annotations

import numpy as np
import pytest

import omniembed as oe


@pytest.mark.slow
def test_hnsw_recall_at_10_on_real_embeddings(minilm, sts_sentences: list[str]) -> None:  # type: ignore[no-untyped-def]
    vectors = minilm.encode_document(sts_sentences[:1200], batch_size=64)
    queries = minilm.encode_query(sts_sentences[1200:1400])
    with oe.connect() as db:
        docs = db.collections.create(
            "Sts",
            {"i": "int"},
            {"v": oe.SelfProvided(vectors.shape[1])},
            index=oe.IndexConfig(flat_threshold=200),
        )
        result = docs.data.insert_many(
            [oe.DataObject({"i": i}, vectors={"v": v}) for i, v in enumerate(vectors)]
        )
        assert not result.errors
        assert docs.backend.tables["Sts"].indexes["v"].graph is not None
        exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
        recalls = []
        for query, truth in zip(queries, exact, strict=True):
            found = {o.properties["i"] for o in docs.query.near_vector(query, limit=10)}
            recalls.append(len(found & set(truth.tolist())) / 10)
    assert np.mean(recalls) >= 0.95
