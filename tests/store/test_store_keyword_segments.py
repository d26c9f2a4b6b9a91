"""The saved keyword index in segments: incremental saves, tiered merges, crashes, bad files."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from omniembed.store.engines.keyword import KeywordIndex
from omniembed.store.engines.keyword.persist import manifest_path
from omniembed.store.engines.keyword.tiers import plan

from helpers.cranfield import BOOSTS, FIELDS, cranfield


def manifest(prefix: Path) -> dict:
    return json.loads(manifest_path(prefix).read_text())


def segment_files(prefix: Path) -> list[str]:
    return [segment["file"] for segment in manifest(prefix)["segments"]]


def fresh(docs: list[dict[str, str]], upto: int, removed: tuple[int, ...]) -> KeywordIndex:
    index = KeywordIndex(FIELDS)
    index.add_many(range(1, upto + 1), docs[:upto])
    for slot in removed:
        index.remove(slot)
    return index


def assert_same(index: KeywordIndex, expected: KeywordIndex, queries: list[str], end: int) -> None:
    assert index.count == expected.count
    for query in queries:
        np.testing.assert_allclose(
            index.scores(query, BOOSTS)[:end], expected.scores(query, BOOSTS)[:end], rtol=1e-12
        )
        got, want = index.search(query, BOOSTS, 10), expected.search(query, BOOSTS, 10)
        assert got[0].tolist() == want[0].tolist()
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12)


def test_a_second_save_writes_only_a_new_segment_and_reloads_as_a_fresh_build(tmp_path: Path) -> None:
    docs, queries = cranfield(900)
    prefix = tmp_path / "docs"
    index = fresh(docs, 500, ())
    index.save(prefix, {"seq": 500})
    first = segment_files(prefix)
    first_bytes = (tmp_path / first[0]).read_bytes()
    index.add_many(range(501, 901), docs[500:900])
    for slot in (7, 420, 640):  # in the saved segment and in the new objects
        index.remove(slot)
    index.save(prefix, {"seq": 900})
    second = segment_files(prefix)
    assert second[0] == first[0]  # the first file is kept as it was
    assert len(second) == 2
    assert (tmp_path / first[0]).read_bytes() == first_bytes
    assert manifest(prefix)["watermark"] == {"seq": 900}
    loaded = KeywordIndex.load(prefix, FIELDS)
    assert loaded is not None
    assert_same(loaded[0], fresh(docs, 900, (7, 420, 640)), queries, 901)
    assert_same(index, fresh(docs, 900, (7, 420, 640)), queries, 901)  # the saver serves from the files too


def test_segments_merge_by_size_tiers_dropping_deleted_postings(tmp_path: Path) -> None:
    docs, queries = cranfield(1400)
    prefix, index, removed = tmp_path / "docs", KeywordIndex(FIELDS), []
    for start in range(0, 1400, 100):  # 14 saves of 100 objects each
        index.add_many(range(start + 1, start + 101), docs[start : start + 100])
        index.remove(start + 50)
        removed.append(start + 50)
        index.save(prefix, {"seq": start + 100})
        assert len(segment_files(prefix)) <= 6  # four of one tier merge into one
    sizes = [segment["docs"] for segment in manifest(prefix)["segments"]]
    assert sum(sizes) == 1400
    assert max(sizes) >= 400  # the first four saves' segments, at least, were merged
    loaded = KeywordIndex.load(prefix, FIELDS)
    assert loaded is not None
    reopened = loaded[0]
    assert_same(reopened, fresh(docs, 1400, tuple(removed)), queries, 1401)
    merged = reopened.segments[0].postings["body"]
    assert not np.isin(np.asarray(merged.slots), removed[:8]).any()  # merged away with their segments


def test_a_crash_before_the_manifest_leaves_the_old_index_and_orphans_are_ignored(tmp_path: Path) -> None:
    docs, queries = cranfield(800)
    prefix, before = tmp_path / "docs", tmp_path / "before"
    index = fresh(docs, 400, ())
    index.save(prefix, {"seq": 400})
    shutil.copytree(tmp_path, before, ignore=shutil.ignore_patterns("before"))
    index.add_many(range(401, 801), docs[400:800])
    index.save(prefix, {"seq": 800})
    for path in before.iterdir():  # as if the second save died after its segment, before its manifest
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "docs.0123456789ab.seg.tmp").write_bytes(b"half a segment")
    orphans = set(segment_files(prefix)) ^ {p.name for p in tmp_path.glob("docs.*.seg")}
    assert orphans  # the second save's segment, named by no manifest
    loaded = KeywordIndex.load(prefix, FIELDS)
    assert loaded is not None
    reopened, watermark = loaded
    assert watermark == {"seq": 400}
    assert_same(reopened, fresh(docs, 400, ()), queries, 401)
    reopened.add_many(range(401, 801), docs[400:800])  # the caller catches up past the watermark
    reopened.save(prefix, {"seq": 800})
    left = {p.name for p in tmp_path.glob("docs.*")}
    assert not left & orphans  # the next save cleans up
    assert "docs.0123456789ab.seg.tmp" not in left
    again = KeywordIndex.load(prefix, FIELDS)
    assert again is not None
    assert_same(again[0], fresh(docs, 800, ()), queries, 801)


@pytest.mark.parametrize("where", [0.1, 0.5, 0.99])
def test_a_corrupt_segment_is_refused(tmp_path: Path, where: float, caplog: pytest.LogCaptureFixture) -> None:
    docs, _ = cranfield(600)
    prefix = tmp_path / "docs"
    index = fresh(docs, 300, ())
    index.save(prefix, {"seq": 300})
    index.add_many(range(301, 601), docs[300:600])
    index.save(prefix, {"seq": 600})
    target = tmp_path / segment_files(prefix)[-1]
    data = bytearray(target.read_bytes())
    data[int(len(data) * where)] ^= 0x5A
    target.write_bytes(bytes(data))
    assert KeywordIndex.load(prefix, FIELDS) is None
    assert "fails its checksum" in caplog.text


def test_a_stale_alive_bitmap_or_a_missing_segment_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    docs, _ = cranfield(300)
    prefix = tmp_path / "docs"
    index = fresh(docs, 300, ())
    index.save(prefix, {"seq": 300})
    old_alive = manifest(prefix)["alive"]["file"]
    kept = (tmp_path / old_alive).read_bytes()
    index.remove(5)
    index.save(prefix, {"seq": 300})
    (tmp_path / manifest(prefix)["alive"]["file"]).write_bytes(kept)  # the bitmap from before the removal
    assert KeywordIndex.load(prefix, FIELDS) is None
    assert "fails its checksum" in caplog.text
    (tmp_path / segment_files(prefix)[0]).unlink()
    assert KeywordIndex.load(prefix, FIELDS) is None


def test_saving_elsewhere_writes_every_segment(tmp_path: Path) -> None:
    docs, queries = cranfield(500)
    index = fresh(docs, 500, (9,))
    index.save(tmp_path / "a" / "docs", {"seq": 500})
    index.save(tmp_path / "b" / "docs", {"seq": 500})
    loaded = KeywordIndex.load(tmp_path / "b" / "docs", FIELDS)
    assert loaded is not None
    assert_same(loaded[0], fresh(docs, 500, (9,)), queries, 501)


def test_the_merge_plan_keeps_few_parts() -> None:
    sizes: list[int] = []
    copied = 0
    for _ in range(1000):
        sizes.append(10)
        while run := plan(sizes):
            start, end = run
            copied += sum(sizes[start:end])
            sizes[start:end] = [sum(sizes[start:end])]
        assert len(sizes) <= 3 * 6  # at most three parts of each tier from 10 to 10,000
    assert sum(sizes) == 10_000
    assert copied <= 10_000 * 6  # about log4(1000) copies of each item
    assert plan([1000, 3, 3, 3]) is None  # small parts do not drag a large one along
    assert plan([5, 100, 5, 100, 5, 100, 5, 100]) == (0, 8)  # nor do alternating sizes pile up


def test_filters_ties_and_limits_match_the_dense_scores(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    docs, queries = cranfield(700)
    index = fresh(docs, 700, (3, 30))
    allowed = np.arange(0, 701, 3)
    for query in queries[:10]:
        dense = index.scores(query, BOOSTS)
        for limit, filtered in ((1, None), (10, None), (5, allowed), (10_000, None)):
            slots, scores = index.search(query, BOOSTS, limit, filtered)
            pool = np.flatnonzero(dense > 0)
            if filtered is not None:
                pool = np.intersect1d(pool, filtered)
            expected = pool[np.lexsort((pool, -dense[pool]))][:limit]
            assert slots.tolist() == expected.tolist()
            np.testing.assert_array_equal(scores, dense[expected])
