"""Nested ``object`` properties, id fields and schema inference, on real SQLite files."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

import omniembed as oe
from omniembed.store import Filter
from omniembed.store.filters import to_sql
from omniembed.store.ids import object_uuid
from omniembed.store.infer import infer_properties
from omniembed.store.nested import MAX_OBJECT_BYTES, MAX_OBJECT_DEPTH
from omniembed.store.schema import Schema

P = Filter.by_property
CORPUS = Path(__file__).parents[2] / "data" / "cranfield" / "beir" / "corpus.jsonl"
ROWS: list[dict[str, Any]] = [
    {"name": "a", "meta": {"author": "ann", "year": 1999, "ok": True, "inner": {"page": 3}}},
    {"name": "b", "meta": {"author": "bob", "year": 2005, "ok": False, "tags": ["x", "y"]}},
    {"name": "c", "meta": {"author": "Anna", "year": 2010.5}},
    {"name": "d"},
]


@pytest.fixture
def items(tmp_path: Path) -> Any:
    db = oe.connect(tmp_path / "db")
    collection = db.collections.create("Items", {"name": "text", "meta": "object", "parts": "object[]"})
    assert not collection.data.insert_many(ROWS).errors
    yield collection
    db.close()


def names(collection: Any, where: Filter) -> list[str]:
    return sorted(obj.properties["name"] for obj in collection.query.fetch_objects(filters=where))


def test_objects_come_back_as_they_went_in(tmp_path: Path) -> None:
    value = {"author": "ann", "n": [1, 2.5, None, {"deep": [True]}], "empty": {}, "u": "caf\u00e9"}
    with oe.connect(tmp_path / "db") as db:
        collection = db.collections.create("C", {"meta": "object", "parts": "object[]"})
        ident = collection.data.insert({"meta": value, "parts": [{"a": 1}, {"a": 2}]})
    with oe.connect(tmp_path / "db") as db:  # reopened: read from the file
        got = db.collections.get("C").data.get_by_id(ident)
        assert got is not None
        assert got.properties == {"meta": value, "parts": [{"a": 1}, {"a": 2}]}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (P("meta.author") == "ann", ["a"]),
        (P("meta.author") != "ann", ["b", "c"]),
        (P("meta.year") >= 2005, ["b", "c"]),
        (P("meta.year") < 2005, ["a"]),
        (P("meta.ok") == True, ["a"]),  # noqa: E712 (the filter operator, not a comparison)
        (P("meta.inner.page") == 3, ["a"]),
        (P("meta.author").like("an*"), ["a", "c"]),
        (P("meta.author").contains_any(["bob", "Anna"]), ["b", "c"]),
        (P("meta.author").is_none(), ["d"]),
        (P("meta.inner").is_none(False), ["a"]),
        (~(P("meta.author") == "ann"), ["b", "c"]),
        ((P("meta.year") > 2000) & (P("name") == "b"), ["b"]),
    ],
)
def test_filters_on_a_nested_path(items: Any, where: Filter, expected: list[str]) -> None:
    assert names(items, where) == expected


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (P("meta") == "ann", "path inside it"),
        (P("name.first") == "x", "not an object"),
        (P("parts.a") == 1, r"object\[\]"),
        (P("meta.bad-key") == 1, "bad-key"),
        (P("meta.author") == {"a": 1}, "give text, a number or a boolean"),
        (P("nothing.here") == 1, "unknown property"),
    ],
)
def test_bad_nested_filters_name_the_problem(items: Any, where: Filter, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        items.query.fetch_objects(filters=where)


def test_nested_paths_compile_to_json_extract_with_checked_keys() -> None:
    sql, params = to_sql(P("meta.author") == "ann", Schema({"meta": "object"}))
    assert sql == "(json_extract(properties, '$.meta.author') = ?)"
    assert params == ["ann"]
    with pytest.raises(ValueError, match="not letters"):
        to_sql(P("meta.a') OR 1 --") == 1, Schema({"meta": "object"}))


def test_object_values_are_checked_and_bounded(tmp_path: Path) -> None:
    with oe.connect(tmp_path / "db") as db:
        collection = db.collections.create("C", {"meta": "object", "parts": "object[]"})
        deep: Any = "bottom"
        for _ in range(MAX_OBJECT_DEPTH):
            deep = {"k": deep}
        collection.data.insert({"meta": deep})  # exactly at the limit
        bad = [
            ({"meta": {"k": deep}}, "nests more than"),
            ({"meta": {"text": "x" * MAX_OBJECT_BYTES}}, "bytes of JSON"),
            ({"meta": "plain"}, "give a dict"),
            ({"meta": {"n": float("nan")}}, "finite numbers"),
            ({"meta": {"s": {1, 2}}}, "set"),
            ({"meta": {1: "x"}}, "not text"),
            ({"meta": {"n": 2**70}}, "64-bit"),
            ({"parts": {"a": 1}}, "list of dicts"),
            ({"parts": [1, 2]}, "give a dict"),
        ]
        result = collection.data.insert_many([obj for obj, _ in bad])
        for index, (_, message) in enumerate(bad):
            assert message in result.errors[index], (index, result.errors[index])
        assert len(collection) == 1


def test_a_python_object_nested_past_recursion_is_refused(tmp_path: Path) -> None:
    deep: Any = {}
    for _ in range(100_000):
        deep = {"k": deep}
    with oe.connect(tmp_path / "db") as db:
        collection = db.collections.create("C", {"meta": "object"})
        with pytest.raises(ValueError, match="nests more than"):
            collection.data.insert({"meta": deep})


def test_a_vectorizer_reads_text_inside_an_object(tmp_path: Path, tiny_model: Any) -> None:
    from omniembed.store.vectorizer import Vectorizer

    schema = Schema({"title": "text", "meta": "object"})
    vectorizer = Vectorizer(str(tiny_model("bert")), ["title", "meta.author", "meta.pages"])
    vectorizer.bind(schema)
    properties = {"title": "Wings", "meta": {"author": "ann", "pages": [3, 4]}}
    assert vectorizer.input_for(properties, schema) == "Wings\nann\n3, 4"
    assert vectorizer.input_for({"meta": {"other": 1}}, schema) is None
    with pytest.raises(ValueError, match=r"metadata\.author"):
        Vectorizer(str(tiny_model("bert")), ["title.author"]).bind(schema)
    with oe.connect(tmp_path / "db") as db:
        collection = db.collections.create("C", schema.properties, vectorizer)
        collection.data.insert({"title": "Wings", "meta": {"author": "ann"}})
        assert collection.query.near_text("ann", limit=1)[0].properties["title"] == "Wings"


def test_object_uuid_is_uuid5_of_the_collection_and_the_value() -> None:
    expected = uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "omniembed:object"), "Docs/42")
    assert object_uuid("Docs", "42") == object_uuid("Docs", 42) == str(expected)
    assert object_uuid("Other", "42") != object_uuid("Docs", "42")
    for bad in (None, 1.5, True, {"a": 1}, ""):
        with pytest.raises(ValueError, match="id field"):
            object_uuid("Docs", bad)


def test_an_id_field_updates_instead_of_duplicating(tmp_path: Path) -> None:
    with oe.connect(tmp_path / "db") as db:
        collection = db.collections.create("Docs", {"id": "text", "title": "text"})
        first = collection.data.insert_many(
            [{"_id": "1", "title": "one"}, {"_id": 2, "title": "two"}], id_field="_id"
        )
        assert first.uuids == {0: object_uuid("Docs", "1"), 1: object_uuid("Docs", 2)}
        again = collection.data.insert_many(
            [{"_id": "1", "title": "uno"}, {"_id": "3", "title": "tres"}], id_field="_id"
        )
        assert not again.errors
        assert len(collection) == 3
        got = collection.data.get_by_id(object_uuid("Docs", "1"))
        assert got is not None
        assert got.properties == {"id": "1", "title": "uno"}
        assert names_of(collection, P("id") == "2") == ["two"]
        refused = collection.data.insert_many(
            [{"title": "no id"}, {"_id": "4", "id": "5", "title": "two ids"}, {"_id": [1]}], id_field="_id"
        )
        assert "has no '_id'" in refused.errors[0]
        assert "besides the id field" in refused.errors[1]
        assert "text or an integer" in refused.errors[2]
        plain = db.collections.create("Plain", {"title": "text"})
        with pytest.raises(ValueError, match=r"property 'id'.*lacks"):
            plain.data.insert_many([{"_id": "1"}], id_field="_id")


def names_of(collection: Any, where: Filter) -> list[str]:
    return [obj.properties["title"] for obj in collection.query.fetch_objects(filters=where)]


def test_system_names_are_reserved_with_the_fix(tmp_path: Path) -> None:
    with oe.connect(tmp_path / "db") as db, pytest.raises(ValueError, match=r"reserved.*id_field"):
        db.collections.create("C", {"_id": "text"})


def test_inference_takes_the_widest_type_over_a_sample() -> None:
    rows = [
        {"n": 1, "tags": [], "meta": None, "list": [1]},
        {"n": 2.5, "tags": ["a"], "meta": {"a": 1}, "list": [2.5], "parts": [{"a": 1}]},
    ]
    assert infer_properties(rows) == {
        "n": "number",
        "list": "number[]",
        "tags": "text[]",
        "meta": "object",
        "parts": "object[]",
    }
    with pytest.raises(ValueError, match=r"'n' holds int \(a:1\) and text \(a:2\); state its type"):
        infer_properties([{"n": 1}, {"n": "x"}], places=["a:1", "a:2"])
    with pytest.raises(ValueError, match=r"'mixed' \(object 0\) holds a list holding"):
        infer_properties([{"mixed": [1, "a"]}])


def test_the_cranfield_corpus_imports_twice_without_duplicates(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    types = infer_properties({k: v for k, v in row.items() if k != "_id"} for row in rows)
    assert types == {"title": "text", "text": "text", "metadata": "object"}
    with oe.connect(tmp_path / "db") as db:
        collection = db.collections.create("Cran", {"id": "text", **types})
        for _ in range(2):
            result = collection.data.insert_many(iter(rows), id_field="_id", show_progress=False)
            assert not result.errors
            assert len(result.uuids) == 1400
        assert len(collection) == 1400
        author = rows[0]["metadata"]["author"]
        expected = sorted(row["_id"] for row in rows if row["metadata"]["author"] == author)
        found = collection.query.fetch_objects(filters=P("metadata.author") == author, limit=100)
        assert sorted(obj.properties["id"] for obj in found) == expected
        assert all(obj.properties["metadata"]["author"] == author for obj in found)


def test_top_level_filters_keep_their_index_and_nested_paths_scan(tmp_path: Path) -> None:
    import sqlite3

    with oe.connect(tmp_path / "db") as db:
        docs = db.collections.create("Doc", {"year": "int", "meta": "object"})
        docs.data.insert_many([{"year": n, "meta": {"author": f"a{n}"}} for n in range(100)])
        schema = docs.config.schema
    with sqlite3.connect(tmp_path / "db" / "omniembed.sqlite") as conn:

        def plan(where: Filter) -> str:
            clause, params = to_sql(where, schema)
            query = f"EXPLAIN QUERY PLAN SELECT seq FROM objects_1 WHERE {clause}"
            return " ".join(row[-1] for row in conn.execute(query, params))

        assert "USING INDEX objects_1_year" in plan(P("year") == 5)
        assert "SCAN" in plan(P("meta.author") == "a5")
        indexes = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
        assert "objects_1_meta" not in indexes  # no index for an object property
