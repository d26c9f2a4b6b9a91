"""Qwen3-VL-style embedders against the reference library on the same tiny random model folder: texts,
images, text+image and text+video dicts, conversations, prompts, ``truncate_dim`` and video.

The reference builds its Qwen3-VL processor only with torchvision (its video processor needs it), so
these tests run in the check environment ``make test-vlm`` builds (``.venv-vlm``: torch with
torchvision) and skip elsewhere. Both sides then prepare images with transformers' torchvision image
processor.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers.images import VL_PROMPTS


def _reference_support() -> str | None:
    """Why the reference cannot run Qwen3-VL here, or ``None`` when it can."""
    try:
        import torchvision  # noqa: F401
    except Exception as error:  # a missing or mismatched build fails in several ways
        return f"torchvision does not import ({type(error).__name__}: {error}); run make test-vlm"
    try:
        from sentence_transformers import SentenceTransformer  # noqa: F401
        from transformers import Qwen3VLVideoProcessor  # noqa: F401
    except Exception as error:
        return f"the reference library's vision-language support is missing ({error}); run make test-vlm"
    return None


REASON = _reference_support()
if REASON is not None:
    print(f"\nskipping the vision-language reference tests: {REASON}")
    pytest.skip(REASON, allow_module_level=True)

import av  # noqa: E402
from PIL import Image  # noqa: E402
from sentence_transformers import SentenceTransformer as Reference  # noqa: E402

from omniembed import SentenceTransformer  # noqa: E402
from omniembed.errors import InvalidVideoError  # noqa: E402

from helpers.audio import write_video  # noqa: E402

MIN_COSINE = 0.99999
LOWEST: dict[str, float] = {}
"""The lowest cosine each test saw, printed at the end of the module (``pytest -s`` shows it)."""


def assert_parity(ours: np.ndarray, expected: np.ndarray) -> float:
    """Check each row's cosine to the reference; return the smallest."""
    ours, expected = np.atleast_2d(ours), np.atleast_2d(expected)
    assert ours.shape == expected.shape, (ours.shape, expected.shape)
    cosines = (ours * expected).sum(axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(expected, axis=1)
    )
    assert cosines.min() >= MIN_COSINE, cosines
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").split("::")[-1].split(" ")[0]
    LOWEST[test] = min(LOWEST.get(test, 1.0), float(cosines.min()))
    return float(cosines.min())


@pytest.fixture(scope="module", autouse=True)
def report_cosines() -> Iterator[None]:
    yield
    for test, lowest in LOWEST.items():
        print(f"\n{test}: lowest cosine to the reference {lowest:.7f}", end="")


@pytest.fixture(scope="module")
def pair(tiny_qwen3_vl: Path) -> tuple[SentenceTransformer, Reference]:
    return SentenceTransformer(tiny_qwen3_vl, device="cpu"), Reference(str(tiny_qwen3_vl), device="cpu")


@pytest.fixture(scope="module")
def pictures(cifar: list[tuple[Path, str]]) -> list[Image.Image]:
    loaded = []
    for path, _ in cifar[:5]:
        with Image.open(path) as image:
            loaded.append(image.convert("RGB"))
    loaded[1] = loaded[1].resize((64, 40))  # another size: another number of image tokens
    loaded[2] = loaded[2].resize((50, 90))
    return loaded


def clip_frames(count: int, height: int = 40, width: int = 48, seed: int = 0) -> np.ndarray:
    """Smooth moving frames (a random image drifting right), so resizing sees real structure."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(height, width + count, 3), dtype=np.uint8)
    return np.stack([base[:, step : step + width] for step in range(count)])


def test_the_reference_uses_torchvision_processors_and_so_do_we(
    pair: tuple[SentenceTransformer, Reference],
) -> None:
    ours, reference = pair
    ours_images, reference_images = ours[0].processor, reference[0].processor.image_processor
    assert type(ours_images) is type(reference_images)
    assert "Pil" not in type(ours_images).__name__
    assert type(ours[0].video_processor) is type(reference[0].processor.video_processor)
    assert reference.modalities == ["text", "image", "video", "message"]


def test_texts_prompts_and_truncate_dim(
    pair: tuple[SentenceTransformer, Reference], sts_sentences: list[str]
) -> None:
    ours, reference = pair
    texts = sts_sentences[:12]
    assert_parity(ours.encode(texts), reference.encode(texts))
    assert_parity(ours.encode_query(texts[:4]), reference.encode_query(texts[:4]))
    assert_parity(
        ours.encode(texts[:4], prompt="Classify it."), reference.encode(texts[:4], prompt="Classify it.")
    )
    assert_parity(
        ours.encode(texts[:4], prompt_name="query"), reference.encode(texts[:4], prompt_name="query")
    )
    short = ours.encode(texts, truncate_dim=8)
    assert short.shape == (12, 8)
    assert_parity(short, reference.encode(texts, truncate_dim=8))


def test_images_and_text_image_pairs(
    pair: tuple[SentenceTransformer, Reference], pictures: list[Image.Image]
) -> None:
    ours, reference = pair
    assert_parity(ours.encode(pictures), reference.encode(pictures))
    assert_parity(ours.encode_query(pictures[:2]), reference.encode_query(pictures[:2]))
    pairs = [{"text": "a photo", "image": pictures[0]}, {"text": "another", "image": pictures[1]}]
    assert_parity(ours.encode(pairs), reference.encode(pairs))
    image_first = [{"image": pictures[2], "text": "an image, then its caption"}]
    assert_parity(ours.encode(image_first), reference.encode(image_first))
    assert_parity(
        ours.encode(pairs, prompt="Find the image."), reference.encode(pairs, prompt="Find the image.")
    )


def test_conversations(pair: tuple[SentenceTransformer, Reference], pictures: list[Image.Image]) -> None:
    ours, reference = pair
    image_then_text = [
        {"role": "user", "content": [{"type": "image", "image": pictures[3]}, {"type": "text", "text": "hi"}]}
    ]
    own_system = [{"role": "system", "content": [{"type": "text", "text": VL_PROMPTS["query"]}]}]
    two_images = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": pictures[0]},
                {"type": "text", "text": "and"},
                {"type": "image", "image": pictures[1]},
            ],
        }
    ]
    for conversation in (image_then_text, own_system + image_then_text, two_images):
        assert_parity(ours.encode([conversation]), reference.encode([conversation]))


def test_a_mixed_batch(
    pair: tuple[SentenceTransformer, Reference], pictures: list[Image.Image], sts_sentences: list[str]
) -> None:
    ours, reference = pair
    video = {"array": clip_frames(12), "video_metadata": {"fps": 6.0, "total_num_frames": 12}}
    mixed: list[Any] = [sts_sentences[0], pictures[0], {"text": "x", "image": pictures[1]}, video]
    assert_parity(ours.encode(mixed), reference.encode(mixed))


def test_video_arrays_with_and_without_metadata(pair: tuple[SentenceTransformer, Reference]) -> None:
    ours, reference = pair
    cases: list[Any] = [
        {"array": clip_frames(20), "video_metadata": {"fps": 10.0, "total_num_frames": 20}},
        {"array": clip_frames(45, 64, 36, seed=1), "video_metadata": {"fps": 5.0, "total_num_frames": 45}},
        {"array": clip_frames(7, seed=2), "video_metadata": {"fps": 30.0, "total_num_frames": 7}},
    ]
    for case in cases:
        assert_parity(ours.encode([case]), reference.encode([case]))
    bare = clip_frames(60, seed=3)  # no metadata: both sides assume 24 fps
    assert_parity(ours.encode([bare]), reference.encode([bare]))
    assert_parity(ours.encode_query([cases[0]]), reference.encode_query([cases[0]]))


def test_text_video_dicts_and_video_in_conversations(pair: tuple[SentenceTransformer, Reference]) -> None:
    ours, reference = pair
    video = {"array": clip_frames(16), "video_metadata": {"fps": 8.0, "total_num_frames": 16}}
    for value in ({"text": "a moving picture", "video": video}, {"video": video, "text": "video first"}):
        assert_parity(ours.encode([value]), reference.encode([value]))
    frames = clip_frames(16)
    conversation = [
        {
            "role": "user",
            "content": [{"type": "video", "video": frames}, {"type": "text", "text": "what happens?"}],
        }
    ]
    assert_parity(ours.encode([conversation]), reference.encode([conversation]))


def test_frame_count_and_rate_options(pair: tuple[SentenceTransformer, Reference]) -> None:
    ours, reference = pair
    video = {"array": clip_frames(40), "video_metadata": {"fps": 10.0, "total_num_frames": 40}}
    options: list[tuple[str, Any, dict[str, Any]]] = [
        ("video_frames", 6, {"num_frames": 6, "fps": None}),
        ("video_fps", 1.0, {"fps": 1.0}),
        ("video_fps", 4.0, {"fps": 4.0}),
    ]
    module = ours[0]
    for name, value, reference_option in options:
        setattr(module, name, value)
        try:
            expected = reference.encode([video], processing_kwargs={"video": reference_option})
            assert_parity(ours.encode([video]), expected)
        finally:
            setattr(module, name, None)


def test_video_files_decode_as_the_reference_sees_their_frames(
    pair: tuple[SentenceTransformer, Reference], tmp_path: Path
) -> None:
    ours, reference = pair
    path = write_video(tmp_path / "clip.mp4", clip_frames(30, 48, 64), fps=10)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate)
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(stream)])
    metadata = {"fps": rate, "total_num_frames": len(frames)}
    expected = reference.encode([{"array": frames, "video_metadata": metadata}])
    assert_parity(ours.encode([path]), expected)
    assert_parity(ours.encode([{"video": path.read_bytes()}]), expected)
    assert_parity(
        ours.encode({"video": str(path), "text": "a file"}),
        reference.encode([{"video": {"array": frames, "video_metadata": metadata}, "text": "a file"}])[0],
    )


def test_saved_folders_load_on_both_sides(
    pair: tuple[SentenceTransformer, Reference], tmp_path: Path, pictures: list[Image.Image]
) -> None:
    ours, _ = pair
    ours.save(tmp_path / "saved")
    reloaded = Reference(str(tmp_path / "saved"), device="cpu")
    video = {"array": clip_frames(20), "video_metadata": {"fps": 10.0, "total_num_frames": 20}}
    batch: list[Any] = ["a text", pictures[0], video]
    assert_parity(ours.encode(batch), reloaded.encode(batch))


def test_long_texts_keep_the_template_ending(
    pair: tuple[SentenceTransformer, Reference], sts_sentences: list[str]
) -> None:
    ours, reference = pair
    long = [" ".join(sts_sentences[:200]), "short"]
    assert_parity(ours.encode(long), reference.encode(long))


def test_the_pillow_processor_sits_close_but_apart(
    pair: tuple[SentenceTransformer, Reference], tiny_qwen3_vl: Path, pictures: list[Image.Image]
) -> None:
    """Pillow resizes differently from torchvision, so the main environment's images embed close to,
    but not exactly as, the reference does here; ``benchmarks/vl_processors.py`` measures how close."""
    from omniembed.modules.multimodal.base import load_image_processor

    ours, reference = pair
    module = ours[0]
    torchvision_processor = module.processor
    pillow_processor = load_image_processor(tiny_qwen3_vl, "pil")
    resized = pictures[1:3]  # 64x40 and 50x90: the processor resizes both
    gaps = []
    for image in resized:
        both = [
            p(images=[image], return_tensors="pt")["pixel_values"]
            for p in (torchvision_processor, pillow_processor)
        ]
        gaps.append(float((both[0] - both[1]).abs().max()))
    assert min(gaps) > 0, gaps
    module.processor = pillow_processor
    try:
        cosines = (ours.encode(resized) * reference.encode(resized)).sum(axis=1)
    finally:
        module.processor = torchvision_processor
    assert cosines.min() > 0.999, cosines


def test_a_one_frame_video_is_a_clear_error(pair: tuple[SentenceTransformer, Reference]) -> None:
    with pytest.raises(InvalidVideoError, match="cannot be prepared"):
        pair[0].encode([clip_frames(1)])
