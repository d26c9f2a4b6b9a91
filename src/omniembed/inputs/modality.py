"""Check what callers hand to ``encode``: detect each input's modality and turn it into a batch."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np

from omniembed.errors import InvalidImageError, InvalidInputError, UnsupportedModalityError
from omniembed.inputs import policy as input_policy


def text_batch(inputs: Any) -> tuple[list[str], bool]:
    """Return the inputs as a list of strings and whether a single string was given.

    Raises:
        InvalidInputError: an input is not a string; the message names its index and type.

    >>> text_batch("hello")
    (['hello'], True)
    >>> text_batch(["a", None])
    Traceback (most recent call last):
    ...
    omniembed.errors.InvalidInputError: input at index 1 is None; encode takes strings ...
    """
    if isinstance(inputs, str):
        return [inputs], True
    if inputs is None or isinstance(inputs, (bytes, dict)) or not isinstance(inputs, Iterable):
        raise InvalidInputError(
            f"encode takes a string or a list of strings, got {_describe(inputs)}; "
            "wrap a single text as encode('text') or a batch as encode(['a', 'b'])"
        )
    batch = inputs.tolist() if isinstance(inputs, np.ndarray) else list(inputs)
    for index, item in enumerate(batch):
        if not isinstance(item, str):
            raise InvalidInputError(
                f"input at index {index} is {_describe(item)}; encode takes strings for this model "
                f"(convert the value with str() or drop it)"
            )
    return batch, False


def check_text(text: str, what: str) -> str:
    """Return ``text`` if it can be written as UTF-8; a lone surrogate (such as ``"\\ud800"``, which
    JSON can carry) raises ``InvalidInputError`` naming ``what``.

    >>> check_text("caf\\u00e9", "input")
    'café'
    """
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidInputError(
                f"{what} holds a lone surrogate ({text[error.start]!r} at character {error.start}), which "
                "is not text; send valid Unicode"
            ) from None
    return text


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    text = repr(value)
    shown = text if len(text) <= 60 else text[:57] + "..."
    return f"a {type(value).__name__} ({shown})"


Modality = str | tuple[str, ...]
"""``"text"``, ``"image"``, ``"audio"``, ``"video"``, ``"message"``, or a sorted tuple of the
modalities in one multimodal dict, such as ``("image", "text")``."""

MULTIMODAL_KEYS = ("audio", "image", "text", "video")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg")


def detect_modality(value: Any, index: int, supported: list[Modality]) -> Modality:
    """Return the modality of one input.

    Strings are text unless the model takes images and the string is an image URL, a
    ``data:image/`` URI or an existing image file; a ``Path`` is always a file. Under a remote
    :mod:`~omniembed.inputs.policy`, a string is text unless it names a file or URL the policy allows.

    Raises:
        InvalidInputError: the input fits no modality; the message names its index and type.

    >>> detect_modality("a photo of a cat", 0, ["text", "image"])
    'text'
    >>> detect_modality({"text": "a cat", "image": "cat.png"}, 0, ["text"])
    ('image', 'text')
    """
    if isinstance(value, str) and input_policy.current().remote:
        return _remote_string_modality(value, supported)
    media = _media_path_modality(value, index, supported)
    if media is not None:
        return media
    if isinstance(value, str):
        if "image" not in supported:
            return "text"
        if _missing_image_path(value):
            raise InvalidImageError(
                f"image file {value!r} (input at index {index}) does not exist; check the path "
                "(to embed the string as text, use a model input without a path separator)"
            )
        return "image" if looks_like_image(value) else "text"
    if isinstance(value, os.PathLike):
        return "image"
    if _is_pil_image(value):
        return "image"
    if isinstance(value, dict):
        return _dict_modality(value, index)
    if isinstance(value, list) and value and all(_is_message(item) for item in value):
        return "message"
    if isinstance(value, np.ndarray) or type(value).__module__ == "torch":
        dims = int(value.ndim)
        kinds = {1: "audio", 2: "audio", 3: "image", 4: "video"}
        if dims in kinds:
            return kinds[dims]
        raise InvalidInputError(f"input at index {index} is an array with {dims} dims; it fits no modality")
    raise InvalidInputError(
        f"input at index {index} is {_describe(value)}; encode takes strings, images (PIL, path, URL, "
        "array, tensor), dicts with text/image/audio/video keys, or chat messages"
    )


def _remote_string_modality(text: str, supported: list[Modality]) -> Modality:
    """A remote caller's string: an allowed file or URL with a media extension, else text (a missing or
    refused path is text too, so the answer never tells which paths exist)."""
    policy = input_policy.current()
    lowered = text.lower()
    for kind, extensions in (
        ("image", IMAGE_EXTENSIONS),
        ("audio", AUDIO_EXTENSIONS),
        ("video", VIDEO_EXTENSIONS),
    ):
        if kind not in supported or len(text) > 4096 or not lowered.endswith(extensions):
            continue
        if kind == "image" and policy.allows_url(text):
            return kind
        if policy.allows_file(text):
            return kind
    return "text"


def _media_path_modality(value: Any, index: int, supported: list[Modality]) -> Modality | None:
    """``"audio"`` or ``"video"`` for a path (or path-like string) with such an extension, when the model
    takes that modality; ``None`` otherwise."""
    if not isinstance(value, (str, os.PathLike)):
        return None
    name = str(value)
    for kind, extensions in (("audio", AUDIO_EXTENSIONS), ("video", VIDEO_EXTENSIONS)):
        if kind not in supported or not name.lower().endswith(extensions):
            continue
        if isinstance(value, os.PathLike) or os.path.isfile(name):
            return kind
        if not any(c.isspace() for c in name) and ("/" in name or os.sep in name):
            return kind  # a path that names no file: the loader reports it as missing
    return None


def looks_like_image(text: str) -> bool:
    """Whether a string names an image: an http(s) URL or existing file with an image extension, or a
    ``data:image/`` URI."""
    if text.startswith("data:image/"):
        return True
    if "\n" in text or len(text) > 4096 or not text.lower().endswith(IMAGE_EXTENSIONS):
        return False
    if text.startswith(("http://", "https://")):
        return " " not in text
    return os.path.isfile(text)


def _missing_image_path(text: str) -> bool:
    """A string that reads as a file path to an image (a separator, an image extension, no spaces) but
    names no file: more likely a wrong path than a text to embed."""
    if text.startswith(("http://", "https://", "data:")) or any(c.isspace() for c in text):
        return False
    has_separator = "/" in text or os.sep in text
    return has_separator and text.lower().endswith(IMAGE_EXTENSIONS) and not os.path.exists(text)


def input_batch(inputs: Any, supported: list[Modality]) -> tuple[list[Any], list[Modality], bool]:
    """Return the inputs as a list, the modality of each, and whether a single input was given.

    Raises:
        InvalidInputError: an input fits no modality.
        UnsupportedModalityError: an input's modality is not one of ``supported``; the message names
            the input's index, its modality and the model's modalities.
    """
    single = _is_single(inputs)
    if not single and (inputs is None or isinstance(inputs, bytes) or not isinstance(inputs, Iterable)):
        raise InvalidInputError(
            f"encode takes one input or a list of inputs, got {_describe(inputs)}; "
            "wrap a single text as encode('text') or a batch as encode(['a', 'b'])"
        )
    batch = [inputs] if single else (inputs.tolist() if _is_string_array(inputs) else list(inputs))
    kinds = [detect_modality(item, index, supported) for index, item in enumerate(batch)]
    for index, kind in enumerate(kinds):
        if kind not in supported:
            raise UnsupportedModalityError(_unsupported(index, kind, supported))
    return batch, kinds, single


def _unsupported(index: int, kind: Modality, supported: list[Modality]) -> str:
    shown = "+".join(kind) if isinstance(kind, tuple) else kind
    names = ", ".join("+".join(m) if isinstance(m, tuple) else m for m in supported)
    hint = "encode each part separately" if isinstance(kind, tuple) else "use a model that embeds it"
    if kind == "image" and supported == ["text"]:
        hint = "use a model that embeds images, such as a CLIP model"
    elif kind == "audio" and "image" in supported:
        hint = "a 1-D or 2-D array reads as audio; pass a grayscale image as (H, W, 1) or a PIL image"
    elif kind == "message":
        hint = "chat messages need a model with a chat template; pass the text or image itself"
    return f"input at index {index} is {shown}, which this model does not embed (it takes: {names}); {hint}"


def _is_single(inputs: Any) -> bool:
    if isinstance(inputs, (str, os.PathLike, dict)) or _is_pil_image(inputs):
        return True
    if isinstance(inputs, list) and inputs and all(_is_message(item) for item in inputs):
        return True  # one conversation
    if isinstance(inputs, np.ndarray) or type(inputs).__module__ == "torch":
        return not _is_string_array(inputs) and int(inputs.ndim) in (2, 3)
    return False


def _is_string_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind in "OUS"


def _is_pil_image(value: Any) -> bool:
    # Look PIL up without importing it: a PIL image can only exist once PIL has been imported.
    pil_image = sys.modules.get("PIL.Image")
    return pil_image is not None and isinstance(value, pil_image.Image)


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and "role" in value and "content" in value


def _dict_modality(value: dict[Any, Any], index: int) -> Modality:
    if _is_message(value):
        return "message"
    if "array" in value and "sampling_rate" in value:
        return "audio"
    if "array" in value and "video_metadata" in value:
        return "video"
    unknown = sorted(str(key) for key in value if key not in MULTIMODAL_KEYS)
    if unknown or not value:
        raise InvalidInputError(
            f"input at index {index} is a dict with keys {sorted(map(str, value))}; a multimodal input "
            f"uses the keys {list(MULTIMODAL_KEYS)}, a chat message 'role' and 'content'"
        )
    if "text" in value and not isinstance(value["text"], str):
        raise InvalidInputError(f"input at index {index} has a 'text' that is {_describe(value['text'])}")
    keys = tuple(sorted(value))
    return keys[0] if len(keys) == 1 else keys


def unwrap(value: Any, kind: Modality) -> Any:
    """Return the payload of a one-key multimodal dict (``{"image": x}`` gives ``x``); else ``value``."""
    if isinstance(value, dict) and isinstance(kind, str) and kind in value and len(value) == 1:
        return value[kind]
    return value
