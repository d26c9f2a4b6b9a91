"""Multi-vector matrices kept as float16 or int8: sizes on disk, MaxSim close to float32, old folders."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import omniembed as oe
from omniembed.store.engines.embedded import matrices
from omniembed.store.engines.embedded.engine import FORMAT_VERSION


def maxsim(query: np.ndarray, document: np.ndarray) -> float:
    return float((query.astype(np.float64) @ document.astype(np.float64).T).max(axis=1).sum())


def unit_rows(rng: np.random.Generator, tokens: int, dims: int) -> np.ndarray:
    rows = rng.normal(size=(tokens, dims)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize(("storage", "tolerance"), [("float32", 1e-6), ("float16", 2e-3), ("int8", 2e-2)])
def test_each_storage_keeps_its_size_and_maxsim(tmp_path: Path, storage: str, tolerance: float) -> None:
    rng = np.random.default_rng(0)
    pages = [unit_rows(rng, int(rng.integers(20, 60)), 16) for _ in range(40)]
    with oe.connect(tmp_path / "db") as db:
        docs = db.collections.create(
            "Doc", {"n": "int"}, {"m": oe.SelfProvided(16, multi_vector=True)}, matrix_storage=storage
        )
        assert docs.config.vectors["m"].storage == storage
        result = docs.data.insert_many(
            [oe.DataObject({"n": i}, vectors={"m": m}) for i, m in enumerate(pages)]
        )
        assert not result.errors
    with sqlite3.connect(tmp_path / "db" / "omniembed.sqlite") as conn:
        sizes = [size for (size,) in conn.execute("SELECT length(data) FROM vectors_1 ORDER BY seq")]
    assert sizes == [matrices.stored_bytes(len(m), 16, storage) for m in pages]
    query = pages[3][:5] + 0.1 * unit_rows(rng, 5, 16)
    with oe.connect(tmp_path / "db") as db:  # reopened: matrices decoded from their storage
        docs = db.collections.get("Doc")
        found = docs.query.near_vector(query, limit=40)
        for obj in found:
            exact = maxsim(query, pages[obj.properties["n"]])
            assert obj.score == pytest.approx(exact, abs=tolerance * len(query))
        assert found[0].properties["n"] == 3
        back = docs.data.get_by_id(result.uuids[7], include_vector=True)
        assert back is not None
        np.testing.assert_allclose(back.vectors["m"].reshape(pages[7].shape), pages[7], atol=tolerance)


def test_a_format_2_folder_keeps_reading_its_float32_matrices(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pages = [unit_rows(rng, 10, 8) for _ in range(5)]
    with oe.connect(tmp_path / "db") as db:
        docs = db.collections.create(
            "Doc", {"n": "int"}, {"m": oe.SelfProvided(8, multi_vector=True)}, matrix_storage="float32"
        )
        docs.data.insert_many([oe.DataObject({"n": i}, vectors={"m": m}) for i, m in enumerate(pages)])
    with sqlite3.connect(
        tmp_path / "db" / "omniembed.sqlite"
    ) as conn:  # as a release before storage wrote it
        (text,) = conn.execute("SELECT config FROM collections").fetchone()
        config = json.loads(text)
        del config["vectors"]["m"]["storage"]
        conn.execute("UPDATE collections SET config = ?", (json.dumps(config),))
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'format'")
    for path in (tmp_path / "db").glob("1.m*"):
        path.unlink()  # and the index rebuilds from SQLite
    with oe.connect(tmp_path / "db") as db:
        docs = db.collections.get("Doc")
        assert docs.config.vectors["m"].storage == "float32"
        assert docs.query.near_vector(pages[2], limit=1)[0].properties["n"] == 2
        (obj,) = docs.query.fetch_objects(filters=oe.Filter.by_property("n") == 4, include_vector=True)
        np.testing.assert_array_equal(obj.vectors["m"].reshape(10, 8), pages[4])
    with sqlite3.connect(tmp_path / "db" / "omniembed.sqlite") as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() == (
            str(FORMAT_VERSION),
        )


def test_an_unknown_storage_is_refused() -> None:
    with oe.connect() as db, pytest.raises(ValueError, match="matrix storage 'int4' is not one of"):
        db.collections.create("Doc", {}, {"m": oe.SelfProvided(8, multi_vector=True)}, matrix_storage="int4")  # type: ignore[arg-type]
    assert oe.store.VectorConfig(4, "cosine", storage="int8").storage == "float32"  # single vectors: float32
