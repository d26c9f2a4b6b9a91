"""Every filter operator on every property type, through a real (in-memory) collection."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pytest

import omniembed as oe
from omniembed.store import Filter
from omniembed.store.filters import And, Condition, Or

ROWS = [
    {"name": "alpha", "year": 1999, "score": 0.5, "ok": True, "tags": ["a", "b"], "day": date(2020, 1, 1)},
    {"name": "beta", "year": 2005, "score": 1.5, "ok": False, "tags": ["b"], "day": date(2021, 6, 1)},
    {"name": "gamma", "year": 2010, "score": 2.5, "ok": True, "tags": ["c"], "day": "2022-03-04T10:00:00Z"},
    {"name": "Alpine", "year": 2020, "tags": []},
]
PROPERTIES = {"name": "text", "year": "int", "score": "number", "ok": "bool", "tags": "text[]", "day": "date"}


@pytest.fixture(scope="module")
def items():  # type: ignore[no-untyped-def]
    db = oe.connect()
    collection = db.collections.create("Items", PROPERTIES, {"v": oe.SelfProvided(dims=4)})
    vectors = np.eye(4, dtype=np.float32)
    result = collection.data.insert_many(
        [oe.DataObject(row, vectors={"v": vectors[i]}) for i, row in enumerate(ROWS)]
    )
    assert not result.errors
    yield collection
    db.close()


def names(collection, where: Filter) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(obj.properties["name"] for obj in collection.query.fetch_objects(filters=where))


P = Filter.by_property


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (P("year") == 2005, ["beta"]),
        (P("year") != 2005, ["Alpine", "alpha", "gamma"]),
        (P("year") < 2005, ["alpha"]),
        (P("year") <= 2005, ["alpha", "beta"]),
        (P("year") > 2005, ["Alpine", "gamma"]),
        (P("year").greater_or_equal(2010), ["Alpine", "gamma"]),
        (P("score") >= 1.5, ["beta", "gamma"]),
        (P("score") < 2, ["alpha", "beta"]),
        (P("ok") == True, ["alpha", "gamma"]),  # noqa: E712 - the filter builder overloads ==
        (P("ok").equal(False), ["beta"]),
        (P("name").like("alp*"), ["Alpine", "alpha"]),
        (P("name").like("?eta"), ["beta"]),
        (P("name") == "gamma", ["gamma"]),
        (P("tags") == "b", ["alpha", "beta"]),
        (P("tags").contains_any(["a", "c"]), ["alpha", "gamma"]),
        (P("tags").contains_all(["a", "b"]), ["alpha"]),
        (P("name").contains_any(["beta", "gamma"]), ["beta", "gamma"]),
        (P("score").is_none(), ["Alpine"]),
        (P("score").is_none(False), ["alpha", "beta", "gamma"]),
        (P("day") >= datetime(2021, 1, 1, tzinfo=timezone.utc), ["beta", "gamma"]),
        (P("day") < "2021-06-01", ["alpha"]),
        ((P("year") > 2000) & (P("ok") == False), ["beta"]),  # noqa: E712
        ((P("year") < 2000) | (P("year") > 2015), ["Alpine", "alpha"]),
        (~(P("year") < 2010), ["Alpine", "gamma"]),
        (Filter.all_of([P("ok") == True, P("score") > 1]), ["gamma"]),  # noqa: E712
        (Filter.any_of([P("name") == "beta", P("tags").contains_any(["c"])]), ["beta", "gamma"]),
    ],
)
def test_operator(items, where: Filter, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert names(items, where) == expected
    assert items.backend.count("Items", where) == len(expected)


def test_like_treats_sql_wildcards_literally(items) -> None:  # type: ignore[no-untyped-def]
    assert names(items, P("name").like("%")) == []
    assert names(items, P("name").like("*")) == ["Alpine", "alpha", "beta", "gamma"]


def test_by_id(items) -> None:  # type: ignore[no-untyped-def]
    uuid = items.query.fetch_objects(limit=1).objects[0].uuid
    assert [obj.uuid for obj in items.query.fetch_objects(filters=Filter.by_id().equal(uuid))] == [uuid]


def test_filtered_vector_search_only_returns_matches(items) -> None:  # type: ignore[no-untyped-def]
    hits = items.query.near_vector([1, 0, 0, 0], limit=10, filters=P("year") >= 2005)
    assert sorted(obj.properties["name"] for obj in hits) == ["Alpine", "beta", "gamma"]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (P("colour") == "red", "unknown property 'colour'"),
        (P("year") == "2005", "'year' is int"),
        (P("year").like("20*"), "like works on text"),
        (P("tags").contains_any([]), "at least one value"),
        (P("day") > "yesterday", "not ISO 8601"),
    ],
)
def test_bad_filters_name_the_problem(items, where: Filter, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        items.query.fetch_objects(filters=where)


def not_nested(depth: int) -> Filter:
    where: Filter = P("year") == 2005
    for _ in range(depth):
        where = ~where
    return where


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (not_nested(17), "nested more than 16"),
        (not_nested(100_000), "nested more than 16"),  # checked in a loop: no RecursionError
        (Filter.any_of([P("year") == year for year in range(257)]), "over 256 conditions"),
        (P("year").contains_any(range(4097)), "4097 values; a list takes at most 4096"),
        (Filter.any_of([P("tags").contains_all(["x"] * 4000)] * 3), "over 10000 values"),
        (Condition("year", "is_none", "no"), "takes true or false"),
        (P("name").like("*a" * 501), "1002 characters; the most is 1000"),
    ],
)
def test_filters_over_the_limits_are_refused(items, where: Filter, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        items.query.fetch_objects(filters=where)


def test_chained_operators_make_one_level() -> None:
    chained = (P("year") > 1) & (P("year") > 2) & (P("year") > 3) | (P("ok") == True)  # noqa: E712
    assert repr(chained) == (
        "Or(And(Condition('year', '>', 1), Condition('year', '>', 2), Condition('year', '>', 3)), "
        "Condition('ok', '==', True))"
    )


def test_filters_at_the_limits_run(items) -> None:  # type: ignore[no-untyped-def]
    assert names(items, not_nested(16)) == ["beta"]
    wide = Filter.any_of([P("year") == year for year in range(1990, 2246)])
    assert names(items, wide) == ["Alpine", "alpha", "beta", "gamma"]
    assert names(items, P("year").contains_any(range(4096))) == ["Alpine", "alpha", "beta", "gamma"]
    deep_and_wide = not_nested(15) & Filter.all_of([P("year") > y for y in range(254)])
    assert names(items, deep_and_wide) == ["Alpine", "alpha", "gamma"]
    worst: Filter = P("year") == 2005  # the shape SQLite's parser takes least of: nested last, and/or
    for level in range(16):
        worst = And((P("year") > 0, worst)) if level % 2 else Or((P("year") > 3000, worst))
    assert names(items, worst) == ["beta"]
