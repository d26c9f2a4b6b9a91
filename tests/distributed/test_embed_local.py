"""``embed`` and ``import_into`` on a local Ray started in this process (``ray.init()``): outputs
equal in-process and reference encoding, bad rows are refused or counted, a model that cannot load
fails the job naming the worker (no hang), and importing twice stores each row once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import omniembed as oe
from omniembed.distributed import Skipped, clear_errors, embed, import_into
from omniembed.errors import InvalidInputError, PoolWorkerError

from helpers.numbers import cosines
from helpers.ray_cluster import local_ray

ray = pytest.importorskip("ray")

TEXTS = ["a cat sits on the mat", "stock markets fell today", "how do magnets work?", "rain again", "x"]
WAIT_S = 120


@pytest.fixture(scope="module", autouse=True)
def local() -> Iterator[None]:
    with local_ray(cpus=2):
        ray.data.DataContext.get_current().enable_progress_bars = False
        yield


def rows(ds: Any) -> list[dict[str, Any]]:
    """The rows of a dataset in key order; a job that runs past ``WAIT_S`` fails the test."""
    started = time.monotonic()
    with clear_errors():
        found = sorted(ds.take_all(), key=lambda row: row["id"])
    assert time.monotonic() - started < WAIT_S
    return found


def texts_ds(texts: list[Any]) -> Any:
    return ray.data.from_items([{"id": i, "text": t} for i, t in enumerate(texts)])


def test_dense_sparse_and_multi_vector_equal_in_process(
    tiny_model: Callable[..., Path], tmp_path: Path
) -> None:
    from sentence_transformers import SentenceTransformer as Reference

    from helpers.models import build_colbert
    from helpers.sparse import build_splade

    folder = tiny_model("bert", prompts={"query": "query: "}, normalize=True)
    splade, colbert = build_splade(tmp_path / "splade"), build_colbert(tmp_path / "colbert")
    half = {"num_cpus": 0.5, "batch_size": 2}  # three actor pools on two CPUs
    ds = embed(texts_ds(TEXTS), folder, task="query", key_column="id", **half)
    ds = embed(ds, splade, model_class="SparseEncoder", output_column="sparse", **half)
    out = rows(embed(ds, colbert, model_class="MultiVectorEncoder", output_column="tokens", **half))
    assert [row["text"] for row in out] == TEXTS
    got = np.array([row["embedding"] for row in out], dtype=np.float32)
    assert cosines(got, oe.SentenceTransformer(folder, device="cpu").encode_query(TEXTS)).min() >= 0.99999
    assert cosines(got, Reference(str(folder), device="cpu").encode_query(TEXTS)).min() >= 0.99999
    dense = oe.SparseEncoder(splade, device="cpu").encode(TEXTS, convert_to_sparse_tensor=False).numpy()
    for row, expected in zip(out, dense, strict=True):
        np.testing.assert_allclose(expected[row["sparse"]["indices"]], row["sparse"]["values"], rtol=1e-5)
        assert np.count_nonzero(expected) == len(row["sparse"]["indices"])
    for row, matrix in zip(out, oe.MultiVectorEncoder(colbert, device="cpu").encode(TEXTS), strict=True):
        np.testing.assert_allclose(np.array(row["tokens"]), matrix, rtol=1e-5, atol=1e-6)


def test_a_bad_row_fails_the_job_by_its_key(tiny_model: Callable[..., Path]) -> None:
    ds = embed(texts_ds(["fine", None, "also fine"]), tiny_model("bert"), key_column="id", batch_size=8)
    with pytest.raises(InvalidInputError, match=r"row id=1: column 'text' is null.*on_bad='skip'"):
        rows(ds)


def test_bad_rows_are_skipped_and_counted_once(tiny_model: Callable[..., Path]) -> None:
    skipped = Skipped()
    ds = texts_ds(["fine", None, "good", None, "ok"])
    out = rows(embed(ds, tiny_model("bert"), on_bad="skip", skipped=skipped, key_column="id"))
    assert [row["id"] for row in out] == [0, 2, 4]
    assert skipped.count == 2
    assert sorted(skipped.examples) == ["row id=1: column 'text' is null", "row id=3: column 'text' is null"]


def test_a_missing_column_is_refused_before_running(tiny_model: Callable[..., Path]) -> None:
    with pytest.raises(KeyError, match="no column 'body'"):
        embed(texts_ds(TEXTS), tiny_model("bert"), column="body")


def test_a_model_that_cannot_load_fails_the_job_naming_the_worker(tmp_path: Path) -> None:
    ds = embed(texts_ds(TEXTS), tmp_path / "no-such-model")
    with pytest.raises(PoolWorkerError, match=r"worker pid \d+ on node 127\.0\.0\.2 could not load"):
        rows(ds)


def test_import_into_a_folder_twice_stores_each_row_once(
    tiny_model: Callable[..., Path], tmp_path: Path
) -> None:
    folder = tiny_model("bert")
    ds = embed(texts_ds(TEXTS), folder).materialize()
    first = import_into(ds, tmp_path / "db", "Docs", show_progress=False)
    again = import_into(ds, tmp_path / "db", "Docs", show_progress=False)
    assert first.imported == again.imported == len(TEXTS)
    assert not first.errors
    expected = oe.SentenceTransformer(folder, device="cpu").encode(TEXTS)
    with oe.connect(tmp_path / "db") as db:
        docs = db.collections.get("Docs")
        assert len(docs) == len(TEXTS)
        found = docs.query.near_vector(expected[2], limit=1).objects[0]
        assert found.properties["text"] == TEXTS[2]
        assert found.properties["id"] == 2


def test_import_refuses_a_plan_that_cannot_work(tmp_path: Path) -> None:
    ds = texts_ds(TEXTS)
    with pytest.raises(ValueError, match="takes writers from one process only; use writer='driver'"):
        import_into(ds, tmp_path / "db", "Docs", writer="tasks")
    with pytest.raises(ValueError, match="takes writers from one process only"):
        import_into(ds, tmp_path / "lite.db", "Docs", writer="tasks")
    with pytest.raises(KeyError, match="no column 'vec'"):
        import_into(ds, tmp_path / "db", "Docs", vector_column="vec", show_progress=False)
    with oe.connect(tmp_path / "db") as db:
        assert not db.collections.exists("Docs")


def test_sparse_vectors_import_as_a_sparse_named_vector(tmp_path: Path) -> None:
    sparse = texts_ds(TEXTS).map(
        lambda row: {**row, "embedding": {"indices": [row["id"], 100 + row["id"]], "values": [0.5, 1.0]}}
    )
    summary = import_into(sparse, tmp_path / "db", "Docs", show_progress=False)
    assert summary.imported == len(TEXTS)
    assert not summary.errors
    with oe.connect(tmp_path / "db") as db:
        docs = db.collections.get("Docs")
        assert docs.config.vectors["default"].sparse
        found = docs.query.near_vector({"indices": [102], "values": [2.0]}, limit=1).objects[0]
        assert found.properties["id"] == 2
        assert found.score == pytest.approx(2.0)
