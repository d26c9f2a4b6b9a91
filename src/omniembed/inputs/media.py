"""Load audio and video inputs with the settings of the module that will embed them."""

from __future__ import annotations

from typing import Any

from omniembed.inputs.audio import load_audio

DEFAULT_VIDEO_FRAMES = 8
"""Frames sampled from a video when the module sets no ``video_frames``."""


def load_media(kind: Any, value: Any, index: int, module: Any) -> Any:
    """Decode one audio or video input for ``module`` (the model's first module).

    Audio is resampled to ``module.sampling_rate`` and clipped to ``module.max_audio_seconds`` (unless
    ``module.long_audio`` is ``"chunk"``: the module then splits it into windows itself); video
    frames are sampled as ``module.video_frames`` and ``module.video_fps`` say.
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
    from omniembed.inputs.video import load_video

    return load_video(
        value,
        index=index,
        num_frames=getattr(module, "video_frames", DEFAULT_VIDEO_FRAMES),
        fps=getattr(module, "video_fps", None),
    )
