"""Sparse named vectors: stored with objects, searched exactly by dot product, saved and caught up."""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

import omniembed as oe
from omniembed.sparse import SparseVector
from omniembed.store.engines.embedded.sparse_index import SparseIndex
from omniembed.store.results import QueryResult

VOCAB = 500
ENGINE_LOG = "omniembed.store.engines.embedded"


def random_sparse(rng: np.random.Generator, nonzeros: int = 12) -> dict[str, list[float] | list[int]]:
    """A vector over ``VOCAB`` tokens, its ids drawn with a Zipf-like skew (low ids common)."""
    weights = 1.0 / np.arange(1, VOCAB + 1)
    ids = np.sort(rng.choice(VOCAB, size=nonzeros, replace=False, p=weights / weights.sum()))
    values = rng.gamma(2.0, 0.5, size=nonzeros).astype(np.float32) + np.float32(0.01)
    return {"indices": ids.tolist(), "values": values.tolist()}


def dot(a: dict[str, list[float] | list[int]] | SparseVector, b: dict[str, list[float] | list[int]]) -> float:
    first = a.as_dict() if isinstance(a, SparseVector) else a
    weights = dict(zip(b["indices"], np.float32(b["values"]).astype(np.float64), strict=True))
    values = np.float32(first["values"]).astype(np.float64)
    return float(sum(v * weights.get(i, 0.0) for i, v in zip(first["indices"], values, strict=True)))


def brute_force(query: dict, held: dict[int, dict], limit: int) -> list[tuple[int, float]]:
    """The best ``limit`` (n, score) with a positive score, best first, ties by n."""
    scores = {n: dot(query, vector) for n, vector in held.items()}
    ranked = sorted((n for n in scores if scores[n] > 0), key=lambda n: (-scores[n], n))
    return [(n, scores[n]) for n in ranked[:limit]]


def create(db: oe.Database, count: int, seed: int = 0) -> dict[int, dict]:
    rng = np.random.default_rng(seed)
    docs = db.collections.create(
        "Doc",
        {"n": "int", "body": "text"},
        {"sp": oe.SelfProvided(VOCAB, sparse=True), "dense": oe.SelfProvided(4)},
    )
    own = {n: random_sparse(rng) for n in range(count)}
    result = docs.data.insert_many(
        [
            oe.DataObject(
                {"n": n, "body": f"word{n % 5} item {n}"},
                vectors={"sp": vector, "dense": rng.normal(size=4)},
            )
            for n, vector in own.items()
        ],
        show_progress=False,
    )
    assert not result.errors
    return own


def found(result: QueryResult) -> list[tuple[int, float]]:
    return [(obj.properties["n"], obj.score or 0.0) for obj in result]


def assert_same(got: list[tuple[int, float]], expected: list[tuple[int, float]]) -> None:
    assert [n for n, _ in got] == [n for n, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-6)


@pytest.mark.parametrize("where", [":memory:", "folder"])
def test_sparse_search_equals_brute_force_through_deletes_updates_and_filters(
    tmp_path: Path, where: str
) -> None:
    rng = np.random.default_rng(1)
    with oe.connect(tmp_path / "db" if where == "folder" else ":memory:") as db:
        own = create(db, 400)
        docs = db.collections.get("Doc")
        queries = [random_sparse(rng, 6) for _ in range(8)]
        for query in queries:
            assert_same(
                found(docs.query.near_vector(query, target_vector="sp", limit=10)),
                brute_force(query, own, 10),
            )
        uuid_of = {obj.properties["n"]: obj.uuid for obj in docs.query.fetch_objects()}
        for n in range(0, 400, 7):
            docs.data.delete_by_id(uuid_of[n])
            del own[n]
        for n in (1, 2, 3):
            own[n] = random_sparse(rng)
            docs.data.update(uuid_of[n], {"body": "changed"}, vectors={"sp": own[n]})
        wanted = oe.Filter.by_property("n") >= 200
        for query in queries:
            assert_same(
                found(docs.query.near_vector(query, target_vector="sp", limit=10)),
                brute_force(query, own, 10),
            )
            kept = {n: v for n, v in own.items() if n >= 200}
            filtered = docs.query.near_vector(query, target_vector="sp", limit=7, filters=wanted)
            assert_same(found(filtered), brute_force(query, kept, 7))


def test_vectors_round_trip_with_include_vector(tmp_path: Path) -> None:
    with oe.connect(tmp_path / "db") as db:
        own = create(db, 20)
    with oe.connect(tmp_path / "db") as db:
        docs = db.collections.get("Doc")
        for obj in docs.query.fetch_objects(include_vector=True):
            stored = obj.vectors["sp"]
            assert isinstance(stored, SparseVector)
            given = own[obj.properties["n"]]
            assert list(stored.indices) == given["indices"]
            assert list(stored.values) == np.float32(given["values"]).tolist()
            assert obj.vectors["dense"].shape == (4,)
        first = docs.query.fetch_objects(limit=1).objects[0]
        again = docs.query.near_object(first.uuid, target_vector="sp", limit=1)
        assert again.uuids == [first.uuid]


def test_open_catches_up_past_the_watermark_and_rebuilds_a_damaged_save(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder, aside = tmp_path / "db", tmp_path / "aside"
    with oe.connect(folder) as db:
        own = create(db, 120)
    assert (folder / "1.sp.manifest.json").exists()
    aside.mkdir()
    for path in folder.glob("1.sp.*"):  # the save as it stood at 120 objects
        shutil.copy(path, aside / path.name)
    rng = np.random.default_rng(5)
    with oe.connect(folder) as db:
        docs = db.collections.get("Doc")
        for n in range(120, 130):
            own[n] = random_sparse(rng)
            docs.data.insert({"n": n, "body": "new"}, vectors={"sp": own[n], "dense": rng.normal(size=4)})
        for obj in docs.query.fetch_objects(filters=oe.Filter.by_property("n") < 4):
            docs.data.delete_by_id(obj.uuid)
            del own[obj.properties["n"]]
    for path in folder.glob("1.sp.*"):  # as if the process died before saving what came after
        path.unlink()
    for path in aside.iterdir():
        shutil.copy(path, folder / path.name)
    caplog.set_level(logging.INFO, logger=ENGINE_LOG)
    queries = [random_sparse(rng, 6) for _ in range(5)]
    with oe.connect(folder) as db:
        assert "sparse index Doc.sp: 10 added, 4 removed" in caplog.text
        docs = db.collections.get("Doc")
        for query in queries:
            assert_same(
                found(docs.query.near_vector(query, target_vector="sp", limit=8)), brute_force(query, own, 8)
            )
    caplog.clear()
    with oe.connect(folder) as db:  # the close saved the caught-up index
        assert "sparse index" not in caplog.text
    segment = sorted(folder.glob("1.sp.*.seg"))[0]
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    with oe.connect(folder) as db:
        assert "fails its checksum" in caplog.text
        assert "sparse index Doc.sp: 126 added" in caplog.text
        docs = db.collections.get("Doc")
        for query in queries:
            assert_same(
                found(docs.query.near_vector(query, target_vector="sp", limit=8)), brute_force(query, own, 8)
            )


def test_the_index_saves_in_segments_that_merge_and_keep_float_weights(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    own = {slot: random_sparse(rng) for slot in range(1, 201)}
    index = SparseIndex(VOCAB)
    for start in range(1, 201, 20):  # ten saves: the segments merge by size tiers
        slots = list(range(start, start + 20))
        index.add(
            np.array(slots), [SparseVector(tuple(own[s]["indices"]), tuple(own[s]["values"])) for s in slots]
        )
        index.save(tmp_path / "idx", {"seq": start + 19, "deleted": 0})
    index.remove([5, 50])
    del own[5], own[50]
    index.save(tmp_path / "idx", {"seq": 200, "deleted": 2})
    assert len(index.segments) < 10
    loaded = SparseIndex.load(tmp_path / "idx", VOCAB)
    assert loaded is not None
    reopened, watermark = loaded
    assert watermark == {"seq": 200, "deleted": 2}
    assert reopened.count == 198
    assert all(s.postings["weights"].tfs.dtype == np.float32 for s in reopened.segments)
    for _ in range(5):
        query = random_sparse(rng, 8)
        slots, distances = reopened.search(SparseVector(tuple(query["indices"]), tuple(query["values"])), 6)
        expected = brute_force(query, own, 6)
        assert slots.tolist() == [n for n, _ in expected]
        np.testing.assert_allclose(-distances, [s for _, s in expected], rtol=1e-6)


def test_bad_sparse_vectors_are_refused_with_the_fix(tmp_path: Path) -> None:
    with oe.connect(":memory:") as db:
        create(db, 3)
        docs = db.collections.get("Doc")
        cases = {
            "unsorted": ({"indices": [5, 2], "values": [1.0, 1.0]}, "sorted in increasing order"),
            "duplicate": ({"indices": [2, 2], "values": [1.0, 1.0]}, "appears twice"),
            "negative": ({"indices": [1, 2], "values": [1.0, -0.5]}, "weights must be positive"),
            "nan": ({"indices": [1, 2], "values": [1.0, math.nan]}, "finite"),
            "over float32": ({"indices": [1, 2], "values": [1.0, 1e39]}, "kept as float32"),
            "under float32": ({"indices": [1, 2], "values": [1e-50, 1.0]}, "positive float32"),
            "unsigned unsorted": (
                {"indices": np.array([2, 1], dtype=np.uint32), "values": np.array([1.0, 1.0])},
                "indices",
            ),
            "beyond": ({"indices": [1, VOCAB], "values": [1.0, 1.0]}, f"beyond the vocabulary of {VOCAB}"),
            "dense to sparse": ([0.1, 0.2, 0.3], "vector 'sp' is sparse"),
            "lengths": ({"indices": [1, 2], "values": [1.0]}, "give one value per index"),
        }
        for name, (vector, message) in cases.items():
            with pytest.raises(ValueError, match=message):
                docs.data.insert({"n": 9}, vectors={"sp": vector})
            with pytest.raises((ValueError, TypeError), match=message):
                docs.query.near_vector(vector, target_vector="sp")
            assert name
        many = list(range(64))  # the vectorised path gives the same errors
        with pytest.raises(ValueError, match="weights must be positive"):
            docs.data.insert({"n": 9}, vectors={"sp": {"indices": many, "values": [1.0] * 63 + [0.0]}})
        with pytest.raises(ValueError, match="kept as float32"):
            docs.data.insert({"n": 9}, vectors={"sp": {"indices": many, "values": [1.0] * 63 + [1e39]}})
        unsigned = np.arange(64, dtype=np.uint32)[::-1].copy()  # decreasing: np.diff would wrap around
        with pytest.raises(ValueError, match="indices"):
            docs.data.insert({"n": 9}, vectors={"sp": {"indices": unsigned, "values": np.ones(64)}})
        with pytest.raises(ValueError, match="vector 'dense' is dense"):
            docs.data.insert({"n": 9}, vectors={"dense": {"indices": [1], "values": [1.0]}})
        with pytest.raises(TypeError, match="vector 'dense' is dense"):
            docs.query.near_vector({"indices": [1], "values": [1.0]}, target_vector="dense")
        assert len(docs) == 3
        with pytest.raises(ValueError, match="compared by dot product, not 'l2'"):
            db.collections.create("Other", {"n": "int"}, {"sp": oe.SelfProvided(sparse=True, metric="l2")})


def test_hybrid_fuses_dense_sparse_and_bm25_by_weight() -> None:
    from omniembed.retrieval.fusion import fuse_weighted

    rng = np.random.default_rng(3)
    with oe.connect(":memory:") as db:
        create(db, 150)
        docs = db.collections.get("Doc")
        sparse_query, dense_query = random_sparse(rng, 6), rng.normal(size=4)
        weights = {"dense": 2.0, "sparse": 1.0, "bm25": 1.0}
        for fusion in ("relative_score", "ranked"):
            got = docs.query.hybrid(
                "word3",
                weights=weights,
                vector={"dense": dense_query, "sparse": sparse_query},
                fusion=fusion,  # type: ignore[arg-type]
                limit=10,
                explain=True,
            )
            ranked = {
                "dense": docs.query.near_vector(dense_query, target_vector="dense", limit=100),
                "sparse": docs.query.near_vector(sparse_query, target_vector="sp", limit=100),
                "bm25": docs.query.bm25("word3", limit=100),
            }
            expected = fuse_weighted(
                {k: [(o.uuid, o.score or 0.0) for o in v] for k, v in ranked.items()},
                {"dense": 0.5, "sparse": 0.25, "bm25": 0.25},
                fusion=fusion,  # type: ignore[arg-type]
            )[:10]
            assert got.uuids == [uuid for uuid, _, _ in expected]
            first = got.objects[0].explain
            assert first is not None
            assert set(first) >= {"dense_rank", "sparse_part", "bm25_score", "fused"}
            assert first["fused"] == pytest.approx(expected[0][1])
        only_sparse = docs.query.hybrid("word3", weights={"sparse": 1.0}, vector=sparse_query, limit=5)
        assert only_sparse.uuids == docs.query.near_vector(sparse_query, target_vector="sp", limit=5).uuids
        two = docs.query.hybrid("word3", alpha=1.0, vector=sparse_query, target_vector="sp", limit=5)
        assert two.uuids == only_sparse.uuids
        near = docs.query.near_vector(sparse_query, target_vector="sp", limit=100)
        half = docs.query.hybrid("word3", alpha=0.5, vector=sparse_query, target_vector="sp", explain=True)
        for obj in half:  # the sparse side of a two-source hybrid, searched beside BM25
            assert obj.explain is not None
            rank = obj.explain["vector_rank"]
            assert rank == (near.uuids.index(obj.uuid) + 1 if obj.uuid in near.uuids else None)
            if rank is not None:
                assert obj.explain["vector_score"] == pytest.approx(near.objects[rank - 1].score)
        filtered = docs.query.hybrid(
            "word3",
            weights=weights,
            vector={"dense": dense_query, "sparse": sparse_query},
            filters=oe.Filter.by_property("n") < 50,
            limit=20,
        )
        assert filtered.objects
        assert all(o.properties["n"] < 50 for o in filtered)
        for bad, message in [
            ({"dense": 1.0, "keyword": 1.0}, r"unknown sources \['keyword'\]"),
            ({"dense": -1.0, "bm25": 1.0}, "0 or more"),
            ({"dense": 0.0}, "all 0"),
            ({"sparse": math.inf}, "finite"),
        ]:
            with pytest.raises(ValueError, match=message):
                docs.query.hybrid("word3", weights=bad, vector={"dense": dense_query, "sparse": sparse_query})
        with pytest.raises(ValueError, match="not both"):
            docs.query.hybrid("word3", alpha=0.5, weights=weights)
        with pytest.raises(ValueError, match="has no vectorizer"):
            docs.query.hybrid("word3", weights=weights)
        with pytest.raises(ValueError, match="2 dense vectors"):
            docs.query.hybrid(
                "x", weights={"dense": 1.0}, target_vector=["dense", "dense"], vector=dense_query
            )


def test_closing_an_unchanged_database_writes_no_index_file(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    with oe.connect(folder) as db:
        create(db, 60)

    def saved() -> dict[str, int]:
        return {p.name: p.stat().st_mtime_ns for p in folder.glob("1.*") if p.suffix != ".sqlite"}

    before = saved()
    assert any(".keyword." in name for name in before)
    assert any(".sp." in name for name in before)
    with oe.connect(folder) as db:  # searched, not changed
        docs = db.collections.get("Doc")
        assert len(docs.query.bm25("item", limit=3)) == 3
        assert len(docs.query.near_vector(random_sparse(np.random.default_rng(1)), target_vector="sp")) > 0
    assert saved() == before
    with oe.connect(folder) as db:
        docs = db.collections.get("Doc")
        docs.data.delete_by_id(docs.query.fetch_objects(limit=1)[0].uuid)
    after = saved()
    for kind in (".keyword.manifest.json", ".sp.manifest.json"):
        name = "1" + kind
        assert after[name] != before[name], name
