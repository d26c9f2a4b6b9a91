"""Collections that vectorize with the real all-MiniLM-L6-v2: import, search, update, reopen."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import omniembed as oe
from omniembed.errors import CollectionExistsError, CollectionNotFoundError, ObjectNotFoundError

ARTICLES = [
    {"title": "Cats", "body": "Cats purr and sleep most of the day.", "year": 2001},
    {"title": "Rockets", "body": "Rockets burn fuel to reach orbit around the earth.", "year": 1999},
    {"title": "Dogs", "body": "Dogs bark at the mailman and love long walks.", "year": 2010},
    {"title": "Bread", "body": "Bread rises when yeast ferments the dough.", "year": 2015},
]
PROPERTIES = {"title": "text", "body": "text", "year": "int"}


class CountingModel:
    """The real model, counting how many texts reach it (no name, so no embedding cache)."""

    def __init__(self, model: Any) -> None:
        self.model, self.embedded = model, 0
        self.tokenizer, self.max_seq_length = model.tokenizer, model.max_seq_length

    def encode_document(self, texts: list[str], **kwargs: Any) -> Any:
        self.embedded += len(texts)
        return self.model.encode_document(texts, **kwargs)

    def encode_query(self, text: str, **kwargs: Any) -> Any:
        return self.model.encode_query(text, **kwargs)

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())


@pytest.fixture
def articles(minilm):  # type: ignore[no-untyped-def]
    db = oe.connect()
    collection = db.collections.create(
        "Article", PROPERTIES, {"text": oe.Vectorizer(minilm, ["title", "body"])}
    )
    result = collection.data.insert_many(ARTICLES)
    assert sorted(result.uuids) == [0, 1, 2, 3]
    yield collection
    db.close()


def test_objects_are_embedded_from_their_properties_in_order(articles, minilm) -> None:  # type: ignore[no-untyped-def]
    stored = articles.query.fetch_objects(include_vector=True)
    expected = minilm.encode_document([f"{a['title']}\n{a['body']}" for a in ARTICLES])
    got = np.stack([obj.vectors["text"] for obj in stored])
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_near_text_ranks_by_cosine_of_the_query_embedding(articles, minilm) -> None:  # type: ignore[no-untyped-def]
    result = articles.query.near_text("a pet that meows", limit=4)
    query = minilm.encode_query("a pet that meows")
    documents = minilm.encode_document([f"{a['title']}\n{a['body']}" for a in ARTICLES])
    cosine = documents @ query
    assert [obj.properties["title"] for obj in result] == [ARTICLES[i]["title"] for i in np.argsort(-cosine)]
    assert result[0].score == pytest.approx(float(cosine.max()), abs=1e-5)
    assert result[0].distance == pytest.approx(1 - float(cosine.max()), abs=1e-5)


def test_bm25_hybrid_and_near_object(articles) -> None:  # type: ignore[no-untyped-def]
    assert [o.properties["title"] for o in articles.query.bm25("fuel orbit")] == ["Rockets"]
    assert [o.properties["title"] for o in articles.query.bm25("dogs", query_properties=["title^2"])] == [
        "Dogs"
    ]
    hybrid = articles.query.hybrid("dogs walking", alpha=0.5, limit=2, explain=True)
    assert hybrid[0].properties["title"] == "Dogs"
    assert hybrid[0].explain is not None
    assert hybrid[0].explain["bm25_rank"] == 1
    vector_only = articles.query.hybrid("a pet that meows", alpha=1.0, limit=4)
    assert vector_only.uuids == articles.query.near_text("a pet that meows", limit=4).uuids
    ranked = articles.query.hybrid("dogs", alpha=0.5, fusion="ranked", limit=1)
    assert ranked[0].properties["title"] == "Dogs"
    first = articles.query.fetch_objects(limit=1)[0]
    assert articles.query.near_object(first.uuid, limit=1).uuids == [first.uuid]


def test_filtered_near_text(articles) -> None:  # type: ignore[no-untyped-def]
    result = articles.query.near_text("animals", limit=3, filters=oe.Filter.by_property("year") >= 2005)
    assert sorted(o.properties["title"] for o in result) == ["Bread", "Dogs"]


def test_batch_errors_name_each_object_and_keep_the_good_ones(minilm) -> None:  # type: ignore[no-untyped-def]
    with oe.connect() as db:
        collection = db.collections.create(
            "A", PROPERTIES, {"text": oe.Vectorizer(minilm), "own": oe.SelfProvided(3)}
        )
        good = oe.DataObject({"title": "ok"}, uuid="12345678-1234-5678-1234-567812345678")
        result = collection.data.insert_many(
            [
                {"title": 7},
                {"colour": "red"},
                good,
                oe.DataObject({"title": "again"}, uuid=good.uuid),
                oe.DataObject({"title": "vec"}, vectors={"own": [1.0, 2.0]}),
                oe.DataObject({"title": "nan"}, vectors={"own": [1.0, float("nan"), 0.0]}),
                oe.DataObject({"title": "fine"}, vectors={"own": [1.0, 2.0, 3.0]}),
                oe.DataObject({"title": "bad id"}, uuid="not-a-uuid"),
            ]
        )
        assert sorted(result.uuids) == [2, 6]
        assert "'title' is text, got int" in result.errors[0]
        assert "unknown properties ['colour']" in result.errors[1]
        assert "exists" in result.errors[3]
        assert "2 dims, the collection expects 3" in result.errors[4]
        assert "NaN" in result.errors[5]
        assert "not a valid UUID" in result.errors[7]
        assert len(collection) == 2
        with pytest.raises(ValueError, match="choose one with target_vector"):
            collection.query.near_text("ok")
        with pytest.raises(ValueError, match="has no vectorizer"):
            collection.query.near_text("ok", target_vector="own")


def test_update_re_embeds_only_when_a_vectorized_property_changes(minilm) -> None:  # type: ignore[no-untyped-def]
    model = CountingModel(minilm)
    with oe.connect() as db:
        collection = db.collections.create("A", PROPERTIES, {"text": oe.Vectorizer(model, ["title", "body"])})
        uuid = collection.data.insert(ARTICLES[0])
        assert model.embedded == 1
        collection.data.update(uuid, {"year": 2024})
        assert model.embedded == 1
        assert collection.data.get_by_id(uuid).properties["year"] == 2024  # type: ignore[union-attr]
        collection.data.update(uuid, {"body": "Cats chase mice at night."})
        assert model.embedded == 2
        stored = collection.data.get_by_id(uuid, include_vector=True)
        assert stored is not None
        expected = minilm.encode_document("Cats\nCats chase mice at night.")
        np.testing.assert_allclose(stored.vectors["text"], expected, atol=1e-6)
        assert collection.query.bm25("mice").uuids == [uuid]
        assert collection.query.bm25("purr").uuids == []
        with pytest.raises(ObjectNotFoundError, match="no object"):
            collection.data.update("00000000-0000-0000-0000-000000000000", {"year": 1})


def test_embedding_cache_skips_content_seen_before(minilm_dir: Path) -> None:
    with oe.connect() as db:
        vectorizer = oe.Vectorizer(str(minilm_dir), ["title", "body"])
        first = db.collections.create("A", PROPERTIES, {"text": vectorizer}).data.insert_many(ARTICLES)
        again = db.collections.create("B", PROPERTIES, {"text": vectorizer}).data.insert_many(ARTICLES[:2])
        assert (first.embedded, again.embedded) == (4, 0)


def test_delete_and_collection_management(articles) -> None:  # type: ignore[no-untyped-def]
    uuids = articles.query.fetch_objects().uuids
    assert articles.data.delete_by_id(uuids[0]) is True
    assert articles.data.delete_by_id(uuids[0]) is False
    assert articles.data.delete_many(oe.Filter.by_property("year") > 2005) == 2
    assert len(articles) == 1
    assert articles.query.near_text("bread", limit=5).uuids == [uuids[1]]


def test_collections_api() -> None:
    with oe.connect() as db:
        db.collections.create("B", {"x": "int"})
        db.collections.create("A", {"x": "int"})
        assert db.collections.list() == ["A", "B"]
        with pytest.raises(CollectionExistsError):
            db.collections.create("A", {"x": "int"})
        db.collections.delete("A")
        assert not db.collections.exists("A")
        with pytest.raises(CollectionNotFoundError, match="no collection named 'A'"):
            db.collections.get("A")
        with pytest.raises(ValueError, match="has type 'integer'"):
            db.collections.create("C", {"x": "integer"})
        with pytest.raises(ValueError, match="not valid"):
            db.collections.create("bad name", {})


def test_a_handle_to_a_deleted_collection_says_so() -> None:
    with oe.connect() as db:
        notes = db.collections.create("Notes", {"body": "text"}, {"v": oe.SelfProvided()})
        notes.data.insert({"body": "sizes fill in"}, vectors={"v": [1.0, 0.0]})  # the config changes
        assert len(notes) == 1
        db.collections.delete("Notes")
        with pytest.raises(CollectionNotFoundError, match=r"'Notes' was deleted.*db.collections.get"):
            notes.data.insert({"body": "x"})
        db.collections.create("Notes", {"title": "text"}, {"v": oe.SelfProvided()})
        with pytest.raises(CollectionNotFoundError, match="'Notes' was deleted"):
            notes.query.fetch_objects()
        db.collections.delete("Notes")
        db.collections.create("Notes", {"body": "text"}, {"v": oe.SelfProvided()})  # the same again
        assert notes.data.insert({"body": "back"}, vectors={"v": [0.0, 1.0]})


def test_offset_dims_and_boosts_have_bounds() -> None:
    with oe.connect() as db:
        with pytest.raises(ValueError, match="1 to 65536 dimensions, got dims=100000000"):
            db.collections.create("Huge", {}, {"v": oe.SelfProvided(100_000_000)})
        notes = db.collections.create("Notes", {"body": "text"}, {"v": oe.SelfProvided()})
        result = notes.data.insert_many([oe.DataObject({"body": "long"}, vectors={"v": np.ones(70_000)})])
        assert "65536" in result.errors[0]
        notes.data.insert({"body": "cats purr"}, vectors={"v": [1.0, 0.0]})
        assert len(notes.query.fetch_objects(offset=10**9)) == 0
        with pytest.raises(ValueError, match="offset must be an integer from 0 to 1000000000"):
            notes.query.fetch_objects(offset=2**63)
        for boost in ("NaN", "-5", "0", "1e309", "x"):
            with pytest.raises(
                ValueError, match=f"boost in 'body\\^{boost}' must be a finite number above 0"
            ):
                notes.query.bm25("cats", query_properties=[f"body^{boost}"])
        assert len(notes.query.bm25("cats", query_properties=["body^0.5"])) == 1


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"model_kwargs": {"use_safetensors": False}}, "model_kwargs.model_kwargs.use_safetensors=False"),
        ({"trust_remote_code": True}, "model_kwargs.trust_remote_code=True"),
        ({"a": [{"b": {"use_kernels": True}}]}, "model_kwargs.a.0.b.use_kernels=True"),
        (
            {"model_kwargs": {"attn_implementation": "org/kernel"}},
            "model_kwargs.model_kwargs.attn_implementation='org/kernel'",
        ),
    ],
)
def test_stored_options_that_run_code_are_not_applied(
    tmp_path: Path, minilm: Any, options: dict[str, Any], named: str
) -> None:
    stored = oe.Vectorizer(str(tmp_path / "model"), model_kwargs=options).to_json()
    with pytest.raises(ValueError, match=rf"loads its model with {re.escape(named)}.*vectorizers="):
        oe.Vectorizer.from_json(stored).embed_query("the model would load here")
    assert oe.Vectorizer.from_json(stored, minilm).model is minilm  # a model you pass is yours to trust
    safe = oe.Vectorizer(str(tmp_path / "model"), model_kwargs={"trust_remote_code": False}).to_json()
    assert oe.Vectorizer.from_json(safe).model_kwargs == {"trust_remote_code": False}


def test_reopening_restores_the_vectorizer(tmp_path: Path, minilm_dir: Path) -> None:
    with oe.connect(tmp_path / "db") as db:
        vectorizer = oe.Vectorizer(str(minilm_dir), ["title", "body"], include_property_names=True)
        collection = db.collections.create("Article", PROPERTIES, {"text": vectorizer})
        collection.data.insert_many(ARTICLES)
        before = collection.query.near_text("space travel", limit=4)
    with oe.connect(tmp_path / "db") as db:
        collection = db.collections.get("Article")
        assert collection.vectorizers["text"].include_property_names is True
        after = collection.query.near_text("space travel", limit=4)
        assert after.uuids == before.uuids
        assert [o.score for o in after] == pytest.approx([o.score for o in before], abs=1e-6)


def test_long_inputs_truncate_with_a_count_or_chunk_and_pool(minilm) -> None:  # type: ignore[no-untyped-def]
    long_text = " ".join(["The boundary layer thickens downstream of the leading edge."] * 60)
    with oe.connect() as db:
        cut = db.collections.create("Cut", {"body": "text"}, {"v": oe.Vectorizer(minilm)})
        assert cut.data.insert_many([{"body": long_text}, {"body": "short"}]).truncated == 1
        pooled = db.collections.create(
            "Pooled", {"body": "text"}, {"v": oe.Vectorizer(minilm, long_inputs="chunk")}
        )
        result = pooled.data.insert_many([{"body": long_text}])
        assert result.truncated == 0
        vector = pooled.query.fetch_objects(include_vector=True)[0].vectors["v"]
        from omniembed.store.chunking import chunk_text

        pieces = chunk_text(minilm, long_text)
        assert len(pieces) > 1
        mean = minilm.encode_document(pieces).mean(axis=0)
        np.testing.assert_allclose(vector, mean / np.linalg.norm(mean), atol=1e-6)


def test_update_keeps_vectors_you_brought() -> None:
    with oe.connect() as db:
        collection = db.collections.create("A", {"title": "text"}, {"own": oe.SelfProvided(3)})
        uuid = collection.data.insert({"title": "x"}, vectors={"own": [0.0, 3.0, 4.0]})
        collection.data.update(uuid, {"title": "y"})
        stored = collection.data.get_by_id(uuid, include_vector=True)
        assert stored is not None
        np.testing.assert_allclose(stored.vectors["own"], [0.0, 0.6, 0.8], atol=1e-7)
        collection.data.replace(uuid, {"title": "z"}, vectors={"own": [1.0, 0.0, 0.0]})
        assert collection.query.near_vector([1.0, 0.0, 0.0], limit=1)[0].score == pytest.approx(1.0)
