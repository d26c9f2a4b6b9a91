"""CLIP models in every folder form the reference library reads give its numbers, for texts and images."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sentence_transformers import SentenceTransformer as Reference

from omniembed import SentenceTransformer
from omniembed.errors import ModelFormatError
from omniembed.modules import load_modules
from omniembed.modules.module import LoadOptions, read_json, write_json

from helpers.numbers import assert_same


@pytest.fixture(scope="module")
def images(cifar: list[tuple[Path, str]]) -> list[Image.Image]:
    loaded = []
    for path, _ in cifar:
        with Image.open(path) as image:
            loaded.append(image.convert("RGB"))
    return loaded


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["plain", "legacy", "v6"])
def test_clip_matches_reference_on_sts_and_cifar(
    tiny_clip: Callable[..., Path], sts_sentences: list[str], images: list[Image.Image], layout: str
) -> None:
    folder = tiny_clip(layout)
    ours = SentenceTransformer(folder, device="cpu")
    theirs = Reference(str(folder), device="cpu")
    assert ours.modalities == [*theirs.modalities, "video"]
    assert theirs.modalities == ["text", "image"]
    assert ours.supports("image")
    assert not ours.supports(("image", "text"))
    assert ours.get_sentence_embedding_dimension() == 16
    assert ours.max_seq_length == 77
    texts = sts_sentences[:300]
    assert_same(ours.encode(texts), theirs.encode(texts))
    assert_same(ours.encode(images), theirs.encode(images))


@pytest.mark.slow
def test_clip_matches_reference_on_every_sts_sentence(
    tiny_clip: Callable[..., Path], sts_sentences: list[str]
) -> None:
    folder = tiny_clip("plain")
    ours = SentenceTransformer(folder, device="cpu")
    theirs = Reference(str(folder), device="cpu")
    assert_same(ours.encode(sts_sentences, batch_size=64), theirs.encode(sts_sentences, batch_size=64))


def test_image_paths_and_rgba_inputs_match_reference(
    tiny_clip: Callable[..., Path], cifar: list[tuple[Path, str]]
) -> None:
    folder = tiny_clip("legacy")
    ours = SentenceTransformer(folder, device="cpu")
    theirs = Reference(str(folder), device="cpu")
    paths = [str(path) for path, _ in cifar[::25]]
    assert_same(ours.encode(paths), theirs.encode(paths))
    rgba = np.random.default_rng(0).integers(0, 255, (20, 28, 4), dtype=np.uint8)
    rgba[::2, :, 3] = 0
    image = Image.fromarray(rgba, mode="RGBA")
    assert_same(ours.encode([image]), theirs.encode([image]))


def test_saved_clip_loads_in_both_libraries(
    tiny_clip: Callable[..., Path], tmp_path: Path, images: list[Image.Image], sts_sentences: list[str]
) -> None:
    original = SentenceTransformer(tiny_clip("legacy"), device="cpu")
    original.save(tmp_path / "saved")
    entries = read_json(tmp_path / "saved" / "sentence_bert_config.json")
    assert set(entries["modality_config"]) == {"text", "image"}
    reloaded = SentenceTransformer(tmp_path / "saved", device="cpu")
    theirs = Reference(str(tmp_path / "saved"), device="cpu")
    batch = [*sts_sentences[:20], *images[:20]]
    expected = original.encode(batch)
    assert_same(reloaded.encode(batch), expected)
    assert_same(np.concatenate([theirs.encode(sts_sentences[:20]), theirs.encode(images[:20])]), expected)


def test_clip_prompts_apply_to_text_only(tiny_clip: Callable[..., Path], images: list[Image.Image]) -> None:
    folder = tiny_clip("plain")
    ours = SentenceTransformer(folder, device="cpu", prompts={"query": "a photo of "})
    theirs = Reference(str(folder), device="cpu", prompts={"query": "a photo of "})
    assert_same(ours.encode_query(["a cat", "a dog"]), theirs.encode_query(["a cat", "a dog"]))
    assert_same(ours.encode_query(images[:5]), theirs.encode(images[:5]))
    with pytest.raises(ValueError, match="only available for text inputs"):
        ours.encode(images[:2], output_value="token_embeddings")


def test_unsupported_multimodal_folders_are_clear_errors(
    tiny_clip: Callable[..., Path], tmp_path: Path
) -> None:
    folder = tmp_path / "odd"
    shutil.copytree(tiny_clip("v6"), folder)
    config = read_json(folder / "sentence_bert_config.json")
    config["modality_config"]["image"]["method"] = "os.system"
    write_json(folder / "sentence_bert_config.json", config)
    with pytest.raises(ModelFormatError, match=r"modality config .* is not supported"):
        load_modules(folder, LoadOptions())
    config["modality_config"]["image"]["method"] = "get_image_features"
    write_json(folder / "sentence_bert_config.json", config)
    (folder / "processor_config.json").unlink()
    with pytest.raises(ModelFormatError, match="no image processor config"):
        load_modules(folder, LoadOptions())


@pytest.mark.parametrize("with_modules", [False, True])
def test_vision_language_folders_are_refused_clearly(
    tiny_model: Callable[..., Path], tmp_path: Path, with_modules: bool
) -> None:
    folder = tmp_path / "vl"
    shutil.copytree(tiny_model("qwen3", plain=not with_modules), folder)
    config = read_json(folder / "config.json")
    config["model_type"] = "qwen2_vl"
    write_json(folder / "config.json", config)
    with pytest.raises(ModelFormatError, match=r"'qwen2_vl' vision-language model; of these only qwen3_vl"):
        SentenceTransformer(folder, device="cpu")
