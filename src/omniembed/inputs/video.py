"""Decode video inputs (files, frame arrays, ``{"array", "video_metadata"}`` dicts) into sampled frames.

Frames are sampled evenly over the whole video (``num_frames`` of them), or one every ``1 / fps``
seconds when an ``fps`` is set (still at most ``num_frames``, thinned evenly). PyAV is an optional
dependency (the ``video`` extra), imported only when a video file is decoded.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from omniembed.errors import InvalidInputError, InvalidVideoError, import_extra
from omniembed.inputs import policy as input_policy


def require_av() -> Any:
    """Import and return PyAV (``av``), or explain how to install it.

    Raises:
        MissingExtraError: PyAV is not installed.
    """
    return import_extra(
        "av",
        "decoding video files needs PyAV, which is not installed; install it with "
        "pip install 'omniembed[video]'",
    )


FramePicker = Callable[[int, "float | None"], np.ndarray]
"""Chooses the frames to keep: ``(frames in the video, its frame rate or None) -> indices``."""


@dataclass(frozen=True)
class VideoClip:
    """The sampled frames of one video and what a model needs to place them in time.

    Attributes:
        frames: ``(frames, height, width, 3)`` uint8 RGB.
        indices: each kept frame's position in the whole video.
        fps: the video's own frame rate (``None`` when unknown, as for a bare frame array).
        total_frames: frames in the whole video.
    """

    frames: np.ndarray
    indices: np.ndarray
    fps: float | None
    total_frames: int


def load_clip(value: Any, *, index: int, pick: FramePicker) -> VideoClip:
    """Decode one video (file path, bytes, frame array or ``{"array", "video_metadata"}`` dict) and
    keep the frames ``pick`` chooses, with the video's frame rate and length.

    Files are decoded under the current input policy (its frame and pixel limits are checked before
    any frame is decoded), and only the chosen frames are kept in memory.

    Raises:
        InvalidVideoError: the file is missing or cannot be decoded, or the video has no frames.
        MissingExtraError: a file is given and PyAV is not installed.

    >>> clip = load_clip(np.zeros((10, 4, 4, 3), np.uint8), index=0, pick=lambda n, fps: np.arange(0, n, 5))
    >>> clip.frames.shape, clip.indices.tolist(), clip.total_frames
    ((2, 4, 4, 3), [0, 5], 10)
    """
    if isinstance(value, (str, os.PathLike, bytes)):
        return _decode_file(value, index, pick)
    source_fps = None
    if isinstance(value, dict):
        if "array" not in value:
            raise InvalidInputError(f"video dict at index {index} needs an 'array' of frames")
        metadata = value.get("video_metadata") or {}
        source_fps = metadata.get("fps") if isinstance(metadata, dict) else getattr(metadata, "fps", None)
        value = value["array"]
    frames = _frame_array(value, index)
    rate = float(source_fps) if source_fps else None
    chosen = np.asarray(pick(len(frames), rate), dtype=int)
    return VideoClip(_rgb_uint8(frames[chosen], index), chosen, rate, len(frames))


def load_video(value: Any, *, index: int, num_frames: int = 8, fps: float | None = None) -> np.ndarray:
    """Return the sampled frames of one video as a ``(frames, height, width, 3)`` uint8 array.

    Args:
        value: a file path (``str`` or ``Path``) or the file's bytes; a numpy array or torch tensor of
            ``(frames, height, width, channels)`` (uint8, or float in [0, 1]); or a dict
            ``{"array": frames, "video_metadata": {"fps": ...}}``, whose fps is used for ``fps`` sampling.
        index: the input's position, named in error messages.
        num_frames: the most frames to keep, spread evenly over the video.
        fps: sample this many frames per second of video instead (needs the video's own frame rate).

    Raises:
        InvalidVideoError: the file is missing or cannot be decoded, or the video has no frames.
        MissingExtraError: a file is given and PyAV is not installed.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")

    def pick(total: int, source_fps: float | None) -> np.ndarray:
        return sample_indices(total, num_frames, fps, source_fps)

    return load_clip(value, index=index, pick=pick).frames


def sample_indices(total: int, num_frames: int, fps: float | None, source_fps: float | None) -> np.ndarray:
    """Pick the frame indices to keep out of ``total``: every ``source_fps / fps`` frames when both
    rates are known, else evenly spread; never more than ``num_frames``.

    >>> sample_indices(10, 4, None, None).tolist()
    [0, 3, 6, 9]
    >>> sample_indices(10, 8, 1.0, 4.0).tolist()
    [0, 4, 8]
    """
    if fps is not None and source_fps:
        picked = np.unique(np.floor(np.arange(0.0, total, source_fps / fps)).astype(int))
    else:
        picked = np.arange(total)
    if len(picked) > num_frames:
        picked = picked[np.round(np.linspace(0, len(picked) - 1, num_frames)).astype(int)]
    return picked


def _decode_file(value: str | os.PathLike[str] | bytes, index: int, pick: FramePicker) -> VideoClip:
    av = require_av()
    policy = input_policy.current()
    if isinstance(value, bytes):
        source: Any = io.BytesIO(value)
        name = f"video bytes at index {index}"
    else:
        try:
            source = str(policy.local_file(value, "video", f"input at index {index}"))
        except InvalidInputError as error:
            raise InvalidVideoError(str(error)) from None
        name = f"video file {source!r} (input at index {index})"
    # A remote caller's bytes go only to the demuxer their first bytes name: FFmpeg would otherwise
    # probe every format it has, playlists that open other files and URLs among them.
    demuxer = _container_format(value, name) if policy.remote and isinstance(value, bytes) else None
    try:
        with av.open(source, format=demuxer) as container:
            if not container.streams.video:
                raise InvalidVideoError(f"{name} has no video stream")
            stream = container.streams.video[0]
            _check_frame_size(stream, policy, name)
            total = sum(1 for packet in container.demux(stream) if packet.size)
            if policy.max_video_frames is not None and total > policy.max_video_frames:
                raise InvalidVideoError(
                    f"{name} has {total} frames; the limit is {policy.max_video_frames} (send a shorter clip)"
                )
            rate = float(stream.average_rate) if stream.average_rate else None
            chosen = np.asarray(pick(total, rate), dtype=int) if total else np.zeros(0, dtype=int)
            wanted = set(chosen.tolist())
            container.seek(0)
            decoded = {}
            for position, frame in enumerate(container.decode(stream)):
                if position in wanted:
                    decoded[position] = frame.to_ndarray(format="rgb24")
    except av.FFmpegError as error:
        raise InvalidVideoError(f"{name} is corrupt or in a format FFmpeg cannot read: {error}") from error
    if not decoded:
        raise InvalidVideoError(f"{name} holds no frames")
    # A frame chosen twice (a short video sampled up to a minimum count) is decoded once, kept twice;
    # one the demuxer counted but the decoder never gave repeats the last frame before it.
    kept, last = [], decoded[min(decoded)]
    for position in chosen.tolist():
        last = decoded.get(position, last)
        kept.append(last)
    return VideoClip(np.stack(kept), chosen, rate, total)


_SIGNATURES = (  # (offset, bytes, FFmpeg demuxer) of the containers remote callers may send
    (4, b"ftyp", "mp4"),
    (0, b"\x1a\x45\xdf\xa3", "matroska"),
    (8, b"AVI ", "avi"),
    (0, b"\x00\x00\x01\xba", "mpeg"),
)


def _container_format(data: bytes, name: str) -> str:
    """The demuxer for ``data`` by its signature: MP4/MOV, Matroska/WebM, AVI or MPEG-PS."""
    for offset, signature, demuxer in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            return demuxer
    raise InvalidVideoError(
        f"{name} is not a video container this server takes (MP4/MOV, WebM/MKV, AVI, MPEG)"
    )


def _check_frame_size(stream: Any, policy: input_policy.InputPolicy, name: str) -> None:
    width, height = stream.codec_context.width or 0, stream.codec_context.height or 0
    if policy.max_image_pixels is not None and width * height > policy.max_image_pixels:
        raise InvalidVideoError(
            f"{name} has {width}x{height} frames; the limit is {policy.max_image_pixels} pixels per frame"
        )


def _frame_array(value: Any, index: int) -> np.ndarray:
    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise InvalidInputError(
            f"video at index {index} is a {type(value).__name__}; pass a file path, a (frames, height, "
            "width, channels) array or tensor, or {'array': frames, 'video_metadata': {'fps': ...}}"
        )
    if value.ndim != 4 or value.shape[-1] not in (1, 3, 4):
        raise InvalidVideoError(
            f"video array at index {index} has shape {value.shape}; expected (frames, height, width, "
            "channels) with 1, 3 or 4 channels"
        )
    if value.shape[0] == 0:
        raise InvalidVideoError(f"video at index {index} has no frames")
    return value


def _rgb_uint8(frames: np.ndarray, index: int) -> np.ndarray:
    if frames.dtype != np.uint8:
        if not np.issubdtype(frames.dtype, np.floating):
            raise InvalidVideoError(
                f"video array at index {index} has dtype {frames.dtype}; use uint8 or float"
            )
        if not np.isfinite(frames).all() or frames.min() < 0.0 or frames.max() > 1.0:
            raise InvalidVideoError(f"float video array at index {index} has values outside [0, 1]")
        frames = np.round(frames.astype(np.float64) * 255.0).astype(np.uint8)
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    return np.ascontiguousarray(frames[..., :3])
