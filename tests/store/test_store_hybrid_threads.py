"""The embedded engine runs a hybrid query's vector side on a thread of its own: answers equal the two
searches run one after the other, and a forked child gets a thread of its own."""

from __future__ import annotations

import multiprocessing
from typing import Any

import numpy as np
import pytest

import omniembed as oe

WORDS = ["red apple pie", "green apple tree", "blue sky", "red car", "apple juice", "sky diving"]


def collection() -> Any:
    db = oe.connect()
    docs = db.collections.create("Docs", {"body": "text"}, {"v": oe.SelfProvided(dims=8)})
    vectors = np.random.default_rng(0).normal(size=(len(WORDS), 8))
    docs.data.insert_many(
        [oe.DataObject({"body": w}, vectors={"v": v.tolist()}) for w, v in zip(WORDS, vectors, strict=True)]
    )
    return docs


def test_hybrid_equals_its_two_searches_fused() -> None:
    docs = collection()
    query = np.ones(8)
    hybrid = docs.query.hybrid("apple", vector=query, limit=6, explain=True)
    near = docs.query.near_vector(query, limit=100).uuids
    keyword = docs.query.bm25("apple", limit=100).uuids
    for obj in hybrid.objects:
        assert obj.explain is not None
        assert obj.explain["vector_rank"] == (near.index(obj.uuid) + 1 if obj.uuid in near else None)
        assert obj.explain["bm25_rank"] == (keyword.index(obj.uuid) + 1 if obj.uuid in keyword else None)


def _child(docs: Any, out: Any) -> None:
    out.put(docs.query.hybrid("apple", vector=np.ones(8), limit=2).uuids)


def test_a_forked_child_runs_hybrid_queries() -> None:
    docs = collection()
    expected = docs.query.hybrid("apple", vector=np.ones(8), limit=2).uuids  # starts the parent's thread
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    child = context.Process(target=_child, args=(docs, out))
    child.start()
    child.join(60)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive, "the child's hybrid query hung"
    assert child.exitcode == 0
    assert out.get(timeout=5) == expected


def test_a_vector_may_not_take_the_keyword_index_name() -> None:
    db = oe.connect()
    with pytest.raises(ValueError, match="vector name 'keyword' is taken by the BM25 index's files"):
        db.collections.create("Docs", {"body": "text"}, {"keyword": oe.SelfProvided(dims=2)})
