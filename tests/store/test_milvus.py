"""The Milvus backend on Milvus Lite behaves like the embedded backend, through the public API.

Most checks run the same calls on a Milvus Lite collection and on an in-memory embedded twin and
compare the answers, so the embedded backend is the specification.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import omniembed as oe
from omniembed.errors import CollectionExistsError, CollectionNotFoundError, MissingExtraError
from omniembed.store import Filter
from omniembed.store.database import Database

pytest.importorskip("milvus_lite")

P = Filter.by_property
ROWS: list[dict[str, Any]] = [
    {"name": "alpha", "year": 1999, "score": 0.5, "ok": True, "tags": ["a", "b"], "day": date(2020, 1, 1)},
    {"name": "beta", "year": 2005, "score": 1.5, "ok": False, "tags": ["b"], "day": date(2021, 6, 1)},
    {"name": "gamma", "year": 2010, "score": 2.5, "ok": True, "tags": ["c"], "day": "2022-03-04T10:00:00Z"},
    {"name": "alpine", "year": 2020, "tags": []},
    {"name": 'quote "q" 50% a_b\\n', "nums": [1, 2, 3]},
]
PROPERTIES = {
    "name": "text",
    "year": "int",
    "score": "number",
    "ok": "bool",
    "tags": "text[]",
    "day": "date",
    "nums": "int[]",
}


def milvus(path: Path) -> Database:
    return oe.connect(str(path), backend="milvus")


def names(collection: Any, where: Filter) -> list[str]:
    return sorted(obj.properties["name"] for obj in collection.query.fetch_objects(filters=where))


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """The filter table in Milvus Lite and in the embedded backend, with the same uuids and vectors."""
    databases = [milvus(tmp_path_factory.mktemp("milvus") / "m.db"), oe.connect()]
    vectors = np.eye(4, dtype=np.float32)
    objects = [
        oe.DataObject(row, uuid=f"00000000-0000-0000-0000-00000000000{i}", vectors={"v": vectors[i % 4]})
        for i, row in enumerate(ROWS)
    ]
    pair = []
    for db in databases:
        collection = db.collections.create("Items", PROPERTIES, {"v": oe.SelfProvided(dims=4)})
        assert not collection.data.insert_many(objects).errors
        pair.append(collection)
    yield pair[0], pair[1]
    for db in databases:
        db.close()


FILTERS = [
    P("year") == 2005,
    P("year") != 2005,
    P("year") < 2005,
    P("year") <= 2005,
    P("year") > 2005,
    P("year") >= 2010,
    P("score") >= 1.5,
    P("score") < 2,
    P("ok") == True,  # noqa: E712 - the filter builder overloads ==
    P("ok") != True,  # noqa: E712
    P("name").like("alp*"),
    P("name").like("?eta"),
    P("name").like("*"),
    P("name") == 'quote "q" 50% a_b\\n',
    P("name").like('quote "q"*'),
    P("tags") == "b",
    P("tags") != "b",
    P("tags").contains_any(["a", "c"]),
    P("tags").contains_all(["a", "b"]),
    P("tags").contains_all(["b"]),
    P("nums").contains_any([3, 7]),
    P("nums") == 2,
    P("name").contains_any(["beta", "gamma"]),
    P("name").contains_all(["beta", "gamma"]),
    P("name").contains_all(["beta"]),
    P("score").is_none(),
    P("score").is_none(False),
    P("tags").is_none(),
    P("day") >= datetime(2021, 1, 1, tzinfo=timezone.utc),
    P("day") < "2021-06-01",
    (P("year") > 2000) & (P("ok") == False),  # noqa: E712
    (P("year") < 2000) | (P("year") > 2015),
    ~(P("year") < 2010),
    ~(P("year") != 2005),
    ~~(P("year") < 2010),
    ~((P("year") < 2000) | (P("score") > 2)),
    ~((P("year") > 2000) & (P("score") > 1)),
    ~P("tags").contains_any(["a"]),
    ~P("score").is_none(),
    ~P("name").contains_all(["beta", "gamma"]),
    Filter.all_of([]),
    Filter.any_of([]),
    ~Filter.any_of([]),
    Filter.all_of([P("ok") == True, P("score") > 1]),  # noqa: E712
    Filter.any_of([P("name") == "beta", P("tags").contains_any(["c"])]),
    Filter.by_id() == "00000000-0000-0000-0000-000000000002",
    Filter.by_id() != "00000000-0000-0000-0000-000000000002",
    Filter.by_id().contains_any(
        ["00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-0000000000ff"]
    ),
    ~Filter.by_id().is_none(),
]


@pytest.mark.parametrize("where", FILTERS, ids=[repr(f) for f in FILTERS])
def test_every_filter_matches_the_embedded_backend(twins: tuple[Any, Any], where: Filter) -> None:
    remote, local = twins
    expected = names(local, where)
    assert names(remote, where) == expected
    assert remote.backend.count("Items", where) == len(expected)


def test_filters_apply_to_vector_and_keyword_search(twins: tuple[Any, Any]) -> None:
    remote, local = twins
    where = P("year") >= 2005
    for collection in (remote, local):
        hits = collection.query.near_vector([1, 0, 0, 0], limit=10, filters=where)
        assert sorted(obj.properties["name"] for obj in hits) == ["alpine", "beta", "gamma"]
        found = collection.query.bm25("alpha beta gamma", filters=where)
        assert sorted(obj.properties["name"] for obj in found) == ["beta", "gamma"]


def test_like_is_case_sensitive_in_milvus(twins: tuple[Any, Any]) -> None:
    remote, local = twins
    assert names(local, P("name").like("ALP*")) == ["alpha", "alpine"]
    assert names(remote, P("name").like("ALP*")) == []


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (P("colour") == "red", "unknown property 'colour'"),
        (P("year") == "2005", "'year' is int"),
        (P("year").like("20*"), "like works on text"),
        (P("tags").contains_any([]), "at least one value"),
        (P("day") > "yesterday", "not ISO 8601"),
        (P("nums") > 2, "cannot compare elements of array property 'nums'"),
    ],
)
def test_bad_filters_name_the_problem(twins: tuple[Any, Any], where: Filter, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        twins[0].query.fetch_objects(filters=where)


def test_collections_are_created_listed_and_deleted(tmp_path: Path) -> None:
    with milvus(tmp_path / "m.db") as db:
        assert db.collections.list() == []
        db.collections.create("B", {"title": "text"})
        db.collections.create("A", {"n": "int"}, {"v": oe.SelfProvided(dims=3, metric="dot")})
        assert db.collections.list() == ["A", "B"]
        assert db.collections.exists("A")
        with pytest.raises(CollectionExistsError, match="'A' exists"):
            db.collections.create("A")
        with pytest.raises(ValueError, match=r"give SelfProvided\(dims=...\)"):
            db.collections.create("C", vectors={"v": oe.SelfProvided()})
        db.collections.delete("B")
        assert db.collections.list() == ["A"]
        with pytest.raises(CollectionNotFoundError, match="no collection named 'B'"):
            db.collections.get("B")
        with pytest.raises(CollectionNotFoundError):
            db.collections.delete("B")


def test_reopening_restores_configs_and_objects(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with milvus(path) as db:
        collection = db.collections.create(
            "Docs",
            {"title": "text", "year": "int"},
            {"v": oe.SelfProvided(dims=2, metric="l2")},
            bm25=oe.BM25Config(k1=1.5, b=0.5),
        )
        config = collection.config
        uuid = collection.data.insert({"title": "kept", "year": 1}, vectors={"v": [3, 4]})
    with milvus(path) as db:
        assert db.collections.list() == ["Docs"]
        reopened = db.collections.get("Docs")
        assert reopened.config == config
        obj = reopened.data.get_by_id(uuid, include_vector=True)
        assert obj is not None
        assert obj.properties == {"title": "kept", "year": 1}
        np.testing.assert_array_equal(obj.vectors["v"], [3, 4])
        assert reopened.query.bm25("kept").uuids == [uuid]


def test_insert_many_refuses_bad_objects_and_keeps_the_rest(tmp_path: Path) -> None:
    with milvus(tmp_path / "m.db") as db:
        collection = db.collections.create("Docs", {"title": "text"}, {"v": oe.SelfProvided(dims=3)})
        first = collection.data.insert({"title": "first"}, vectors={"v": [1, 0, 0]})
        twin = "11111111-2222-3333-4444-555555555555"
        result = collection.data.insert_many(
            [
                oe.DataObject({"title": "dup"}, uuid=first, vectors={"v": [0, 1, 0]}),
                oe.DataObject({"title": "ok"}, vectors={"v": [0, 1, 0]}),
                oe.DataObject({"title": "short"}, vectors={"v": [1, 0]}),
                oe.DataObject({"title": "nan"}, vectors={"v": [np.nan, 0, 0]}),
                oe.DataObject({"title": "zero"}, vectors={"v": [0, 0, 0]}),
                oe.DataObject({"title": "who"}, vectors={"w": [1, 0, 0]}),
                {"title": 5},
                oe.DataObject({"title": "x" * 70_000}),
                oe.DataObject({"title": "twin 1"}, uuid=twin),
                oe.DataObject({"title": "twin 2"}, uuid=twin),
                oe.DataObject({"title": "no vector"}),
            ]
        )
        assert sorted(result.uuids) == [1, 8, 10]
        assert "exists" in result.errors[0]
        assert "expects 3" in result.errors[2]
        assert "NaN" in result.errors[3]
        assert "zero vector" in result.errors[4]
        assert "not one of the collection's vectors" in result.errors[5]
        assert "'title' is text" in result.errors[6]
        assert "at most 65535" in result.errors[7]
        assert "appears twice" in result.errors[9]
        assert len(collection) == 4
        assert collection.data.get_by_id(first).properties == {"title": "first"}  # type: ignore[union-attr]
        # an object without a vector is stored and found by keyword, never by vector search
        assert collection.query.bm25("vector").uuids == [result.uuids[10]]
        assert result.uuids[10] not in collection.query.near_vector([1, 1, 1], limit=10).uuids


def test_own_vectors_are_kept_normalised_for_cosine(tmp_path: Path) -> None:
    with milvus(tmp_path / "m.db") as db:
        with pytest.raises(ValueError, match=r"SelfProvided\(dims"):
            db.collections.create("Docs", {}, {"a": oe.SelfProvided(dims=2), "b": None})
        assert db.collections.list() == []
        collection = db.collections.create(
            "Docs", {}, {"a": oe.SelfProvided(dims=2), "b": oe.SelfProvided(dims=2, metric="dot")}
        )
        uuid = collection.data.insert({}, vectors={"a": [3, 4], "b": [3, 4]})
        obj = collection.data.get_by_id(uuid, include_vector=True)
        assert obj is not None
        np.testing.assert_allclose(obj.vectors["a"], [0.6, 0.8], rtol=1e-6)
        np.testing.assert_allclose(obj.vectors["b"], [3, 4])
        with pytest.raises(ValueError, match="choose one with target_vector"):
            collection.query.near_vector([1, 0])
        assert collection.query.near_object(uuid, target_vector="b").uuids == [uuid]


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_near_vector_is_exact_against_numpy(tmp_path: Path, metric: str) -> None:
    rng = np.random.default_rng(7)
    data = rng.normal(size=(400, 16)).astype(np.float32)
    queries = rng.normal(size=(5, 16)).astype(np.float32)
    with milvus(tmp_path / "m.db") as db:
        collection = db.collections.create("Vecs", {"i": "int"}, {"v": oe.SelfProvided(16, metric)})  # type: ignore[arg-type]
        result = collection.data.insert_many(
            [oe.DataObject({"i": i}, vectors={"v": v}) for i, v in enumerate(data)]
        )
        ids = np.array([result.uuids[i] for i in range(len(data))])
        stored = data / np.linalg.norm(data, axis=1, keepdims=True) if metric == "cosine" else data
        for query in queries:
            if metric == "cosine":
                scores = stored @ (query / np.linalg.norm(query))
                distances = 1 - scores
            elif metric == "dot":
                scores = stored @ query
                distances = -scores
            else:
                distances = ((stored - query) ** 2).sum(axis=1)
                scores = -distances
            top = np.argsort(-scores, kind="stable")[:10]
            hits = collection.query.near_vector(query, limit=10)
            assert hits.uuids == ids[top].tolist()
            np.testing.assert_allclose([h.score for h in hits], scores[top], rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose([h.distance for h in hits], distances[top], rtol=1e-4, atol=1e-5)
            even = collection.query.near_vector(query, limit=5, filters=P("i") < 200)
            assert even.uuids == ids[[i for i in np.argsort(-scores, kind="stable") if i < 200][:5]].tolist()


CORPUS = [
    {"title": "Supersonic flow", "body": "shock waves in supersonic flow over a wedge"},
    {"title": "Boundary layer", "body": "the boundary layer thickens along a flat plate in laminar flow"},
    {"title": "Heat transfer", "body": "heat transfer to a flat plate at high speed"},
    {"title": "Wings", "body": "lift of slender wings at supersonic speed, supersonic supersonic"},
    {"title": "Cooking", "body": "bread rises when yeast ferments the dough"},
]


def corpus_pair(folder: Path) -> tuple[list[Database], list[Any]]:
    """The papers in Milvus Lite and in the embedded backend, with the same uuids and vectors."""
    databases = [milvus(folder / "m.db"), oe.connect()]
    vectors = np.random.default_rng(3).normal(size=(len(CORPUS), 8))
    pair = []
    for db in databases:
        collection = db.collections.create(
            "Papers", {"title": "text", "body": "text"}, {"v": oe.SelfProvided(8, "dot")}
        )
        objects = [
            oe.DataObject(row, uuid=f"00000000-0000-0000-0000-00000000010{i}", vectors={"v": vectors[i]})
            for i, row in enumerate(CORPUS)
        ]
        assert not collection.data.insert_many(objects).errors
        pair.append(collection)
    return databases, pair


@pytest.fixture(scope="module")
def corpus_twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """Read-only papers, shared by the search tests."""
    databases, pair = corpus_pair(tmp_path_factory.mktemp("corpus"))
    yield pair[0], pair[1]
    for db in databases:
        db.close()


@pytest.fixture
def fresh_corpus_twins(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """Papers for one test that changes them."""
    databases, pair = corpus_pair(tmp_path)
    yield pair[0], pair[1]
    for db in databases:
        db.close()


@pytest.mark.parametrize(
    ("query", "properties"),
    [
        ("supersonic flow", None),
        ("flat plate", ["body"]),
        ("supersonic boundary", ["title^3", "body"]),
        ("yeast", None),
        ("supersonic supersonic flow", ["body"]),  # a repeated query word counts once
    ],
)
def test_bm25_ranks_like_the_embedded_backend(
    corpus_twins: tuple[Any, Any], query: str, properties: list[str] | None
) -> None:
    remote, local = corpus_twins
    expected = local.query.bm25(query, query_properties=properties)
    got = remote.query.bm25(query, query_properties=properties)
    assert got.uuids == expected.uuids
    np.testing.assert_allclose([o.score for o in got], [o.score for o in expected], rtol=1e-4)


def test_bm25_edge_cases(corpus_twins: tuple[Any, Any]) -> None:
    remote, _ = corpus_twins
    assert len(remote.query.bm25("zeppelin")) == 0
    assert len(remote.query.bm25("?!")) == 0
    top = remote.query.bm25("supersonic", query_properties=["body"], limit=1)
    assert top.objects[0].properties["title"] == "Wings"  # "supersonic" three times
    with pytest.raises(ValueError, match="not among"):
        remote.query.bm25("flow", query_properties=["colour"])


@pytest.mark.parametrize("fusion", ["relative_score", "ranked"])
def test_hybrid_matches_the_embedded_backend(corpus_twins: tuple[Any, Any], fusion: str) -> None:
    remote, local = corpus_twins
    vector = np.ones(8, dtype=np.float32)
    options = {"vector": vector, "fusion": fusion, "limit": 5, "explain": True}
    got, expected = (
        remote.query.hybrid("supersonic flow", **options),
        local.query.hybrid("supersonic flow", **options),
    )
    assert got.uuids == expected.uuids
    np.testing.assert_allclose([o.score for o in got], [o.score for o in expected], rtol=1e-4)
    ranks = [[(o.explain or {}).get(k) for k in ("vector_rank", "bm25_rank")] for o in (*got, *expected)]
    assert ranks[: len(got)] == ranks[len(got) :]
    assert any(o.explain["bm25_rank"] is not None for o in got)
    assert remote.query.hybrid("x", vector=vector, alpha=1).uuids == remote.query.near_vector(vector).uuids


def test_update_replace_and_delete_match_the_embedded_backend(fresh_corpus_twins: tuple[Any, Any]) -> None:
    def steps(collection: Any) -> list[Any]:
        first = collection.query.fetch_objects().uuids
        uuid = first[0]
        seen: list[Any] = []
        collection.data.update(uuid, {"title": "Hypersonic flow"})
        seen.append(collection.data.get_by_id(uuid, include_vector=True).properties)
        seen.append(collection.query.bm25("hypersonic").uuids)
        seen.append(collection.query.fetch_objects().uuids == [*first[1:], uuid])  # a rewrite moves last
        collection.data.replace(uuid, {"body": "only a body"})
        obj = collection.data.get_by_id(uuid, include_vector=True)
        seen.append((obj.properties, sorted(obj.vectors)))
        seen.append(collection.query.near_vector(np.ones(8), limit=5).uuids)
        seen.append(collection.query.fetch_objects(limit=2, offset=1).uuids)
        seen.append([collection.data.delete_by_id(uuid), collection.data.delete_by_id(uuid)])
        seen.append(collection.data.exists(uuid))
        seen.append(collection.data.delete_many(P("body").like("*plate*")))
        seen.append([len(collection), collection.query.fetch_objects().uuids])
        return seen

    remote, local = fresh_corpus_twins
    got, expected = steps(remote), steps(local)
    assert got == expected
    assert len(expected[1]) == 1
    assert expected[2] is True
    assert expected[6] == [True, False]
    assert expected[8] == 2


def test_a_collection_without_vectors_or_text_still_works(tmp_path: Path) -> None:
    with milvus(tmp_path / "m.db") as db:
        collection = db.collections.create("Counts", {"n": "int"})
        collection.data.insert_many([{"n": i} for i in range(5)])
        assert [o.properties["n"] for o in collection.query.fetch_objects(filters=P("n") >= 3)] == [3, 4]


@pytest.mark.slow
def test_near_text_with_a_real_model_matches_the_embedded_backend(tmp_path: Path, minilm: Any) -> None:
    rows = [{"title": row["title"], "body": row["body"]} for row in CORPUS]
    results = []
    for db in (milvus(tmp_path / "m.db"), oe.connect()):
        with db:
            collection = db.collections.create(
                "Papers", {"title": "text", "body": "text"}, oe.Vectorizer(minilm)
            )
            assert not collection.data.insert_many(rows).errors
            found = collection.query.near_text("air moving faster than sound", limit=3)
            results.append(([o.properties["title"] for o in found], [o.score for o in found]))
    assert results[0][0] == results[1][0]
    np.testing.assert_allclose(results[0][1], results[1][1], atol=1e-5)


def test_targets_and_a_missing_extra_name_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"milvus://host:port"):
        oe.connect(str(tmp_path / "folder"), backend="milvus")
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # what an uninstalled package looks like
    with pytest.raises(MissingExtraError, match=r"pip install 'omniembed\[milvus\]'"):
        oe.connect(str(tmp_path / "m.db"), backend="milvus")


def test_configs_are_stored_as_json_in_milvus(tmp_path: Path) -> None:
    with milvus(tmp_path / "m.db") as db:
        db.collections.create("Docs", {"title": "text"})
        rows = db.backend.client.query("oe_configs", filter='name == "Docs"', output_fields=["config"])  # type: ignore[attr-defined]
        assert json.loads(rows[0]["config"])["properties"] == {"title": "text"}


def test_rows_milvus_refuses_are_reported_one_by_one(tmp_path: Path) -> None:
    from omniembed.store.backend import StoredObject
    from omniembed.store.engines.milvus.layout import to_row

    with milvus(tmp_path / "m.db") as db:
        collection = db.collections.create("Docs", {"title": "text"})
        good = to_row(collection.config, StoredObject("11111111-2222-3333-4444-555555555555", {}), 1)
        bad = {key: value for key, value in good.items() if key != "seq"} | {"uuid": "x"}
        errors: dict[int, str] = {}
        db.backend._insert_rows("Docs", {0: good, 1: bad}, errors)  # type: ignore[attr-defined]
        assert list(errors) == [1]
        assert errors[1].startswith("Milvus refused object x:")
        assert collection.query.fetch_objects().uuids == [good["uuid"]]


CRANFIELD = Path(__file__).resolve().parents[2] / "data" / "cranfield" / "beir"


@pytest.mark.slow
def test_bm25_on_cranfield_matches_the_embedded_backend(tmp_path: Path) -> None:
    with (CRANFIELD / "corpus.jsonl").open(encoding="utf-8") as handle:
        docs = [json.loads(line) for line in handle if line.strip()]
    with (CRANFIELD / "queries.jsonl").open(encoding="utf-8") as handle:
        queries = [json.loads(line)["text"] for line in handle if line.strip()][:20]
    objects = [
        oe.DataObject(
            {"title": d.get("title", ""), "text": d.get("text", "")},
            uuid=f"{i:08d}-0000-0000-0000-000000000000",
        )
        for i, d in enumerate(docs)
    ]
    found = []
    for db in (milvus(tmp_path / "m.db"), oe.connect()):
        with db:
            collection = db.collections.create("Cranfield", {"title": "text", "text": "text"})
            assert not collection.data.insert_many(objects).errors
            found.append([collection.query.bm25(q, query_properties=["title^2", "text"]) for q in queries])
    for got, expected in zip(*found, strict=True):
        assert got.uuids == expected.uuids
        np.testing.assert_allclose([o.score for o in got], [o.score for o in expected], rtol=1e-5)


NESTED = [
    {"name": "a", "meta": {"author": "ann", "year": 1999, "ok": True, "inner": {"page": 3}}},
    {"name": "b", "meta": {"author": "bob", "year": 2005, "ok": False}},
    {"name": "c", "meta": {"author": "Anna", "year": 2010.5}},
    {"name": "d"},
]
NESTED_FILTERS = [
    P("meta.author") == "ann",
    P("meta.author") != "ann",
    P("meta.year") >= 2005,
    P("meta.year") < 2005,
    P("meta.ok") == True,  # noqa: E712 (the filter operator, not a comparison)
    P("meta.inner.page") == 3,
    P("meta.author").contains_any(["bob", "Anna"]),
    P("meta.author").is_none(),
    ~(P("meta.author") == "ann"),
    ~(P("meta.year") > 2000),
]


def test_paths_into_objects_filter_like_the_embedded_backend(tmp_path: Path) -> None:
    databases = [milvus(tmp_path / "m.db"), oe.connect()]
    pair = []
    for db in databases:
        collection = db.collections.create("Nested", {"name": "text", "meta": "object"})
        assert not collection.data.insert_many(NESTED).errors
        pair.append(collection)
    try:
        assert pair[0].query.fetch_objects(filters=P("name") == "a")[0].properties == NESTED[0]
        for where in NESTED_FILTERS:
            assert names(pair[0], where) == names(pair[1], where), where
        assert names(pair[0], P("meta.author") == "ann") == ["a"]
    finally:
        for db in databases:
            db.close()


def test_an_id_field_updates_in_milvus_too(tmp_path: Path) -> None:
    from omniembed.store.ids import object_uuid

    with milvus(tmp_path / "m.db") as db:
        docs = db.collections.create("Docs", {"id": "text", "title": "text", "meta": "object"})
        rows = [{"_id": str(i), "title": f"t{i}", "meta": {"n": i}} for i in range(5)]
        assert not docs.data.insert_many(rows, id_field="_id").errors
        rows[2]["title"] = "changed"
        again = docs.data.insert_many([*rows, {"_id": "9", "title": "new"}], id_field="_id")
        assert not again.errors
        assert len(docs) == 6
        changed = docs.data.get_by_id(object_uuid("Docs", "2"))
        assert changed is not None
        assert changed.properties == {"id": "2", "title": "changed", "meta": {"n": 2}}
        assert names_of(docs, P("meta.n") >= 3) == ["t3", "t4"]


def names_of(collection: Any, where: Filter) -> list[str]:
    return sorted(obj.properties["title"] for obj in collection.query.fetch_objects(filters=where))
