"""The embedded vector index: exact below the threshold, int8 codes + HNSW above it, saved and loaded."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from omniembed.store.config import CollectionConfig, IndexConfig, Metric
from omniembed.store.engines.embedded.vector_index import VectorIndex

METRICS: tuple[Metric, ...] = ("cosine", "dot", "l2")


def clustered(count: int, dims: int = 32, seed: int = 0) -> np.ndarray:
    """Vectors in a few dozen clusters (neighbours close together, like real embeddings)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dims))
    vectors = centres[rng.integers(0, 40, size=count)] + 0.3 * rng.normal(size=(count, dims))
    return vectors.astype(np.float32)


def make(metric: Metric, vectors: np.ndarray, threshold: int, **kwargs: object) -> VectorIndex:
    index = VectorIndex(vectors.shape[1], metric, IndexConfig(flat_threshold=threshold), **kwargs)  # type: ignore[arg-type]
    prepared = index.prepare(vectors)
    for start in range(0, len(vectors), 1000):
        index.add(np.arange(start, min(start + 1000, len(vectors))), prepared[start : start + 1000])
    return index


def exact(
    index: VectorIndex, vectors: np.ndarray, query: np.ndarray, limit: int, rows: np.ndarray | None = None
):  # type: ignore[no-untyped-def]
    prepared = index.prepare(vectors)
    rows = np.arange(len(vectors)) if rows is None else rows
    distances = index.distances(index.prepare_one(query), prepared[rows])
    order = np.lexsort((rows, distances))[:limit]
    return rows[order], distances[order]


@pytest.mark.parametrize("metric", METRICS)
def test_below_flat_threshold_search_is_exact(metric: Metric) -> None:
    vectors = clustered(500)
    index = make(metric, vectors, threshold=1000)
    assert index.graph is None
    assert index.indexed()
    for query in clustered(10, seed=1):
        slots, distances = index.search(query, 10)
        want_slots, want_distances = exact(index, vectors, query, 10)
        assert slots.tolist() == want_slots.tolist()
        np.testing.assert_allclose(distances, want_distances, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("metric", METRICS)
def test_filtered_search_over_codes_is_exact_and_returns_every_match(metric: Metric) -> None:
    vectors = clustered(4000)
    index = make(metric, vectors, threshold=100)
    assert index.graph is not None  # quantized: exact searches go through codes and float32 rescoring
    rng = np.random.default_rng(3)
    allowed = np.sort(rng.choice(4000, size=40, replace=False))
    for query in clustered(10, seed=1):
        slots, distances = index.search(query, 10, allowed)
        want_slots, want_distances = exact(index, vectors, query, 10, allowed)
        assert slots.tolist() == want_slots.tolist()
        np.testing.assert_allclose(distances, want_distances, rtol=1e-5, atol=1e-6)
        every, _ = index.search(query, 100, allowed)
        assert sorted(every.tolist()) == allowed.tolist()
    index.close()


def test_wide_filters_use_the_graph_and_stay_inside_the_allowed_set() -> None:
    vectors = clustered(4000)
    index = make("cosine", vectors, threshold=100)
    index.wait_indexed(60)
    allowed = np.arange(0, 4000, 2)  # half the rows: graph search with a selector
    recalls = []
    noise = 0.05 * np.random.default_rng(1).normal(size=(20, 32)).astype(np.float32)
    for query in vectors[::200] + noise:  # queries near the data, as real ones are
        slots, _ = index.search(query, 10, allowed)
        assert len(slots) == 10
        assert set(slots.tolist()) <= set(allowed.tolist())
        want, _ = exact(index, vectors, query, 10, allowed)
        recalls.append(len(set(slots.tolist()) & set(want.tolist())) / 10)
    assert np.mean(recalls) >= 0.95
    index.close()


@pytest.mark.parametrize("metric", METRICS)
def test_graph_candidates_are_rescored_only_where_they_can_rank(metric: Metric) -> None:
    """Of the ``limit * rescore`` graph candidates, only those whose lowest possible distance reaches
    the top are read in float32; the answer equals rescoring every candidate."""
    vectors = clustered(4000)
    prepared = VectorIndex(32, metric, IndexConfig()).prepare(vectors)
    reads: list[int] = []

    def fetch(slots: np.ndarray) -> np.ndarray:
        reads.append(len(slots))
        return prepared[slots]

    index = make(metric, vectors, threshold=100, fetch=fetch)
    index.wait_indexed(60)
    noise = 0.05 * np.random.default_rng(2).normal(size=(10, 32)).astype(np.float32)
    for query in vectors[::400] + noise:
        reads.clear()
        slots, distances = index.search(query, 50)
        candidates = index._graph_candidates(index.prepare_one(query), 50 * index.config.rescore)
        everything = index.distances(index.prepare_one(query), prepared[candidates])
        order = np.lexsort((candidates, everything))[:50]
        assert slots.tolist() == candidates[order].tolist()
        np.testing.assert_allclose(distances, everything[order], rtol=1e-6, atol=1e-6)
        assert sum(reads) < len(candidates)
    index.close()


def test_tail_not_in_the_graph_is_searched_exactly() -> None:
    vectors = clustered(3000)
    index = VectorIndex(32, "cosine", IndexConfig(flat_threshold=100))
    index.close()  # no builder: everything past the threshold stays in the tail
    prepared = index.prepare(vectors)
    index.add(np.arange(3000), prepared)
    assert not index.indexed()
    for query in clustered(10, seed=1):
        slots, _ = index.search(query, 10)
        assert slots.tolist() == exact(index, vectors, query, 10)[0].tolist()


def test_queries_stay_correct_while_the_graph_is_built() -> None:
    vectors = clustered(20_000, seed=4)
    index = VectorIndex(32, "cosine", IndexConfig(flat_threshold=100, ef_construction=64))
    index.add(np.arange(20_000), index.prepare(vectors))
    assert not index.indexed()  # the add returned before the graph holds 20,000 vectors
    noise = 0.05 * np.random.default_rng(1).normal(size=(20, 32)).astype(np.float32)
    queries = vectors[::1000] + noise  # queries near the data, as real ones are
    during = [
        set(index.search(q, 10)[0].tolist()) & set(exact(index, vectors, q, 10)[0].tolist()) for q in queries
    ]
    assert np.mean([len(found) / 10 for found in during]) >= 0.95
    assert index.wait_indexed(300)
    after = [
        set(index.search(q, 10)[0].tolist()) & set(exact(index, vectors, q, 10)[0].tolist()) for q in queries
    ]
    assert np.mean([len(found) / 10 for found in after]) >= 0.95


@pytest.mark.parametrize("metric", METRICS)
def test_removed_slots_are_never_returned(metric: Metric) -> None:
    vectors = clustered(3000)
    for threshold in (10_000, 100):
        index = make(metric, vectors, threshold=threshold)
        index.wait_indexed(60)
        removed = np.arange(0, 3000, 3)
        index.remove(removed)
        assert len(index) == 2000
        for query in vectors[:20]:
            slots, _ = index.search(query, 20)
            assert len(slots) == 20
            assert not set(slots.tolist()) & set(removed.tolist())
            filtered, _ = index.search(query, 50, np.arange(30))
            assert sorted(filtered.tolist()) == [s for s in range(30) if s % 3]
        index.close()


def test_adding_a_held_slot_is_refused() -> None:
    index = make("cosine", clustered(200), threshold=100)
    with pytest.raises(ValueError, match="already held"):
        index.add(np.array([5]), index.prepare(clustered(1)))
    index.close()


@pytest.mark.slow
def test_recall_on_real_embeddings_with_a_tiny_flat_threshold(minilm, sts_sentences: list[str]) -> None:  # type: ignore[no-untyped-def]
    vectors = minilm.encode_document(sts_sentences[:2500], batch_size=64)
    queries = minilm.encode_query(sts_sentences[2500:2700])
    index = make("cosine", vectors, threshold=50)
    assert index.wait_indexed(300)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    recalls = [
        len(set(index.search(q, 10)[0].tolist()) & set(t.tolist())) / 10
        for q, t in zip(queries, truth, strict=True)
    ]
    assert np.mean(recalls) >= 0.95


def saved(tmp_path: Path, metric: Metric = "cosine") -> tuple[VectorIndex, np.ndarray, Path]:
    vectors = clustered(3000)
    index = make(metric, vectors, threshold=100)
    index.wait_indexed(60)
    index.remove(np.arange(10))
    prefix = tmp_path / "1.v"
    index.save(prefix, {"seq": 2999})
    return index, vectors, prefix


def fetcher(index: VectorIndex, vectors: np.ndarray):  # type: ignore[no-untyped-def]
    prepared = index.prepare(vectors)
    return lambda slots: prepared[np.where(slots == 5000, 0, slots)]  # 5000: a copy of row 0


@pytest.mark.parametrize("metric", METRICS)
def test_save_and_load_give_the_same_results(tmp_path: Path, metric: Metric) -> None:
    index, vectors, prefix = saved(tmp_path, metric)
    loaded = VectorIndex.load(prefix, 32, metric, IndexConfig(flat_threshold=100), fetcher(index, vectors))
    assert loaded is not None
    again, watermark = loaded
    assert watermark == {"seq": 2999}
    assert len(again) == len(index) == 2990
    for query in clustered(10, seed=1):
        first, first_distances = index.search(query, 10)
        second, second_distances = again.search(query, 10)
        assert first.tolist() == second.tolist()
        np.testing.assert_allclose(first_distances, second_distances)
    # catching up after load: new rows are searchable at once and reach the graph in the background
    again.add(np.array([5000]), again.prepare(vectors[:1]))
    if metric != "dot":  # under dot product a longer vector can beat the query itself
        assert again.search(vectors[0], 1)[0].tolist() == [5000]
    assert again.wait_indexed(60)
    again.save(prefix, {"seq": 5000})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "1.v.2.graph",
        "1.v.2.rows",
        "1.v.2.tail",
        "1.v.manifest.json",
    ]
    index.close()
    again.close()


def test_small_indexes_save_nothing(tmp_path: Path) -> None:
    index = make("cosine", clustered(50), threshold=100)
    index.save(tmp_path / "1.v", {"seq": 49})
    assert list(tmp_path.iterdir()) == []
    assert VectorIndex.load(tmp_path / "1.v", 32, "cosine", IndexConfig(), lambda s: s) is None


def corrupt_graph(prefix: Path) -> None:
    path = next(prefix.parent.glob("*.graph"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate_rows(prefix: Path) -> None:
    path = next(prefix.parent.glob("*.rows"))
    path.write_bytes(path.read_bytes()[:-5])


def drop_manifest(prefix: Path) -> None:
    next(prefix.parent.glob("*.manifest.json")).unlink()


def garble_manifest(prefix: Path) -> None:
    next(prefix.parent.glob("*.manifest.json")).write_text("{not json")


@pytest.mark.parametrize("damage", [corrupt_graph, truncate_rows, drop_manifest, garble_manifest])
def test_damaged_saves_are_not_loaded(tmp_path: Path, damage, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    index, vectors, prefix = saved(tmp_path)
    damage(prefix)
    assert (
        VectorIndex.load(prefix, 32, "cosine", IndexConfig(flat_threshold=100), fetcher(index, vectors))
        is None
    )
    assert "not loading the vector index" in caplog.text
    index.close()


@pytest.mark.parametrize(
    ("dims", "metric", "config"),
    [(16, "cosine", IndexConfig()), (32, "l2", IndexConfig()), (32, "cosine", IndexConfig(m=32))],
)
def test_mismatched_saves_are_not_loaded(
    tmp_path: Path, dims: int, metric: Metric, config: IndexConfig
) -> None:
    index, vectors, prefix = saved(tmp_path)
    assert VectorIndex.load(prefix, dims, metric, config, fetcher(index, vectors)) is None
    index.close()


def test_index_config_round_trips_and_old_configs_load() -> None:
    config = IndexConfig(flat_threshold=5, rescore=8)
    data = json.loads(
        json.dumps({"name": "A", "properties": {}, "vectors": {}, "bm25": {}, "index": config.__dict__})
    )
    assert CollectionConfig.from_json(data).index == config
    old = {"flat_threshold": 10_000, "m": 16, "ef_construction": 200, "ef": 96}
    assert IndexConfig(**old).rescore == 4
    with pytest.raises(ValueError, match="rescore"):
        IndexConfig(rescore=0)
