"""``omniembed encode --ray`` and ``omniembed import --ray`` through ``main``, on a local Ray in this
process (the commands join it as they would join a running cluster with ``--ray auto``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import omniembed as oe
from omniembed.cli import INPUT_ERROR, OK, main

from helpers.numbers import cosines
from helpers.ray_cluster import local_ray

ray = pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")

ROWS = [
    {"id": f"d{i}", "text": text} for i, text in enumerate(["a cat", "the stock market", "magnets", "rain"])
]


@pytest.fixture(scope="module", autouse=True)
def local() -> Iterator[None]:
    with local_ray(cpus=2):
        ray.data.DataContext.get_current().enable_progress_bars = False
        yield


@pytest.fixture
def model(tiny_model: Any) -> str:
    return str(tiny_model("bert"))


def write_folder(folder: Path) -> Path:
    folder.mkdir()
    for part in (0, 1):
        rows = ROWS[part * 2 : part * 2 + 2]
        (folder / f"part{part}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def test_encode_a_folder_of_json_lines_into_parquet(
    model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, out = write_folder(tmp_path / "in"), tmp_path / "out"
    assert main(["-q", "encode", model, str(source), "-o", str(out), "--ray", "auto", "--normalize"]) == OK
    assert "embedded 4 rows into" in capsys.readouterr().out
    table = pq.read_table(out).sort_by("id")
    assert table.column("id").to_pylist() == [row["id"] for row in ROWS]
    expected = oe.SentenceTransformer(model, device="cpu").encode(
        [row["text"] for row in ROWS], normalize_embeddings=True
    )
    assert cosines(np.array(table.column("embedding").to_pylist()), expected).min() >= 0.99999


def test_encode_with_ray_needs_an_output_folder(
    model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_folder(tmp_path / "in")
    assert main(["encode", model, str(source), "-o", str(tmp_path / "x.npy"), "--ray", "auto"]) == INPUT_ERROR
    assert "give -o FOLDER" in capsys.readouterr().err


def test_import_with_ray_twice_keeps_one_object_per_id(
    model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, db = write_folder(tmp_path / "in") / "part0.jsonl", str(tmp_path / "db")
    command = [
        "-q",
        "import",
        db,
        "Docs",
        str(source),
        "--model",
        model,
        "--vectorize",
        "text",
        "--ray",
        "auto",
    ]
    for _ in range(2):
        assert main(command) == OK
        assert "imported 2 objects into 'Docs'" in capsys.readouterr().out
    with oe.connect(db) as opened:
        docs = opened.collections.get("Docs")
        assert len(docs) == 2
        assert docs.query.near_text("a cat", limit=1).objects[0].properties["id"] == "d0"
