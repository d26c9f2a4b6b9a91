"""Video inputs: frame sampling, CLIP's mean-of-frames embedding, and clear errors on bad video."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from PIL import Image
from sentence_transformers import SentenceTransformer as Reference

from omniembed import SentenceTransformer
from omniembed.errors import InvalidInputError, InvalidVideoError
from omniembed.inputs import policy as input_policy
from omniembed.inputs.modality import input_batch
from omniembed.inputs.video import load_clip, load_video, sample_indices
from omniembed.modules.multimodal.vision_language import VisionLanguageTransformer

from helpers.audio import write_video
from helpers.numbers import assert_same

FPS = 4


def decoded_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def mean_of_frames(reference: Reference, frames: np.ndarray) -> np.ndarray:
    """The documented video embedding, computed with the reference library's image embeddings."""
    embedded = reference.encode([Image.fromarray(frame) for frame in frames])
    embedded /= np.linalg.norm(embedded, axis=1, keepdims=True)
    mean = embedded.mean(axis=0)
    return np.asarray(mean / np.linalg.norm(mean))


@pytest.fixture(scope="module")
def frames(cifar: list[tuple[Path, str]]) -> np.ndarray:
    """Twelve 32x32 CIFAR images as video frames."""
    loaded = []
    for path, _ in cifar[:12]:
        with Image.open(path) as image:
            loaded.append(np.asarray(image.convert("RGB")))
    return np.stack(loaded)


@pytest.fixture(scope="module")
def pair(tiny_clip: Callable[..., Path]) -> tuple[SentenceTransformer, Reference]:
    folder = tiny_clip("plain")
    return SentenceTransformer(folder, device="cpu"), Reference(str(folder), device="cpu")


def test_sample_indices() -> None:
    assert sample_indices(12, 8, None, None).tolist() == [0, 2, 3, 5, 6, 8, 9, 11]
    assert sample_indices(3, 8, None, None).tolist() == [0, 1, 2]
    assert sample_indices(12, 8, 2.0, 4.0).tolist() == [0, 2, 4, 6, 8, 10]
    assert sample_indices(12, 3, 2.0, 4.0).tolist() == [0, 4, 10]


def test_clip_embeds_video_arrays_as_the_mean_of_frames(
    pair: tuple[SentenceTransformer, Reference], frames: np.ndarray
) -> None:
    ours, theirs = pair
    assert ours.supports("video")
    expected = [
        mean_of_frames(theirs, frames[sample_indices(12, 8, None, None)]),
        mean_of_frames(theirs, frames[:3]),
    ]
    import torch

    got = ours.encode([frames, torch.from_numpy(frames[:3].copy())])
    assert_same(got, np.stack(expected))
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    still = ours.encode([np.repeat(frames[:1], 5, axis=0)])[0]  # a still video: its frame, normalised
    image = theirs.encode([Image.fromarray(frames[0])])[0]
    assert_same(still[None], (image / np.linalg.norm(image))[None])


def test_fps_sampling_uses_the_videos_metadata(
    pair: tuple[SentenceTransformer, Reference], frames: np.ndarray
) -> None:
    ours, theirs = pair
    ours.transformer.video_fps = 1.0
    try:
        got = ours.encode({"array": frames, "video_metadata": {"fps": FPS}})
    finally:
        ours.transformer.video_fps = None
    assert_same(got[None], mean_of_frames(theirs, frames[[0, 4, 8]])[None])


def test_video_files_decode_with_pyav(
    pair: tuple[SentenceTransformer, Reference], frames: np.ndarray, tmp_path: Path
) -> None:
    ours, theirs = pair
    path = write_video(tmp_path / "clip.mp4", frames)
    decoded = decoded_frames(path)
    assert decoded.shape == (12, 32, 32, 3)
    expected = mean_of_frames(theirs, decoded[sample_indices(12, 8, None, None)])
    from_path, from_str = ours.encode([path, str(path)])
    np.testing.assert_array_equal(from_path, from_str)
    assert_same(from_path[None], expected[None])
    np.testing.assert_array_equal(load_video(path.read_bytes(), index=0, num_frames=3), decoded[[0, 6, 11]])


def test_bad_videos_name_the_input(pair: tuple[SentenceTransformer, Reference], tmp_path: Path) -> None:
    ours, _ = pair
    good = np.zeros((2, 32, 32, 3), np.uint8)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(2000))
    sound = tmp_path / "sound.mp4"
    soundfile.write(sound, np.zeros(800, np.float32), 8000, format="WAV")
    cases: list[tuple[object, type[Exception], str]] = [
        (np.zeros((0, 32, 32, 3), np.uint8), InvalidVideoError, "no frames"),
        ({"array": np.zeros((0, 8, 8, 3)), "video_metadata": {"fps": 2}}, InvalidVideoError, "no frames"),
        (corrupt, InvalidVideoError, "corrupt"),
        (sound, InvalidVideoError, "no video stream"),
        (str(tmp_path / "missing.mp4"), InvalidVideoError, "does not exist"),
        (np.full((2, 8, 8, 3), 2.0), InvalidVideoError, "outside"),
        (np.zeros((2, 8, 8, 5), np.uint8), InvalidVideoError, "channels"),
        ({"array": "x", "video_metadata": None}, InvalidInputError, "frames"),
    ]
    for bad, error, text in cases:
        with pytest.raises(error, match=text) as raised:
            ours.encode([good, bad])
        assert "index 1" in str(raised.value), str(raised.value)


def test_clips_keep_the_chosen_frames_with_their_rate(frames: np.ndarray, tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", frames, fps=FPS)
    every_fifth = lambda total, fps: np.arange(0, total, 5)  # noqa: E731
    clip = load_clip(path, index=0, pick=every_fifth)
    assert (clip.total_frames, clip.fps, clip.indices.tolist()) == (12, float(FPS), [0, 5, 10])
    np.testing.assert_array_equal(clip.frames, decoded_frames(path)[[0, 5, 10]])
    repeated = load_clip(path.read_bytes(), index=0, pick=lambda total, fps: np.array([0, 0, 11, 11]))
    np.testing.assert_array_equal(repeated.frames, decoded_frames(path)[[0, 0, 11, 11]])
    bare = load_clip(frames, index=0, pick=lambda total, fps: np.array([1, 3]))
    assert (bare.fps, bare.total_frames) == (None, 12)
    np.testing.assert_array_equal(bare.frames, frames[[1, 3]])


def test_remote_clips_are_bounded_before_any_frame_is_chosen(frames: np.ndarray, tmp_path: Path) -> None:
    data = write_video(tmp_path / "clip.mp4", frames).read_bytes()
    chosen: list[int] = []

    def pick(total: int, fps: float | None) -> np.ndarray:
        chosen.append(total)
        return np.arange(total)

    with input_policy.using(input_policy.InputPolicy.for_remote_callers(max_video_frames=5)):
        with pytest.raises(InvalidVideoError, match="limit is 5"):
            load_clip(data, index=0, pick=pick)
        with pytest.raises(InvalidVideoError, match="not a video container"):
            load_clip(b"#EXTM3U\nhttp://example.invalid/x.ts\n", index=0, pick=pick)
    assert chosen == []


def test_vision_language_models_take_video() -> None:
    _, kinds, _ = input_batch([np.zeros((2, 8, 8, 3), np.uint8)], list(VisionLanguageTransformer.modalities))
    assert kinds == ["video"]


# Blocks PyAV the way an environment without the ``video`` extra behaves.
SCRIPT = """
import json, sys
sys.modules["av"] = None
import numpy as np
from omniembed import MissingExtraError, SentenceTransformer

model = SentenceTransformer(sys.argv[1], device="cpu")
results = {"array_shape": list(model.encode([np.zeros((2, 32, 32, 3), np.uint8)]).shape)}
try:
    model.encode(sys.argv[2])
except MissingExtraError as error:
    results["error"] = str(error)
print(json.dumps(results))
"""


@pytest.mark.slow
def test_without_pyav_arrays_work_and_files_name_the_extra(
    tiny_clip: Callable[..., Path], frames: np.ndarray, tmp_path: Path
) -> None:
    path = write_video(tmp_path / "clip.mp4", frames)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-c", SCRIPT, str(tiny_clip("plain")), str(path)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=True)
    results = json.loads(result.stdout.strip().splitlines()[-1])
    assert results["array_shape"] == [1, 16]
    assert "pip install 'omniembed[video]'" in results["error"]
