"""Image properties vectorized by a tiny random CLIP: near_image, near_text, text + image objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import omniembed as oe


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


@pytest.fixture
def pictures(tiny_clip, cifar):  # type: ignore[no-untyped-def]
    from PIL import Image

    model = oe.SentenceTransformer(tiny_clip("plain"))
    db = oe.connect()
    collection = db.collections.create(
        "Picture", {"label": "text", "picture": "image"}, {"clip": oe.Vectorizer(model, ["label", "picture"])}
    )
    objects = [{"picture": path} for path, _ in cifar[:12]]
    objects.append({"label": cifar[12][1], "picture": Image.open(cifar[12][0])})
    result = collection.data.insert_many(objects)
    assert not result.errors
    yield model, collection, result.uuids
    db.close()


def test_image_objects_get_the_models_image_vector(pictures, cifar) -> None:  # type: ignore[no-untyped-def]
    model, collection, uuids = pictures
    stored = collection.data.get_by_id(uuids[3], include_vector=True)
    np.testing.assert_allclose(stored.vectors["clip"], unit(model.encode(cifar[3][0])), atol=1e-5)


def test_text_and_image_objects_get_the_mean_of_both_sides(pictures, cifar) -> None:  # type: ignore[no-untyped-def]
    model, collection, uuids = pictures
    stored = collection.data.get_by_id(uuids[12], include_vector=True)
    text, image = model.encode([cifar[12][1], Path(cifar[12][0])])
    np.testing.assert_allclose(stored.vectors["clip"], unit(unit(text) + unit(image)), atol=1e-5)


def test_near_image_finds_the_same_picture(pictures, cifar) -> None:  # type: ignore[no-untyped-def]
    _, collection, uuids = pictures
    result = collection.query.near_image(Path(cifar[5][0]), limit=3)
    assert result[0].uuid == uuids[5]
    assert result[0].distance == pytest.approx(0.0, abs=1e-5)


def test_near_text_uses_the_text_tower(pictures, cifar) -> None:  # type: ignore[no-untyped-def]
    model, collection, _ = pictures
    result = collection.query.near_text("a photo of a cat", limit=13)
    query = unit(model.encode_query("a photo of a cat"))
    stored = collection.query.fetch_objects(include_vector=True)
    expected = sorted(stored, key=lambda obj: -float(obj.vectors["clip"] @ query))
    assert result.uuids == [obj.uuid for obj in expected]
