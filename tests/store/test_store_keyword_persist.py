"""BM25 parity with bm25s on Cranfield, and the saved index: round trip, changes after load, bad files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from omniembed.store.engines.keyword import KeywordIndex
from omniembed.store.engines.keyword.persist import manifest_path
from omniembed.store.schema import BM25Config

from helpers.cranfield import BOOSTS, FIELDS, cranfield


def built(docs: list[dict[str, str]], config: BM25Config | None = None) -> KeywordIndex:
    index = KeywordIndex(FIELDS, config)
    index.add_many(range(1, len(docs) + 1), docs)
    return index


def test_scores_equal_bm25s_on_cranfield() -> None:
    bm25s = pytest.importorskip("bm25s")
    docs, queries = cranfield()
    index = KeywordIndex(["body"])
    index.add_many(range(len(docs)), docs)
    analyse = index.fields["body"].analyzer
    reference = bm25s.BM25(k1=1.2, b=0.75, method="lucene", dtype="float64")
    reference.index([analyse(doc["body"]) for doc in docs], show_progress=False)
    for query in queries:
        ours = index.scores(query, {"body": 1.0})[: len(docs)]
        terms = [t for t in dict.fromkeys(analyse(query)) if t in reference.vocab_dict]
        theirs = reference.get_scores(terms) * (1.2 + 1)  # bm25s's Lucene variant leaves out (k1 + 1)
        assert np.count_nonzero(ours) > 0
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=0)


def test_a_saved_index_scores_as_the_one_in_memory(tmp_path: Path) -> None:
    docs, queries = cranfield(600)
    index = built(docs)
    index.remove(5)
    expected = [index.search(q, BOOSTS, 10) for q in queries]
    index.save(tmp_path / "docs", {"seq": 600})
    loaded = KeywordIndex.load(tmp_path / "docs", FIELDS, BM25Config())
    assert loaded is not None
    reopened, watermark = loaded
    assert watermark == {"seq": 600}
    assert reopened.count == 599
    for query, (slots, scores) in zip(queries, expected, strict=True):
        got_slots, got_scores = reopened.search(query, BOOSTS, 10)
        assert got_slots.tolist() == slots.tolist()
        np.testing.assert_array_equal(got_scores, scores)
    after_save = [index.search(q, BOOSTS, 10)[0].tolist() for q in queries]  # it now serves from the files
    assert after_save == [slots.tolist() for slots, _ in expected]


def test_changes_after_load_score_as_a_fresh_build(tmp_path: Path) -> None:
    docs, queries = cranfield(800)
    index = built(docs[:500])
    index.save(tmp_path / "docs", {"seq": 500})
    loaded = KeywordIndex.load(tmp_path / "docs", FIELDS, BM25Config())
    assert loaded is not None
    reopened = loaded[0]
    reopened.add_many(range(501, 801), docs[500:])  # catch up past the watermark
    for slot in (3, 250, 650):
        reopened.remove(slot)
    fresh = built(docs)
    for slot in (3, 250, 650):
        fresh.remove(slot)
    for query in queries:
        np.testing.assert_allclose(
            reopened.scores(query, BOOSTS)[:801], fresh.scores(query, BOOSTS)[:801], rtol=1e-12
        )
    reopened.save(tmp_path / "docs", {"seq": 800})  # a second generation replaces the first
    again = KeywordIndex.load(tmp_path / "docs", FIELDS, BM25Config())
    assert again is not None
    assert again[1] == {"seq": 800}
    np.testing.assert_allclose(
        again[0].scores(queries[0], BOOSTS)[:801], fresh.scores(queries[0], BOOSTS)[:801]
    )
    manifest = json.loads(manifest_path(tmp_path / "docs").read_text())
    named = {manifest["alive"]["file"], *(segment["file"] for segment in manifest["segments"])}
    assert {path.name for path in tmp_path.glob("docs.*")} == named | {"docs.manifest.json"}  # old ones gone


def saved(tmp_path: Path) -> Path:
    docs, _ = cranfield(200)
    built(docs).save(tmp_path / "docs", {"seq": 200})
    return tmp_path / "docs"


def postings_file(prefix: Path) -> Path:
    return prefix.parent / json.loads(manifest_path(prefix).read_text())["segments"][0]["file"]


def test_missing_truncated_or_corrupt_files_are_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert KeywordIndex.load(tmp_path / "nothing", FIELDS) is None
    assert "no saved keyword index" in caplog.text
    prefix = saved(tmp_path)
    target = postings_file(prefix)
    data = target.read_bytes()
    target.write_bytes(data[:-4])
    assert KeywordIndex.load(prefix, FIELDS) is None
    assert "bytes, the manifest says" in caplog.text
    target.write_bytes(data[:-4] + bytes(4 * [255]))
    assert KeywordIndex.load(prefix, FIELDS) is None
    assert "fails its checksum" in caplog.text
    target.unlink()
    assert KeywordIndex.load(prefix, FIELDS) is None
    manifest_path(prefix).write_text("{not json")
    assert KeywordIndex.load(prefix, FIELDS) is None


def test_another_analysis_or_property_set_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = saved(tmp_path)
    assert KeywordIndex.load(prefix, FIELDS) is not None
    assert KeywordIndex.load(prefix, FIELDS, BM25Config(stemmer=None)) is None
    assert "other properties, tokenization" in caplog.text
    assert KeywordIndex.load(prefix, FIELDS, BM25Config(), {"title": "lowercase"}) is None
    assert KeywordIndex.load(prefix, ["title"]) is None
    assert KeywordIndex.load(prefix, FIELDS, BM25Config(k1=2.0)) is not None  # k1 and b apply at query time


def test_an_empty_index_saves_and_loads(tmp_path: Path) -> None:
    KeywordIndex(FIELDS).save(tmp_path / "empty", {"seq": 0})
    loaded = KeywordIndex.load(tmp_path / "empty", FIELDS)
    assert loaded is not None
    index = loaded[0]
    assert index.count == 0
    assert len(index.search("flow", BOOSTS, 5)[0]) == 0
    index.add(1, {"title": "flow"})
    assert index.search("flow", BOOSTS, 5)[0].tolist() == [1]


def test_add_many_equals_one_at_a_time() -> None:
    docs, queries = cranfield(300)
    one_by_one = KeywordIndex(FIELDS)
    for slot, doc in enumerate(docs, start=1):
        one_by_one.add(slot, doc)
        if slot % 37 == 0:
            one_by_one.search("flow", BOOSTS, 3)  # interleaved queries flush small chunks
    bulk = built(docs)
    for query in queries:
        np.testing.assert_array_equal(one_by_one.scores(query, BOOSTS), bulk.scores(query, BOOSTS))
    with pytest.raises(ValueError, match="2 slots and 1 objects"):
        bulk.add_many([1, 2], [{}])
