"""Video for vision-language embedders (Qwen3-VL): which frames to keep, their pixels, their tokens.

Frames are chosen as the model's video processor chooses them (``fps`` frames per second of video,
clamped to its ``min_frames``..``max_frames``, or a fixed ``num_frames``; 24 fps is assumed for a frame
array without metadata), turned into patches by that processor (torchvision-backed in transformers 5),
and each temporal patch of frames becomes ``<t seconds>`` + vision start + its video tokens + vision
end in the text, ``t`` being the mean time of the frames it merges.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from omniembed.errors import MissingExtraError, ModelFormatError

VIDEO_TOKEN = "<|video_pad|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
VIDEO_WRAPPER = VISION_START + VIDEO_TOKEN + VISION_END
"""What the chat template writes for a video part, widened here into one block per temporal patch."""
ASSUMED_FPS = 24.0
"""The frame rate assumed for a video whose own is unknown, as the model's processor assumes."""
VIDEO_PROCESSOR_FILES = ("video_preprocessor_config.json", "preprocessor_config.json")


@functools.cache
def torchvision_importable() -> bool:
    """Whether torchvision imports beside the installed torch (a mismatched build fails to import)."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # an ImportError, or a RuntimeError/OSError from a build for another torch
        return False
    return True


def missing_torchvision() -> MissingExtraError:
    """The error for video (or the torchvision image processor) without torchvision."""
    return MissingExtraError(
        "video input for vision-language models needs torchvision (the model's video processor in "
        "transformers uses it); install the torchvision release built for your torch "
        "(pip install torchvision), and pip install 'omniembed[video]' to decode video files"
    )


def load_video_processor(folder: Path) -> Any:
    """Load the folder's video processor, or ``None`` without torchvision or without a video config."""
    if not torchvision_importable() or not any((folder / name).is_file() for name in VIDEO_PROCESSOR_FILES):
        return None
    from transformers import AutoVideoProcessor

    try:
        return AutoVideoProcessor.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise ModelFormatError(f"could not load the video processor in {folder}: {error}") from error


def pick_frames(
    processor: Any, total: int, fps: float | None, num_frames: int | None, sample_fps: float | None
) -> tuple[np.ndarray, float]:
    """Return the frame indices the processor keeps of a ``total``-frame video whose own rate is
    ``fps``, and the rate their timestamps use (``ASSUMED_FPS`` when ``fps`` is unknown).

    ``num_frames`` (a fixed count) or ``sample_fps`` (frames per second of video) override the
    processor's own setting."""
    from transformers.video_utils import VideoMetadata

    if num_frames is not None and sample_fps is not None:
        raise ValueError("video_frames and video_fps are exclusive: set one of them")
    # An unknown rate is the one the processor would assume, set here to keep its warning quiet.
    rate = float(fps) if fps else ASSUMED_FPS
    indices = processor.sample_frames(
        VideoMetadata(total_num_frames=total, fps=rate), num_frames=num_frames, fps=sample_fps
    )
    return np.asarray(indices, dtype=int), rate


def video_features(processor: Any, clips: list[Any]) -> dict[str, Any]:
    """Turn loaded clips (already sampled) into ``pixel_values_videos`` and ``video_grid_thw``."""
    metadata = [
        {
            "total_num_frames": clip.total_frames,
            "fps": clip.fps or ASSUMED_FPS,
            "frames_indices": clip.indices.tolist(),
        }
        for clip in clips
    ]
    output = processor(
        videos=[clip.frames for clip in clips],
        video_metadata=metadata,
        do_sample_frames=False,
        return_metadata=False,
        return_tensors="pt",
    )
    return {"pixel_values_videos": output["pixel_values_videos"], "video_grid_thw": output["video_grid_thw"]}


def video_placeholder(clip: Any, grid: Any, merge_size: int, temporal_patch_size: int) -> str:
    """The text that stands for one video: per temporal patch, its time and its merged patches."""
    frame_tokens = int(grid[1]) * int(grid[2]) // merge_size**2
    blocks = [
        f"<{seconds:.1f} seconds>" + VISION_START + VIDEO_TOKEN * frame_tokens + VISION_END
        for seconds in patch_times(clip.indices.tolist(), clip.fps or ASSUMED_FPS, temporal_patch_size)
    ]
    return "".join(blocks[: int(grid[0])])


def patch_times(indices: list[int], fps: float, temporal_patch_size: int) -> list[float]:
    """The mean time (seconds) of the first and last frame of each temporal patch; a last patch that
    is short of frames repeats its last frame, as the processor pads it.

    >>> patch_times([0, 6, 13, 19], 10.0, 2)
    [0.3, 1.6]
    >>> patch_times([0, 4, 8], 4.0, 2)
    [0.5, 2.0]
    """
    padded = list(indices)
    while len(padded) % temporal_patch_size:
        padded.append(padded[-1])
    return [
        (padded[start] / fps + padded[start + temporal_patch_size - 1] / fps) / 2
        for start in range(0, len(padded), temporal_patch_size)
    ]


def widen_videos(texts: list[str], placeholders: list[str]) -> list[str]:
    """Replace each video part the chat template wrote, in order, with its placeholder."""
    return replace_in_order(texts, VIDEO_WRAPPER, placeholders)


def replace_in_order(texts: list[str], marker: str, replacements: Iterable[str]) -> list[str]:
    """Replace each ``marker`` in ``texts`` (in order, across texts) with the next replacement."""
    remaining = iter(replacements)
    replaced = []
    for text in texts:
        pieces = text.split(marker)
        rebuilt = pieces[0]
        for piece in pieces[1:]:
            rebuilt += next(remaining) + piece
        replaced.append(rebuilt)
    return replaced
