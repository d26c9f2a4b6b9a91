"""A named vector vectorized by a tiny ColPali over an image property: near_text ranks by exact MaxSim."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import omniembed as oe

from helpers import images as imf

QUERY = "a photo of an airplane in the sky"


@pytest.fixture(scope="module")
def colpali_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return imf.build_colpali(tmp_path_factory.mktemp("colpali"))


def maxsim(query: np.ndarray, document: np.ndarray) -> float:
    return float((query.astype(np.float64) @ document.astype(np.float64).T).max(axis=1).sum())


def test_image_collection_ranks_by_exact_maxsim(tmp_path: Path, colpali_dir: Path) -> None:
    model = oe.MultiVectorEncoder(colpali_dir, device="cpu")
    pages = [path for path, _ in imf.cifar_images()[::50]]  # one image per class
    with oe.connect(tmp_path / "db") as db:
        docs = db.collections.create(
            "Page", {"picture": "image", "n": "int"}, {"patches": oe.Vectorizer(model, ["picture"])}
        )
        assert docs.config.vectors["patches"].metric == "maxsim"
        result = docs.data.insert_many([{"picture": path, "n": i} for i, path in enumerate(pages)])
        assert not result.errors
        query = model.encode_query(QUERY)
        documents = model.encode_document(pages)
        scores = [maxsim(query, document) for document in documents]
        expected = sorted(range(len(pages)), key=lambda i: -scores[i])
        found = docs.query.near_text(QUERY, limit=len(pages))
        assert [o.properties["n"] for o in found] == expected
        assert found[0].score == pytest.approx(scores[expected[0]], rel=1e-3)  # matrices are kept as float16
        stored = docs.data.get_by_id(result.uuids[2], include_vector=True)
        assert stored is not None
        np.testing.assert_allclose(
            stored.vectors["patches"].reshape(documents[2].shape), documents[2], atol=1e-3
        )
    with oe.connect(tmp_path / "db") as db:  # the model is loaded again by its folder name
        docs = db.collections.get("Page")
        assert [o.properties["n"] for o in docs.query.near_text(QUERY, limit=3)] == expected[:3]
