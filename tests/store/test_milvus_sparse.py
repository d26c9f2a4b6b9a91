"""Sparse named vectors on Milvus Lite answer as on the embedded backend (the same calls on twins)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import omniembed as oe
from omniembed.sparse import SparseVector
from omniembed.store import Filter
from omniembed.store.results import QueryResult

pytest.importorskip("milvus_lite")

VOCAB = 300
WORDS = ["shock", "wave", "flow", "plate", "heat", "wing", "bread", "lift", "speed", "layer"]


def sparse(rng: np.random.Generator, nonzeros: int) -> dict[str, list[Any]]:
    weights = 1.0 / np.arange(1, VOCAB + 1)
    ids = np.sort(rng.choice(VOCAB, size=nonzeros, replace=False, p=weights / weights.sum()))
    values = (rng.gamma(2.0, 0.5, size=nonzeros) + 0.01).astype(np.float32)
    return {"indices": ids.tolist(), "values": values.tolist()}


def objects(count: int) -> list[oe.DataObject]:
    rng = np.random.default_rng(11)
    out = []
    for i in range(count):
        body = " ".join(rng.choice(WORDS, size=5))
        vectors: dict[str, Any] = {"v": rng.normal(size=4)}
        if i != 5:  # object 5 has no sparse vector, object 6 an empty one
            vectors["sp"] = {"indices": [], "values": []} if i == 6 else sparse(rng, 10)
        out.append(
            oe.DataObject({"i": i, "body": body}, uuid=f"00000000-0000-0000-0000-{i:012d}", vectors=vectors)
        )
    return out


@pytest.fixture
def twins(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    databases = [oe.connect(str(tmp_path / "m.db"), backend="milvus"), oe.connect()]
    pair = []
    for db in databases:
        collection = db.collections.create(
            "Docs",
            {"i": "int", "body": "text"},
            {"v": oe.SelfProvided(4, "dot"), "sp": oe.SelfProvided(VOCAB, sparse=True)},
        )
        assert not collection.data.insert_many(objects(120)).errors
        pair.append(collection)
    yield pair[0], pair[1]
    for db in databases:
        db.close()


def same(a: QueryResult, b: QueryResult) -> None:
    assert a.uuids == b.uuids
    np.testing.assert_allclose([o.score for o in a], [o.score for o in b], rtol=1e-5)


def test_sparse_search_matches_the_embedded_backend(twins: tuple[Any, Any]) -> None:
    in_milvus, embedded = twins
    rng = np.random.default_rng(4)
    for _ in range(6):
        query = sparse(rng, 5)
        for filters in (None, Filter.by_property("i") >= 60):
            args = {"target_vector": "sp", "limit": 10, "filters": filters}
            same(in_milvus.query.near_vector(query, **args), embedded.query.near_vector(query, **args))
        for fusion in ("relative_score", "ranked"):
            kwargs = {
                "weights": {"dense": 0.4, "sparse": 0.4, "bm25": 0.2},
                "vector": {"dense": rng.normal(size=4), "sparse": query},
                "fusion": fusion,
                "limit": 8,
            }
            assert (
                in_milvus.query.hybrid("wave flow", **kwargs).uuids
                == embedded.query.hybrid("wave flow", **kwargs).uuids
            )


def test_sparse_vectors_read_back_and_follow_updates_and_deletes(twins: tuple[Any, Any]) -> None:
    in_milvus, embedded = twins
    rng = np.random.default_rng(9)
    for collection in twins:
        fetched = {o.properties["i"]: o.vectors for o in collection.query.fetch_objects(include_vector=True)}
        assert "sp" not in fetched[5]
        first = fetched[0]["sp"]
        assert isinstance(first, SparseVector)
        assert len(first.indices) == 10
    milvus_first = in_milvus.data.get_by_id(objects(1)[0].uuid, include_vector=True).vectors["sp"]
    embedded_first = embedded.data.get_by_id(objects(1)[0].uuid, include_vector=True).vectors["sp"]
    assert milvus_first.indices == embedded_first.indices
    np.testing.assert_allclose(milvus_first.values, embedded_first.values, rtol=1e-7)
    changed = sparse(rng, 10)
    for collection in twins:
        collection.data.update(objects(3)[2].uuid, {"body": "lift"}, vectors={"sp": changed})
        collection.data.delete_by_id(objects(4)[3].uuid)
    query = {"indices": changed["indices"][:4], "values": [1.0] * 4}
    same(
        in_milvus.query.near_vector(query, target_vector="sp", limit=10),
        embedded.query.near_vector(query, target_vector="sp", limit=10),
    )
    for collection in twins:
        updated = collection.data.get_by_id(objects(3)[2].uuid, include_vector=True).vectors["sp"]
        assert list(updated.indices) == changed["indices"]
        found = collection.query.near_vector(query, target_vector="sp", limit=200)
        assert objects(3)[2].uuid in found.uuids
        assert objects(4)[3].uuid not in found.uuids


def test_bad_sparse_vectors_get_the_same_errors(twins: tuple[Any, Any]) -> None:
    cases = [
        {"indices": [3, 1], "values": [1.0, 1.0]},
        {"indices": [1, VOCAB], "values": [1.0, 1.0]},
        {"indices": [1], "values": [-1.0]},
        [0.5, 0.5, 0.5, 0.5],
    ]
    for vector in cases:
        errors = []
        for collection in twins:
            result = collection.data.insert_many([oe.DataObject({"i": 999}, vectors={"sp": vector})])
            errors.append(result.errors[0])
        assert errors[0] == errors[1]
    for collection in twins:
        assert collection.query.near_vector({"indices": [], "values": []}, target_vector="sp").objects == []
        with pytest.raises(TypeError, match="vector 'v' is dense"):
            collection.query.near_vector({"indices": [1], "values": [1.0]}, target_vector="v")
