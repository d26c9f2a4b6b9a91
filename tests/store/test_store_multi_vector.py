"""Multi-vector (late-interaction) named vectors: a tiny ColBERT vectorizer and vectors you bring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import omniembed as oe

from helpers import models as mf

DOCUMENTS = [
    "The boundary layer thickens downstream.",
    "Shock waves form at supersonic speeds.",
    "Heat transfer in laminar flow over a plate.",
    "Buckling of thin cylindrical shells under pressure.",
]


@pytest.fixture(scope="module")
def colbert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mf.build_colbert(tmp_path_factory.mktemp("colbert"))


def maxsim(query: np.ndarray, document: np.ndarray) -> float:
    return float((query @ document.T).max(axis=1).sum())


def test_colbert_collection_ranks_by_exact_maxsim(tmp_path: Path, colbert_dir: Path) -> None:
    model = oe.MultiVectorEncoder(colbert_dir)
    with oe.connect(tmp_path / "db") as db:
        docs = db.collections.create("Doc", {"body": "text", "n": "int"}, {"tokens": oe.Vectorizer(model)})
        assert docs.config.vectors["tokens"].metric == "maxsim"
        result = docs.data.insert_many([{"body": text, "n": i} for i, text in enumerate(DOCUMENTS)])
        assert not result.errors
        query = model.encode_query("supersonic shock")
        documents = model.encode_document(DOCUMENTS)
        expected = sorted(range(4), key=lambda i: -maxsim(query, documents[i]))
        found = docs.query.near_text("supersonic shock", limit=4)
        assert [o.properties["n"] for o in found] == expected
        assert found[0].score == pytest.approx(
            maxsim(query, documents[expected[0]]), rel=1e-3
        )  # matrices are kept as float16
        stored = docs.data.get_by_id(result.uuids[1], include_vector=True)
        assert stored is not None
        np.testing.assert_allclose(
            stored.vectors["tokens"].reshape(documents[1].shape), documents[1], atol=1e-3
        )
        filtered = docs.query.near_text("supersonic shock", limit=4, filters=oe.Filter.by_property("n") >= 2)
        assert [o.properties["n"] for o in filtered] == [i for i in expected if i >= 2]
    with oe.connect(tmp_path / "db") as db:  # the saved index, memory-mapped on open
        docs = db.collections.get("Doc")
        assert [o.properties["n"] for o in docs.query.near_text("supersonic shock", limit=4)] == expected


def test_own_multi_vectors_with_errors_per_object() -> None:
    rng = np.random.default_rng(0)
    matrices = [rng.normal(size=(int(rng.integers(2, 9)), 6)).astype(np.float32) for _ in range(30)]
    with oe.connect() as db:
        docs = db.collections.create("Doc", {"n": "int"}, {"m": oe.SelfProvided(6, multi_vector=True)})
        objects = [oe.DataObject({"n": i}, vectors={"m": m}) for i, m in enumerate(matrices)]
        objects.append(oe.DataObject({"n": 99}, vectors={"m": np.ones((3, 5))}))
        result = docs.data.insert_many(objects)
        assert list(result.errors) == [30]
        assert "expects (tokens, 6)" in result.errors[30]
        query = matrices[7][:2]
        best = max(range(30), key=lambda i: maxsim(query, matrices[i]))
        assert docs.query.near_vector(query, limit=1)[0].properties["n"] == best


def test_milvus_refuses_multi_vectors(tmp_path: Path) -> None:
    with (
        oe.connect(str(tmp_path / "m.db"), backend="milvus") as db,
        pytest.raises(ValueError, match="need the embedded backend"),
    ):
        db.collections.create("Doc", {"n": "int"}, {"m": oe.SelfProvided(6, multi_vector=True)})
