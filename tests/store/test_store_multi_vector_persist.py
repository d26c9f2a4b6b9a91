"""The multi-vector index is saved, memory-mapped on open and caught up by seq; a bad save is rebuilt."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import omniembed as oe
from omniembed.store.engines.embedded.multi_vector_index import MAX_SEGMENTS, MultiVectorIndex

DIMS = 6
ENGINE_LOG = "omniembed.store.engines.embedded"


def matrices(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(int(rng.integers(2, 7)), DIMS)).astype(np.float32) for _ in range(count)]


def create(folder: Path, count: int = 60) -> list[np.ndarray]:
    """A collection 'Doc' of ``count`` objects (n = 0..count-1) with their own multi-vectors 'm'."""
    own = matrices(count)
    with oe.connect(folder) as db:
        docs = db.collections.create("Doc", {"n": "int"}, {"m": oe.SelfProvided(DIMS, multi_vector=True)})
        result = docs.data.insert_many(
            [oe.DataObject({"n": i}, vectors={"m": m}) for i, m in enumerate(own)], show_progress=False
        )
        assert not result.errors
    return own


def answers(db: oe.Database, queries: list[np.ndarray]) -> list[list[tuple[int, float]]]:
    """For each query: unfiltered and filtered top five as (n, score)."""
    docs = db.collections.get("Doc")
    out = []
    for query in queries:
        for filters in (None, oe.Filter.by_property("n") >= 30):
            found = docs.query.near_vector(query, limit=5, filters=filters)
            out.append([(o.properties["n"], round(o.score or 0.0, 4)) for o in found])
    return out


def index_of(db: oe.Database) -> MultiVectorIndex:
    index = db.collections._backend.tables["Doc"].indexes["m"]  # type: ignore[attr-defined]
    assert isinstance(index, MultiVectorIndex)
    return index


def in_memory_bytes(index: MultiVectorIndex) -> int:
    """Bytes of the index's arrays that are not memory-mapped, beside the MUVERA draws."""
    held: list[object] = []
    for value in vars(index).values():
        held.extend(value if isinstance(value, list) else [value])
    return sum(a.nbytes for a in held if isinstance(a, np.ndarray) and not isinstance(a, np.memmap))


def expected_top(query: np.ndarray, own: dict[int, np.ndarray], limit: int = 5) -> list[int]:
    scores = {n: float((query @ m.T).max(axis=1).sum()) for n, m in own.items()}
    return sorted(scores, key=lambda n: (-scores[n], n))[:limit]


def test_a_reopened_index_is_mapped_and_answers_as_before(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "db"
    own = create(folder)
    queries = [m[:2] for m in own[:5]]
    with oe.connect(folder) as db:
        before = answers(db, queries)
    assert [row[0][0] for row in before[::2]] == [expected_top(q, dict(enumerate(own)))[0] for q in queries]
    assert (folder / "1.m.manifest.json").exists()
    caplog.set_level(logging.INFO, logger=ENGINE_LOG)
    with oe.connect(folder) as db:
        index = index_of(db)
        assert "multi-vector index" not in caplog.text  # nothing to catch up, nothing rebuilt
        assert len(index) == 60
        assert index.unsaved_rows == 0  # every encoding is memory-mapped
        assert all(isinstance(segment, np.memmap) for segment in index._segments)
        assert in_memory_bytes(index) <= 9 * 60  # a slot and a deletion mark per object, nothing more
        assert answers(db, queries) == before
        assert in_memory_bytes(index) <= 9 * 60  # searching read matrices from SQLite and kept none


def test_open_catches_up_adds_and_deletes_past_the_watermark(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder, aside = tmp_path / "db", tmp_path / "aside"
    own = dict(enumerate(create(folder)))
    aside.mkdir()
    for path in folder.glob("1.m.*"):  # the save as it stood at 60 objects
        shutil.copy(path, aside / path.name)
    extra = matrices(10, seed=1)
    with oe.connect(folder) as db:
        docs = db.collections.get("Doc")
        docs.data.insert_many(
            [oe.DataObject({"n": 60 + i}, vectors={"m": m}) for i, m in enumerate(extra)], show_progress=False
        )
        own.update({60 + i: m for i, m in enumerate(extra)})
        doomed = docs.query.fetch_objects(filters=oe.Filter.by_property("n") < 5, limit=100)
        for obj in doomed.objects:
            docs.data.delete_by_id(obj.uuid)
            del own[obj.properties["n"]]
    for path in folder.glob("1.m.*"):  # as if the process died before saving what came after
        path.unlink()
    for path in aside.iterdir():
        shutil.copy(path, folder / path.name)
    caplog.set_level(logging.INFO, logger=ENGINE_LOG)
    with oe.connect(folder) as db:
        assert "multi-vector index Doc.m: 10 added, 5 removed" in caplog.text
        assert len(index_of(db)) == 65
        docs = db.collections.get("Doc")
        for query in (extra[3][:2], own[7][:3], extra[9]):
            found = docs.query.near_vector(query, limit=5)
            assert [o.properties["n"] for o in found] == expected_top(query, own)
            assert not {o.properties["n"] for o in found} & set(range(5))
    caplog.clear()
    with oe.connect(folder) as db:  # the close saved the caught-up index
        assert "multi-vector index" not in caplog.text
        assert len(index_of(db)) == 65


def corrupt_segment(folder: Path) -> None:
    [path] = folder.glob("1.m.*.fde")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate_segment(folder: Path) -> None:
    [path] = folder.glob("1.m.*.fde")
    path.write_bytes(path.read_bytes()[:-4])


def change_seed(folder: Path) -> None:
    manifest = folder / "1.m.manifest.json"
    saved = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**saved, "seed": 7}))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (corrupt_segment, "fails its crc32 checksum"),
        (truncate_segment, "truncated"),
        (change_seed, "saved as"),
    ],
)
def test_a_damaged_or_mismatched_save_is_rebuilt_not_trusted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: object, reason: str
) -> None:
    folder = tmp_path / "db"
    own = create(folder)
    queries = [m[:2] for m in own[:4]]
    with oe.connect(folder) as db:
        before = answers(db, queries)
    damage(folder)  # type: ignore[operator]
    caplog.set_level(logging.INFO, logger=ENGINE_LOG)
    with oe.connect(folder) as db:
        assert reason in caplog.text
        assert "multi-vector index Doc.m: 60 added, 0 removed" in caplog.text
        assert answers(db, queries) == before
    caplog.clear()
    with oe.connect(folder) as db:  # and the rebuilt index was saved sound
        assert "multi-vector index" not in caplog.text
        assert answers(db, queries) == before


def test_saves_add_segments_and_merge_them_and_deleted_rows(tmp_path: Path) -> None:
    own = matrices(40)
    stored = dict(enumerate(own))
    index = MultiVectorIndex(DIMS, lambda slots: [stored[int(s)] for s in slots])
    prefix = tmp_path / "1.m"
    for step in range(MAX_SEGMENTS + 2):
        index.add(np.array([4 * step + i for i in range(4)]), own[4 * step : 4 * step + 4])
        index.save(prefix, {"seq": 4 * step + 3, "deleted": 0})
        assert len(index._segments) <= MAX_SEGMENTS
    assert len(index) == 40
    index.remove(list(range(0, 40, 3)))  # 14 of 40 gone: over a quarter
    index.save(prefix, {"seq": 39, "deleted": 14})
    assert [len(segment) for segment in index._segments] == [26]
    assert len(list(tmp_path.glob("1.m.*.fde"))) == 1  # the merged segments' files are gone
    loaded = MultiVectorIndex.load(prefix, DIMS, index.fetch)
    assert loaded is not None
    assert loaded[1] == {"seq": 39, "deleted": 14}
    alive = {n: m for n, m in stored.items() if n % 3}
    for slot in (1, 20, 38):
        slots, _ = loaded[0].search(own[slot], limit=3)
        assert slots.tolist() == expected_top(own[slot], alive, 3)
    with pytest.raises(ValueError, match="slots must increase"):
        loaded[0].add(np.array([5]), [own[5]])


def test_a_matrix_missing_from_sqlite_is_an_error_not_a_smaller_answer(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    own = create(folder, count=10)
    with oe.connect(folder) as db:
        backend = db.collections._backend  # type: ignore[attr-defined]
        backend.conn.execute("DELETE FROM vectors_1 WHERE seq = 4")
        with pytest.raises(RuntimeError, match=r"no 'm' matrix for seqs \[4\].*reopen"):
            db.collections.get("Doc").query.near_vector(own[0], limit=3)


OPEN_AND_COUNT = textwrap.dedent(
    """
    import sys, omniembed as oe
    with oe.connect(sys.argv[1]) as db:
        docs = db.collections.get("Doc")
        db.collections.create("Empty", {"n": "int"}, {"m": oe.SelfProvided(4, multi_vector=True)})
        print(len(docs), "torch" in sys.modules)
    print("torch" in sys.modules)  # closing saved nothing that needed MUVERA
    """
)


def test_opening_a_multi_vector_collection_does_not_import_torch(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    create(folder, count=10)
    run = subprocess.run(
        [sys.executable, "-c", OPEN_AND_COUNT, str(folder)], capture_output=True, text=True, check=True
    )
    assert run.stdout.split() == ["10", "False", "False"]


IMPORT_UNTIL_KILLED = textwrap.dedent(
    """
    import sys, numpy as np, omniembed as oe
    from omniembed.store.engines.embedded import engine
    engine.SAVE_AFTER = 90  # the indexes are saved every couple of batches
    db = oe.connect(sys.argv[1])
    docs = db.collections.create("Doc", {"n": "int"}, {"m": oe.SelfProvided(6, multi_vector=True)})
    rng = np.random.default_rng(0)
    for batch in range(10_000):
        objects = [oe.DataObject({"n": batch * 50 + i}, vectors={"m": rng.normal(size=(3, 6))})
                   for i in range(50)]
        docs.data.insert_many(objects, show_progress=False)
        print(batch, flush=True)  # acknowledged: insert_many returned
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [0, 3, 8])
def test_sigkill_mid_import_keeps_every_acknowledged_multi_vector(tmp_path: Path, kill_after: int) -> None:
    folder = tmp_path / "db"
    acknowledged = -1
    command = [sys.executable, "-c", IMPORT_UNTIL_KILLED, str(folder)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            acknowledged = int(line)
            if acknowledged >= kill_after:
                break
        process.send_signal(signal.SIGKILL)
        process.wait()
    with oe.connect(folder) as db:
        docs = db.collections.get("Doc")
        count = len(docs)
        assert count % 50 == 0
        assert count >= (acknowledged + 1) * 50
        assert len(index_of(db)) == count
        stored = docs.query.fetch_objects(include_vector=True, limit=count).objects
        own = {o.properties["n"]: o.vectors["m"].reshape(-1, DIMS) for o in stored}
        assert sorted(own) == list(range(count))
        for n in range(0, count, max(1, count // 7)):
            found = docs.query.near_vector(own[n], limit=count)  # every object a candidate: exact
            assert len(found.objects) == count
            assert [o.properties["n"] for o in found.objects[:5]] == expected_top(own[n], own)
