"""A multilingual text model paired with a CLIP image model acts as one model with the reference's numbers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sentence_transformers import SentenceTransformer as Reference

from omniembed import EmbeddingModel, PairedEncoder, SentenceTransformer, zero_shot_classify
from omniembed.errors import UnsupportedModalityError

from helpers.numbers import assert_same


@pytest.fixture(scope="module")
def pair(multilingual_text_dir: Path, tiny_clip: Callable[..., Path]) -> PairedEncoder:
    return PairedEncoder(multilingual_text_dir, tiny_clip("legacy"), device="cpu")


def test_pair_matches_reference_text_and_image_models(
    pair: PairedEncoder,
    multilingual_text_dir: Path,
    tiny_clip: Callable[..., Path],
    sts_sentences: list[str],
    cifar: list[tuple[Path, str]],
) -> None:
    text_reference = Reference(str(multilingual_text_dir), device="cpu")
    image_reference = Reference(str(tiny_clip("legacy")), device="cpu")
    texts = sts_sentences[:300]
    images = [str(path) for path, _ in cifar]
    assert_same(pair.encode(texts), text_reference.encode(texts))
    assert_same(pair.encode(images), image_reference.encode(images))
    # No Normalize module in the text model, as in clip-ViT-B-32-multilingual-v1.
    assert np.abs(np.linalg.norm(pair.encode(texts[:10]), axis=1) - 1).max() > 1e-3


def test_pair_mixes_inputs_in_order_and_offers_the_model_interface(
    pair: PairedEncoder, sts_sentences: list[str], cifar: list[tuple[Path, str]]
) -> None:
    assert isinstance(pair, EmbeddingModel)
    assert pair.modalities == ["text", "image"]
    assert pair.supports("image")
    assert not pair.supports(("image", "text"))
    assert pair.get_sentence_embedding_dimension() == 16
    texts = sts_sentences[:5]
    images = [Image.open(path) for path, _ in cifar[:5]]
    mixed = [
        texts[0],
        images[0],
        images[1],
        texts[1],
        texts[2],
        images[2],
        images[3],
        texts[3],
        texts[4],
        images[4],
    ]
    together = pair.encode(mixed, batch_size=3)
    assert together.shape == (10, 16)
    np.testing.assert_allclose(together[[0, 3, 4, 7, 8]], pair.text_model.encode(texts), atol=1e-5)
    np.testing.assert_allclose(together[[1, 2, 5, 6, 9]], pair.image_model.encode(images), atol=1e-5)
    assert pair.encode("one text").shape == (16,)
    assert pair.encode(images[0], convert_to_tensor=True).shape == (16,)
    unit = pair.encode(mixed, normalize_embeddings=True, convert_to_tensor=True)
    assert torch.allclose(unit.norm(dim=1), torch.ones(10), atol=1e-5)
    assert pair.encode(mixed, truncate_dim=8).shape == (10, 8)
    assert pair.encode(mixed, precision="int8").dtype == np.int8
    assert pair.encode([]).shape == (0, 16)
    scores = pair.similarity(pair.encode_query(texts), pair.encode_document(images))
    assert scores.shape == (5, 5)
    with pytest.raises(UnsupportedModalityError, match="image\\+text"):
        pair.encode({"text": "a cat", "image": images[0]})


def test_prompts_reach_texts_only(multilingual_text_dir: Path, tiny_clip: Callable[..., Path]) -> None:
    text_model = SentenceTransformer(multilingual_text_dir, device="cpu", prompts={"query": "query: "})
    pair = PairedEncoder(text_model, tiny_clip("plain"), device="cpu")
    image = Image.new("RGB", (20, 20), (0, 120, 255))
    queries = pair.encode_query(["a cat", image])
    np.testing.assert_allclose(queries[0], text_model.encode("query: a cat"), atol=1e-6)
    np.testing.assert_allclose(queries[1], pair.image_model.encode(image), atol=1e-6)


def test_pairs_that_cannot_share_a_space_are_refused(
    multilingual_text_dir: Path, tiny_clip: Callable[..., Path], minilm: SentenceTransformer
) -> None:
    with pytest.raises(ValueError, match="not images"):
        PairedEncoder(multilingual_text_dir, multilingual_text_dir, device="cpu")
    with pytest.raises(ValueError, match="384-dim embeddings and the image model 16"):
        PairedEncoder(minilm, tiny_clip("plain"), device="cpu")


def test_zero_shot_scores_each_image_over_the_labels(
    pair: PairedEncoder, tiny_clip: Callable[..., Path], cifar: list[tuple[Path, str]]
) -> None:
    clip = SentenceTransformer(tiny_clip("plain"), device="cpu")
    labels = sorted({label for _, label in cifar})
    images = [path for path, _ in cifar[::50]]
    for model in (clip, pair):
        rows = zero_shot_classify(model, images, labels)
        assert len(rows) == len(images)
        assert list(rows[0]) == labels
        assert all(abs(sum(row.values()) - 1) < 1e-5 for row in rows)
        raw = zero_shot_classify(model, images, labels, scale=None)
        expected = model.similarity(model.encode(images), model.encode([f"a photo of a {x}" for x in labels]))
        np.testing.assert_allclose([list(row.values()) for row in raw], expected.numpy(), atol=1e-5)
        best = [max(row, key=row.__getitem__) for row in rows]
        assert best == [labels[i] for i in expected.argmax(dim=1).tolist()]
    single = zero_shot_classify(clip, images[0], ["cat", "dog"], template=None)
    assert set(single) == {"cat", "dog"}


@pytest.mark.parametrize(
    ("labels", "template", "message"),
    [([], None, "non-empty"), (["cat", "cat"], None, "unique"), (["cat"], "a photo", "must contain")],
)
def test_zero_shot_rejects_bad_labels(
    pair: PairedEncoder, labels: list[str], template: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        zero_shot_classify(pair, Image.new("RGB", (8, 8)), labels, template=template)


def test_zero_shot_needs_an_image_model(minilm: SentenceTransformer) -> None:
    with pytest.raises(ValueError, match="needs a model that embeds images"):
        zero_shot_classify(minilm, Image.new("RGB", (8, 8)), ["cat"])
