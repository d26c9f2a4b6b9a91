"""Load audio and video inputs with the settings of the module that will embed them."""

from __future__ import annotations

from typing import Any

from omniembed.inputs.audio import load_audio

DEFAULT_VIDEO_FRAMES = 8
"""Frames sampled from a video when the module sets no ``video_frames``."""


def load_media(kind: Any, value: Any, index: int, module: Any) -> Any:
    """Decode one audio or video input for ``module`` (the model's first module).

    Audio is resampled to ``module.sampling_rate`` and clipped to ``module.max_audio_seconds`` (unless
    ``module.long_audio`` is ``"chunk"``: the module then splits it into windows itself). A module
    with a ``pick_frames(total, fps)`` method chooses a video's frames itself and gets a
    :class:`~omniembed.inputs.video.VideoClip` (frames, their indices, the frame rate); otherwise
    video frames are sampled as ``module.video_frames`` and ``module.video_fps`` say.
    """
    if kind == "audio":
        return load_audio(
            value,
            index=index,
            sampling_rate=int(module.sampling_rate),
            max_seconds=None
            if getattr(module, "long_audio", "clip") == "chunk"
            else module.max_audio_seconds,
        )
    from omniembed.inputs.video import load_clip, load_video

    pick = getattr(module, "pick_frames", None)
    if pick is not None:
        return load_clip(value, index=index, pick=pick)
    return load_video(
        value,
        index=index,
        num_frames=getattr(module, "video_frames", DEFAULT_VIDEO_FRAMES),
        fps=getattr(module, "video_fps", None),
    )


def load_videos_in(kind: Any, value: Any, index: int, module: Any) -> Any:
    """Load the videos a multimodal dict (its ``"video"``) or a conversation (its ``{"type": "video"}``
    parts) holds, as :func:`load_media` does; other inputs come back unchanged."""
    if isinstance(kind, tuple) and "video" in kind:
        return {**value, "video": load_media("video", value["video"], index, module)}
    if kind != "message":
        return value
    conversation = [value] if isinstance(value, dict) else list(value)
    loaded = []
    for message in conversation:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(_is_video_part(part) for part in content):
            content = [_load_video_part(part, index, module) for part in content]
            message = {**message, "content": content}
        loaded.append(message)
    return loaded


def _is_video_part(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") == "video"


def _load_video_part(part: Any, index: int, module: Any) -> Any:
    if not _is_video_part(part):
        return part
    source = part.get("video", part.get("path"))
    return {"type": "video", "video": load_media("video", source, index, module)}
