"""Bulk import streams, shows progress as asked, and filters read property indexes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import omniembed as oe
from omniembed.store.filters import to_sql
from omniembed.store.schema import Schema


def test_insert_many_streams_a_generator_batch_by_batch(tmp_path: Path) -> None:
    with oe.connect(tmp_path / "db") as db:
        docs = db.collections.create("Doc", {"n": "int"}, {"v": oe.SelfProvided(4)})
        stored_while_reading: list[int] = []

        def objects() -> Iterator[oe.DataObject]:
            for n in range(1_000):
                if n % 100 == 0:
                    stored_while_reading.append(len(docs))
                yield oe.DataObject({"n": n}, vectors={"v": np.ones(4) + n})

        result = docs.data.insert_many(objects(), batch_size=100, show_progress=False)
        assert len(result.uuids) == 1_000
        assert stored_while_reading == list(range(0, 1_000, 100))  # never more than a batch held


def test_a_bad_object_in_a_stream_is_reported_and_the_rest_kept() -> None:
    with oe.connect() as db:
        docs = db.collections.create("Doc", {"n": "int"})
        stream = iter([{"n": 1}, "not a dict", {"n": "x"}, {"n": 4}])
        result = docs.data.insert_many(stream, batch_size=3)  # type: ignore[arg-type]
        assert sorted(result.uuids) == [0, 3]
        assert "dict of properties" in result.errors[1]
        assert "int" in result.errors[2]


@pytest.mark.parametrize(("disable", "shown"), [("1", False), ("", True)])
def test_the_import_progress_bar_honours_tqdm_disable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, disable: str, shown: bool
) -> None:
    monkeypatch.setenv("TQDM_DISABLE", disable)
    with oe.connect() as db:
        docs = db.collections.create("Doc", {"n": "int"})
        docs.data.insert_many(({"n": n} for n in range(50)), batch_size=10, show_progress=True)
    assert ("importing into Doc" in capsys.readouterr().err) == shown


def plan(folder: Path, sql: str, params: Sequence[Any] = ()) -> str:
    with sqlite3.connect(folder / "omniembed.sqlite") as conn:
        return " ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))


def test_filters_on_scalar_properties_use_an_index(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    kinds = {
        "year": "int",
        "score": "number",
        "done": "bool",
        "day": "date",
        "title": "text",
        "tags": "text[]",
    }
    with oe.connect(folder) as db:
        docs = db.collections.create("Doc", kinds)
        docs.data.insert_many(
            [
                {"year": 1900 + n % 100, "title": f"t{n}", "done": n % 2 == 0, "tags": ["a"]}
                for n in range(2_000)
            ]
        )
        in_1960 = docs.query.fetch_objects(filters=oe.Filter.by_property("year") == 1960)
        assert len(in_1960.objects) == 20
        assert all(o.properties["year"] == 1960 for o in in_1960.objects)
        assert docs.query.fetch_objects(filters=oe.Filter.by_property("done") == True).uuids  # noqa: E712
    schema = Schema(kinds)
    values = {"year": 1960, "score": 0.5, "done": True, "day": "2026-01-01T00:00:00Z", "title": "t7"}
    for name, value in values.items():
        for flt in (oe.Filter.by_property(name) == value, oe.Filter.by_property(name).contains_any([value])):
            clause, params = to_sql(flt, schema)
            sql = f"SELECT seq FROM objects_1 WHERE {clause}"
            assert f"USING INDEX objects_1_{name}" in plan(folder, sql, params)
    assert "objects_1_tags" not in plan(
        folder, "SELECT seq FROM objects_1 WHERE json_extract(properties, '$.tags') = 1"
    )


def test_a_property_can_go_without_its_filter_index(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    with oe.connect(folder) as db:
        docs = db.collections.create("Doc", {"year": oe.Property("int", index_filterable=False), "n": "int"})
        docs.data.insert_many([{"year": 1900 + n % 10, "n": n} for n in range(100)])
        assert len(docs.query.fetch_objects(filters=oe.Filter.by_property("year") == 1905).objects) == 10
    with oe.connect(folder) as db:  # the choice is stored with the collection
        assert "year" in db.collections.get("Doc").config.schema.unindexed
    assert "objects_1_year" not in plan(
        folder, "SELECT seq FROM objects_1 WHERE json_extract(properties, '$.year') = 1"
    )
    assert "objects_1_n" in plan(
        folder, "SELECT seq FROM objects_1 WHERE json_extract(properties, '$.n') = 1"
    )
