"""Qwen3-VL-style embedders: chat-template inputs, instruction as system message, right padding,
last-token pooling, normalisation and MRL truncation, checked against the decoder run by hand.

The reference library cannot run these in the main environment: transformers builds a Qwen3-VL
processor only with torchvision (its video processor needs it). So here the numbers are checked
against the same computation written out step by step with transformers (and Pillow's image
processor); test_vision_language_reference.py compares with the reference where torchvision exists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from PIL import Image

from omniembed import SentenceTransformer
from omniembed.errors import MissingExtraError, UnsupportedModalityError
from omniembed.modules.multimodal.vl_video import torchvision_importable

from helpers.images import VL_PROMPTS

IMAGE_TOKENS = 4  # a 32x32 image: 4x4 patches of 8 pixels, merged 2x2
# The image processor the model loads: torchvision's where it imports, else Pillow's.
IMAGE_BACKEND = "torchvision" if torchvision_importable() else "pil"


@pytest.fixture(scope="module")
def model(tiny_qwen3_vl: Path) -> SentenceTransformer:
    return SentenceTransformer(tiny_qwen3_vl, device="cpu")


@pytest.fixture(scope="module")
def cat(cifar: list[tuple[Path, str]]) -> Image.Image:
    with Image.open(next(path for path, label in cifar if label == "cat")) as image:
        return image.convert("RGB")


def by_hand(folder: Path, system: str, user_text: str, image: Image.Image | None) -> np.ndarray:
    """Render, tokenize, run the decoder and pool the last token without omniembed."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    vision = "<|vision_start|>" + "<|image_pad|>" * IMAGE_TOKENS + "<|vision_end|>" if image else ""
    text = f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{vision}{user_text}<|im_end|>\n"
    inputs = dict(tokenizer(text, add_special_tokens=False, return_tensors="pt"))
    decoder = transformers.Qwen3VLForConditionalGeneration.from_pretrained(folder).model.eval()
    if image is not None:
        processor = transformers.AutoImageProcessor.from_pretrained(folder, backend=IMAGE_BACKEND)
        inputs.update(processor(images=[image], return_tensors="pt"))
    inputs["mm_token_type_ids"] = (inputs["input_ids"] == decoder.config.image_token_id).int()
    with torch.inference_mode():
        hidden = decoder(**inputs, use_cache=False).last_hidden_state[0, -1]
    return torch.nn.functional.normalize(hidden, dim=0).numpy()


def test_loads_with_every_modality(model: SentenceTransformer) -> None:
    assert model.modalities == ["text", "image", "video", ("image", "text"), ("text", "video"), "message"]
    assert model.supports(("image", "text"))
    assert model.tokenizer.padding_side == "right"
    assert model.get_sentence_embedding_dimension() == 32


@pytest.mark.slow
def test_matches_the_decoder_run_by_hand(
    model: SentenceTransformer, tiny_qwen3_vl: Path, cat: Image.Image
) -> None:
    default, query = VL_PROMPTS["document"], VL_PROMPTS["query"]
    cases = [
        (model.encode("A cat on a mat."), by_hand(tiny_qwen3_vl, default, "A cat on a mat.", None)),
        (model.encode(cat), by_hand(tiny_qwen3_vl, default, "", cat)),
        (model.encode({"image": cat, "text": "a cat"}), by_hand(tiny_qwen3_vl, default, "a cat", cat)),
        (model.encode_query("find a cat"), by_hand(tiny_qwen3_vl, query, "find a cat", None)),
        (model.encode(cat, prompt="Classify it."), by_hand(tiny_qwen3_vl, "Classify it.", "", cat)),
    ]
    for ours, expected in cases:
        np.testing.assert_allclose(ours, expected, atol=1e-5)
    assert np.abs(cases[0][0] - model.encode_query("A cat on a mat.")).max() > 1e-4


@pytest.mark.slow
def test_right_padding_and_batching_change_nothing(
    model: SentenceTransformer, cifar: list[tuple[Path, str]], sts_sentences: list[str]
) -> None:
    images = [Image.open(path) for path, _ in cifar[:6]]
    images[1] = images[1].resize((64, 40))  # another size: another number of image tokens
    mixed: list[object] = [*sts_sentences[:6], *images, {"text": sts_sentences[7], "image": images[2]}]
    mixed += [
        [{"role": "user", "content": [{"type": "image", "image": images[3]}, {"type": "text", "text": "hi"}]}]
    ]
    together = model.encode(mixed, batch_size=16)
    alone = np.stack([model.encode(item) for item in mixed])
    assert together.shape == (len(mixed), 32)
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_conversations_take_the_instruction_as_system_message(
    model: SentenceTransformer, cat: Image.Image
) -> None:
    pair = model.encode({"image": cat, "text": "a cat"})
    conversation = [
        {"role": "user", "content": [{"type": "image", "image": cat}, {"type": "text", "text": "a cat"}]}
    ]
    np.testing.assert_allclose(model.encode(conversation), pair, atol=1e-5)
    # A conversation's own system message follows the prompt; prompt="" sends it as it is.
    own_system = [{"role": "system", "content": VL_PROMPTS["query"]}, *conversation]
    query = model.encode_query({"image": cat, "text": "a cat"})
    np.testing.assert_allclose(model.encode(own_system, prompt=""), query, atol=1e-5)
    assert np.abs(model.encode(own_system) - query).max() > 1e-4
    # A text+image dict lays its parts out in its own key order.
    assert np.abs(model.encode({"text": "a cat", "image": cat}) - pair).max() > 1e-4


def test_matryoshka_truncation(model: SentenceTransformer, sts_sentences: list[str]) -> None:
    texts = sts_sentences[:8]
    full = model.encode(texts)
    short = model.encode(texts, truncate_dim=8, normalize_embeddings=True)
    expected = full[:, :8] / np.linalg.norm(full[:, :8], axis=1, keepdims=True)
    np.testing.assert_allclose(short, expected, atol=1e-5)


def test_save_and_reload(model: SentenceTransformer, tmp_path: Path, cat: Image.Image) -> None:
    model.save(tmp_path / "saved")
    reloaded = SentenceTransformer(tmp_path / "saved", device="cpu")
    batch = ["a text", cat, {"text": "a cat", "image": cat}]
    np.testing.assert_allclose(reloaded.encode(batch), model.encode(batch), atol=1e-6)


def test_long_texts_are_truncated_and_audio_refused(model: SentenceTransformer) -> None:
    assert model.encode("word " * 2000).shape == (32,)
    with pytest.raises(UnsupportedModalityError, match="audio"):
        model.encode([np.zeros(100, dtype=np.float32)])


def test_bare_checkpoint_loads_with_last_token_pooling(
    model: SentenceTransformer, tiny_qwen3_vl: Path, tmp_path: Path
) -> None:
    import shutil

    folder = tmp_path / "bare"
    shutil.copytree(
        tiny_qwen3_vl, folder, ignore=shutil.ignore_patterns("modules.json", "*_Pooling", "*_Normalize")
    )
    bare = SentenceTransformer(folder, device="cpu", prompts=VL_PROMPTS, default_prompt_name="document")
    assert bare[1].modes == ("lasttoken",)
    raw = bare.encode(["a text", "another one"])
    expected = model.encode(["a text", "another one"])
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), expected, atol=1e-5)


@pytest.mark.skipif(torchvision_importable(), reason="torchvision imports here: video works")
def test_video_without_torchvision_names_what_to_install(model: SentenceTransformer) -> None:
    with pytest.raises(MissingExtraError, match="torchvision") as raised:
        model.encode([np.zeros((4, 32, 32, 3), np.uint8)])
    assert "omniembed[video]" in str(raised.value)
    assert model.encode(["still embeds texts"]).shape == (1, 32)
