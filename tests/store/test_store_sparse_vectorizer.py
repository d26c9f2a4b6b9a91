"""A SparseEncoder as a collection's vectorizer: documents and queries embedded by a tiny SPLADE model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import omniembed as oe
from omniembed import SparseEncoder
from omniembed.sparse import SparseVector
from omniembed.store.collection import Collection

from helpers import sparse as builders

TEXTS = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
    "A man is playing a guitar.",
    "Search engines retrieve relevant passages for a query.",
    "The cat sleeps on the warm windowsill.",
    "Stock markets fell sharply on Monday.",
    "She baked bread with rosemary and salt.",
]
QUERIES = ["sunny weather", "music guitar", "bread recipe", "stadium"]


@pytest.fixture(scope="module")
def splade_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return builders.build_splade(tmp_path_factory.mktemp("splade") / "model")


@pytest.fixture(scope="module")
def splade(splade_dir: Path) -> SparseEncoder:
    return SparseEncoder(splade_dir, device="cpu")


def as_dense(vector: SparseVector, width: int) -> torch.Tensor:
    dense = torch.zeros(width, dtype=torch.float64)
    dense[list(vector.indices)] = torch.tensor(vector.values, dtype=torch.float64)
    return dense


def expected_order(model: SparseEncoder, query: str, limit: int, texts: list[str] = TEXTS) -> list[int]:
    """Brute force: the dot product of the query with every text, best first (ties by position)."""
    documents = model.encode_document(texts).to_dense().double()
    scores = (documents @ model.encode_query(query).to_dense().double()).tolist()
    ranked = sorted((i for i, s in enumerate(scores) if s > 0), key=lambda i: (-scores[i], i))
    return ranked[:limit]


def fill(db: oe.Database, model: SparseEncoder) -> Collection:
    docs = db.collections.create(
        "Doc", {"n": "int", "body": "text"}, {"splade": oe.Vectorizer(model, properties=["body"])}
    )
    result = docs.data.insert_many(
        [{"n": i, "body": text} for i, text in enumerate(TEXTS)], show_progress=False
    )
    assert not result.errors
    assert result.embedded == len(TEXTS)
    return docs


def test_documents_are_stored_as_the_model_encodes_them_and_searched_exactly(
    tmp_path: Path, splade: SparseEncoder
) -> None:
    with oe.connect(tmp_path / "db") as db:
        docs = fill(db, splade)
        vector = docs.config.vectors["splade"]
        assert vector.sparse
        assert vector.metric == "dot"
        assert vector.dims == 30522
        expected = splade.encode_document(TEXTS).to_dense()
        for obj in docs.query.fetch_objects(include_vector=True):
            stored = obj.vectors["splade"]
            assert isinstance(stored, SparseVector)
            assert len(stored.indices) > 0
            row = expected[obj.properties["n"]]
            assert list(stored.indices) == torch.nonzero(row).flatten().tolist()
            np.testing.assert_allclose(stored.values, row[row != 0].numpy(), rtol=1e-6)
        for query in QUERIES:
            found = docs.query.near_text(query, target_vector="splade", limit=5)
            assert [o.properties["n"] for o in found] == expected_order(splade, query, 5)
            dense_query = splade.encode_query(query).to_dense().double()
            for obj in docs.query.near_text(query, target_vector="splade", limit=3, include_vector=True):
                score = float(as_dense(obj.vectors["splade"], 30522) @ dense_query)
                assert obj.score == pytest.approx(score, rel=1e-5)


def test_a_reopened_collection_loads_the_sparse_model_by_name(tmp_path: Path, splade_dir: Path) -> None:
    with oe.connect(tmp_path / "db") as db:
        fill(db, SparseEncoder(splade_dir, device="cpu"))
    with oe.connect(tmp_path / "db") as db:
        docs = db.collections.get("Doc")
        assert docs.config.vectors["splade"].vectorizer["model_class"] == "SparseEncoder"  # type: ignore[index]
        model = docs.vectorizers["splade"].model
        assert isinstance(model, SparseEncoder)
        found = docs.query.near_text("sunny weather", target_vector="splade", limit=3)
        assert [o.properties["n"] for o in found] == expected_order(model, "sunny weather", 3)
        texts = [*TEXTS, "sunny weather sunny weather"]
        docs.data.insert({"n": len(TEXTS), "body": texts[-1]})
        found = docs.query.near_text("sunny weather", target_vector="splade", limit=9)
        assert [o.properties["n"] for o in found] == expected_order(model, "sunny weather", 9, texts)


def test_hybrid_fuses_a_dense_model_a_sparse_model_and_bm25(
    tmp_path: Path, splade: SparseEncoder, minilm: Callable[..., object]
) -> None:
    with oe.connect(":memory:") as db:
        docs = db.collections.create(
            "Doc",
            {"n": "int", "body": "text"},
            {
                "dense": oe.Vectorizer(minilm, properties=["body"]),
                "splade": oe.Vectorizer(splade, properties=["body"]),
            },
        )
        docs.data.insert_many([{"n": i, "body": text} for i, text in enumerate(TEXTS)], show_progress=False)
        result = docs.query.hybrid(
            "sunny weather", weights={"dense": 0.5, "sparse": 0.3, "bm25": 0.2}, limit=3, explain=True
        )
        assert result.objects[0].properties["n"] in (0, 1)
        explain = result.objects[0].explain
        assert explain is not None
        assert explain["dense_rank"] is not None
        assert explain["sparse_rank"] is not None
        alone = docs.query.hybrid("sunny weather", alpha=0.7, target_vector="splade", limit=3)
        assert len(alone) == 3
        with pytest.raises(ValueError, match="choose one with target_vector"):
            docs.query.near_text("sunny weather")


def test_model_kinds_that_do_not_fit_are_refused(splade: SparseEncoder, minilm: object) -> None:
    with oe.connect(":memory:") as db:
        with pytest.raises(ValueError, match="long_inputs='chunk' is for dense models"):
            db.collections.create(
                "A", {"body": "text"}, {"s": oe.Vectorizer(splade, properties=["body"], long_inputs="chunk")}
            )
        with pytest.raises(TypeError, match=r"wrap a model as oe\.Vectorizer"):
            db.collections.create("B", {"body": "text"}, {"s": splade})  # type: ignore[dict-item]
        docs = db.collections.create(
            "C",
            {"body": "text"},
            {
                "dense": oe.Vectorizer(minilm, properties=["body"]),
                "s": oe.Vectorizer(splade, properties=["body"]),
            },
        )
        docs.data.insert({"body": "a sunny day"})
        query = splade.encode_query("sunny")
        with pytest.raises(TypeError, match="vector 'dense' is dense"):
            docs.query.near_vector(query, target_vector="dense")
        with pytest.raises(TypeError, match="vector 's' is sparse"):
            docs.query.near_vector(np.ones(384, dtype=np.float32), target_vector="s")
        assert docs.query.near_vector(query, target_vector="s").objects


def test_a_model_of_the_other_kind_is_refused_on_reopening(
    tmp_path: Path, splade: SparseEncoder, minilm: object
) -> None:
    with oe.connect(tmp_path / "db") as db:
        db.collections.create(
            "Doc",
            {"body": "text"},
            {
                "dense": oe.Vectorizer(minilm, properties=["body"]),
                "s": oe.Vectorizer(splade, properties=["body"]),
            },
        )
    with oe.connect(tmp_path / "db") as db:
        with pytest.raises(ValueError, match=r"'dense' of 'Doc' holds dense vectors.*SparseEncoder"):
            db.collections.get("Doc", vectorizers={"dense": splade})
        with pytest.raises(ValueError, match=r"'s' of 'Doc' holds sparse vectors.*give a SparseEncoder"):
            db.collections.get("Doc", vectorizers={"s": minilm})
        assert db.collections.get("Doc", vectorizers={"dense": minilm, "s": splade}).vectorizers["s"].sparse
