"""Decode audio inputs (files, arrays, ``{"array", "sampling_rate"}`` dicts) into mono float32 waveforms.

Every waveform is mixed down to mono, resampled to the model's rate and clipped to the model's longest
input. soundfile and soxr are optional dependencies (the ``audio`` extra), imported only when audio is
loaded.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from omniembed.errors import InvalidAudioError, InvalidInputError, MissingExtraError
from omniembed.inputs import policy as input_policy
from omniembed.inputs.modality import AUDIO_EXTENSIONS

MAX_CHANNELS = 16
"""A 2-D array whose smaller side is at most this long is read as (channels, samples) or the reverse."""


def require_audio() -> tuple[Any, Any]:
    """Import and return ``(soundfile, soxr)``, or explain how to install them.

    Raises:
        MissingExtraError: soundfile or soxr is not installed.
    """
    try:
        import soundfile
        import soxr
    except ImportError as error:
        raise MissingExtraError(
            f"encoding audio needs soundfile and soxr ({error.name} is not installed); install them "
            "with pip install 'omniembed[audio]'"
        ) from error
    return soundfile, soxr


def is_audio_path(value: Any) -> bool:
    """Whether a string or path names an audio file by its extension."""
    return isinstance(value, (str, os.PathLike)) and str(value).lower().endswith(AUDIO_EXTENSIONS)


def load_audio(value: Any, *, index: int, sampling_rate: int, max_seconds: float | None = None) -> np.ndarray:
    """Return one audio input as a mono float32 waveform at ``sampling_rate``.

    Args:
        value: a file path (``str`` or ``Path``; wav, flac, ogg, mp3 and what else libsndfile reads),
            the file's bytes, a dict ``{"array": ..., "sampling_rate": int}``, or a numpy array or torch
            tensor, which is taken to be at ``sampling_rate`` already. Arrays are 1-D, or 2-D with the
            channels on the shorter side.
        index: the input's position, named in error messages.
        sampling_rate: the model's rate; other rates are resampled (soxr, high quality).
        max_seconds: keep only the first this many seconds (``None`` keeps everything).

    Raises:
        InvalidAudioError: the file is missing or cannot be decoded, the audio has no samples, or the
            sampling rate is not a positive integer.
        MissingExtraError: soundfile or soxr is not installed.
    """
    soundfile, soxr = require_audio()
    source_rate = sampling_rate
    if isinstance(value, dict):
        array, source_rate = _dict_audio(value, index)
    elif isinstance(value, (str, os.PathLike, bytes)):
        array, source_rate = _read_file(soundfile, value, index)
    else:
        array = _as_array(value, index)
    waveform = _mono(array, index)
    if source_rate != sampling_rate:
        waveform = soxr.resample(waveform, source_rate, sampling_rate, quality="HQ").astype(np.float32)
    if max_seconds is not None:
        waveform = waveform[: max(1, round(max_seconds * sampling_rate))]
    return np.ascontiguousarray(waveform, dtype=np.float32)


def _dict_audio(value: dict[Any, Any], index: int) -> tuple[Any, int]:
    if "array" not in value or "sampling_rate" not in value:
        raise InvalidInputError(
            f"audio dict at index {index} has keys {sorted(map(str, value))}; it needs 'array' and "
            "'sampling_rate', such as {'array': waveform, 'sampling_rate': 16000}"
        )
    rate = value["sampling_rate"]
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise InvalidAudioError(
            f"audio at index {index} has sampling_rate {rate!r} ({type(rate).__name__}); it must be a "
            "positive integer number of samples per second, such as 16000"
        )
    return _as_array(value["array"], index), int(rate)


def _read_file(soundfile: Any, value: str | os.PathLike[str] | bytes, index: int) -> tuple[np.ndarray, int]:
    policy = input_policy.current()
    if isinstance(value, bytes):
        source: Any = io.BytesIO(value)
        name = f"audio bytes at index {index}"
    else:
        try:
            source = policy.local_file(value, "audio", f"input at index {index}")
        except InvalidInputError as error:
            raise InvalidAudioError(str(error)) from None
        name = f"audio file {str(source)!r} (input at index {index})"
    try:
        info = soundfile.info(source)
        _check_audio_limits(info, policy, name)
        if isinstance(source, io.BytesIO):
            source.seek(0)
        array, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        if isinstance(error, InvalidAudioError):
            raise
        message = f"{name} is corrupt, truncated or in a format libsndfile cannot read: {error}"
        raise InvalidAudioError(message) from error
    if array.shape[0] == 0:
        raise InvalidAudioError(f"{name} holds no samples")
    return np.asarray(array.T), int(rate)  # soundfile gives (samples, channels)


def _check_audio_limits(info: Any, policy: input_policy.InputPolicy, name: str) -> None:
    """Refuse, from the file's header, audio the policy does not take: its format, or more seconds or
    decoded samples than it allows."""
    if policy.audio_formats is not None and info.format not in policy.audio_formats:
        accepted = ", ".join(sorted(policy.audio_formats))
        raise InvalidAudioError(f"{name} is {info.format} audio; accepted formats: {accepted}")
    if policy.max_audio_seconds is None:
        return
    seconds = info.frames / info.samplerate if info.samplerate > 0 else float("inf")
    samples = info.frames * info.channels
    most = policy.max_audio_seconds * input_policy.AUDIO_SAMPLES_PER_SECOND
    if seconds > policy.max_audio_seconds or samples > most:
        raise InvalidAudioError(
            f"{name} holds {seconds:.1f} s in {info.channels} channels at {info.samplerate} Hz; the limit "
            f"is {policy.max_audio_seconds:g} s of at most two 48 kHz channels (send a shorter clip)"
        )


def _as_array(value: Any, index: int) -> np.ndarray:
    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu().float().numpy()
    if not isinstance(value, np.ndarray):
        if isinstance(value, (list, tuple)):
            value = np.asarray(value)
        else:
            raise InvalidInputError(
                f"audio at index {index} is a {type(value).__name__}; pass a file path, a numpy array, a "
                "torch tensor or {'array': waveform, 'sampling_rate': rate}"
            )
    if value.dtype.kind not in "fiu":
        raise InvalidAudioError(f"audio array at index {index} has dtype {value.dtype}; expected numbers")
    return np.asarray(value)


def _mono(array: np.ndarray, index: int) -> np.ndarray:
    """Average the channels of a 1-D or 2-D array into one float32 waveform."""
    if array.ndim not in (1, 2):
        raise InvalidAudioError(
            f"audio array at index {index} has shape {array.shape}; expected (samples,) or "
            "(channels, samples)"
        )
    if array.size == 0:
        raise InvalidAudioError(f"audio at index {index} has no samples (shape {array.shape})")
    if array.dtype.kind == "u":
        raise InvalidAudioError(f"audio array at index {index} is unsigned; pass float or signed PCM samples")
    if array.dtype.kind == "i":  # integer PCM: scale to [-1, 1) as soundfile does
        array = array.astype(np.float32) / float(-np.iinfo(array.dtype).min)
    array = array.astype(np.float32, copy=False)
    if array.ndim == 2:
        channels_first = array.shape[0] <= array.shape[1]
        if min(array.shape) > MAX_CHANNELS:
            raise InvalidAudioError(
                f"audio array at index {index} has shape {array.shape}; a 2-D array needs a channel "
                f"axis of at most {MAX_CHANNELS}"
            )
        array = array.mean(axis=0 if channels_first else 1)
    if not np.isfinite(array).all():
        raise InvalidAudioError(f"audio at index {index} holds NaN or infinite samples")
    return array
