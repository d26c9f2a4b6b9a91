"""Crash safety, locking, threads and the HNSW index as derived data."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import omniembed as oe

IMPORT_UNTIL_KILLED = textwrap.dedent(
    """
    import sys, numpy as np, omniembed as oe
    from omniembed.store.engines.embedded import engine
    engine.SAVE_AFTER = int(sys.argv[2])  # indexes saved with a watermark every this many objects
    db = oe.connect(sys.argv[1])
    docs = db.collections.create("Doc", {"body": "text", "n": "int"}, {"v": oe.SelfProvided(16)},
                                 index=oe.IndexConfig(flat_threshold=200))
    rng = np.random.default_rng(0)
    for batch in range(10_000):
        objects = [oe.DataObject({"body": f"word{batch} item{i}", "n": batch * 50 + i},
                                 vectors={"v": rng.normal(size=16)}) for i in range(50)]
        result = docs.data.insert_many(objects, show_progress=False)
        print(batch, flush=True)  # acknowledged: insert_many returned
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(("kill_after", "save_after"), [(0, 10**9), (5, 10**9), (14, 10**9), (14, 120)])
def test_sigkill_mid_import_keeps_every_acknowledged_object(
    tmp_path: Path, kill_after: int, save_after: int
) -> None:
    """Killed mid-import, with indexes never saved or saved (and so caught up) every few batches."""
    folder = tmp_path / "db"
    command = [sys.executable, "-c", IMPORT_UNTIL_KILLED, str(folder), str(save_after)]
    acknowledged = -1
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            acknowledged = int(line)
            if acknowledged >= kill_after:  # 14: past the flat threshold, with an HNSW graph never saved
                break
        process.send_signal(signal.SIGKILL)
        process.wait()
    with oe.connect(folder) as db:
        docs = db.collections.get("Doc")
        count = len(docs)
        assert count % 50 == 0  # whole batches only: no half-written batch
        assert count >= (acknowledged + 1) * 50
        numbers = sorted(o.properties["n"] for o in docs.query.fetch_objects())
        assert numbers == list(range(count))
        stored = docs.query.fetch_objects(include_vector=True)
        assert all("v" in o.vectors for o in stored)
        probe = stored.objects[count // 2]
        assert docs.query.near_vector(probe.vectors["v"], limit=1).uuids == [probe.uuid]
        assert docs.query.bm25(f"word{acknowledged}").objects
        assert len(docs.query.bm25("item7", limit=10_000).objects) == count // 50


def test_a_second_process_gets_a_clear_error(tmp_path: Path) -> None:
    with oe.connect(tmp_path / "db"):
        code = f"import omniembed as oe; oe.connect({str(tmp_path / 'db')!r})"
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        assert run.returncode != 0
        assert "DatabaseLockedError" in run.stderr
        assert "open in another process" in run.stderr
    with oe.connect(tmp_path / "db"):  # released on close
        pass


def test_one_writer_and_many_readers_in_threads(tmp_path: Path) -> None:
    with oe.connect(tmp_path / "db") as db:
        docs = db.collections.create("Doc", {"body": "text"}, {"v": oe.SelfProvided(8)})
        rng = np.random.default_rng(1)
        errors: list[BaseException] = []
        done = threading.Event()

        def write() -> None:
            for batch in range(20):
                objects = [
                    oe.DataObject({"body": f"b{batch}"}, vectors={"v": rng.normal(size=8)}) for _ in range(20)
                ]
                docs.data.insert_many(objects)
            done.set()

        def read() -> None:
            try:
                while not done.is_set():
                    docs.query.hybrid("b3", vector=rng.normal(size=8), limit=5)
                    docs.query.bm25("b1", limit=3)
                    time.sleep(0)
            except BaseException as error:  # collected for the assertion below
                errors.append(error)

        threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(docs) == 400


def index_with_graph(folder: Path, count: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(count, 12)).astype(np.float32)
    with oe.connect(folder) as db:
        docs = db.collections.create(
            "Doc", {"n": "int"}, {"v": oe.SelfProvided(12)}, index=oe.IndexConfig(flat_threshold=100)
        )
        result = docs.data.insert_many(
            [oe.DataObject({"n": i}, vectors={"v": v}) for i, v in enumerate(vectors)]
        )
        uuids = [result.uuids[i] for i in range(count)]
    return uuids, vectors


def test_hnsw_graph_is_saved_caught_up_and_rebuilt_when_corrupt(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    uuids, vectors = index_with_graph(folder, 400)
    graph_file = next(folder.glob("*.graph"))
    with oe.connect(folder) as db:
        docs = db.collections.get("Doc")
        assert docs.query.near_vector(vectors[7], limit=1).uuids == [uuids[7]]
        docs.data.delete_by_id(uuids[7])
        extra = docs.data.insert({"n": 400}, vectors={"v": vectors[7]})
    graph_file.write_bytes(b"not an index")
    with oe.connect(folder) as db:
        docs = db.collections.get("Doc")
        assert docs.query.near_vector(vectors[7], limit=1).uuids == [extra]
        assert len(docs) == 400


def test_filtered_hnsw_search_still_returns_limit_results(tmp_path: Path) -> None:
    _uuids, vectors = index_with_graph(tmp_path / "db", 600)
    with oe.connect(tmp_path / "db") as db:
        docs = db.collections.get("Doc")
        rare = docs.query.near_vector(vectors[0], limit=10, filters=oe.Filter.by_property("n") < 5)
        assert sorted(o.properties["n"] for o in rare) == [0, 1, 2, 3, 4]
        wide = docs.query.near_vector(vectors[0], limit=150, filters=oe.Filter.by_property("n") >= 300)
        assert len(wide) == 150
        assert all(o.properties["n"] >= 300 for o in wide)
        distances = (vectors[300:] / np.linalg.norm(vectors[300:], axis=1, keepdims=True)) @ (
            vectors[0] / np.linalg.norm(vectors[0])
        )
        exact = set(np.argsort(-distances)[:150] + 300)
        found = {o.properties["n"] for o in wide}
        assert len(found & exact) >= 0.95 * 150
