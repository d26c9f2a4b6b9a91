"""Decode image inputs (PIL images, bytes, files, URLs, data URIs, arrays, tensors) into RGB Pillow images.

Pillow is an optional dependency (the ``image`` extra); it is imported only when an image is loaded.
"""

from __future__ import annotations

import io
import os
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from omniembed.errors import InvalidImageError, InvalidInputError, import_extra
from omniembed.inputs import data_urls
from omniembed.inputs import policy as input_policy
from omniembed.inputs.data_urls import is_data_url


def require_pillow() -> Any:
    """Import and return ``PIL.Image``, or explain how to install it.

    Raises:
        MissingExtraError: Pillow is not installed.
    """
    return import_extra(
        "PIL.Image",
        "encoding images needs Pillow, which is not installed; install it with "
        "pip install 'omniembed[image]'",
    )


def load_image(value: Any, *, index: int, allow_urls: bool = True) -> Any:
    """Return ``value`` as an RGB ``PIL.Image.Image``, with EXIF orientation applied.

    What a string may name, and how large an image may be, follow the current
    :mod:`~omniembed.inputs.policy` (the Python API's allows files, URLs and Pillow's pixel limit).

    Args:
        value: a PIL image, the file's bytes, a path (``str`` or ``Path``), an http(s) URL, a
            ``data:image/...`` URI, a numpy array (H, W, C) or a torch tensor (C, H, W), ``uint8`` or
            float in [0, 1].
        index: the input's position, named in error messages.
        allow_urls: fetch http(s) URLs; when off, a URL is refused.

    Raises:
        InvalidImageError: the file is missing, corrupt, in a format the policy refuses, or holds more
            pixels than the policy's limit, or the URL cannot be fetched or is not allowed.
        MissingExtraError: Pillow is not installed.
    """
    image_module = require_pillow()
    if isinstance(value, image_module.Image):
        return to_rgb(value, f"image at index {index}")
    if isinstance(value, (np.ndarray,)) or type(value).__module__.startswith("torch"):
        return to_rgb(image_module.fromarray(_hwc_uint8(value, index)), f"array at index {index}")
    if isinstance(value, bytes):
        return decode_image(value, f"image bytes at index {index}")
    if isinstance(value, str) and is_data_url(value):
        return decode_image(_data_url_bytes(value, index), f"data URI at index {index}")
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return decode_image(_fetch(value, index, allow_urls), f"image URL at index {index}")
    if isinstance(value, (str, os.PathLike)):
        policy = input_policy.current()
        try:
            path = policy.local_file(value, "image", f"input at index {index}")
        except InvalidInputError as error:
            raise InvalidImageError(str(error)) from None
        return decode_image(path, f"image file {str(path)!r} (index {index})")
    raise InvalidInputError(f"input at index {index} is a {type(value).__name__}, which is not an image")


def load_images_in(kind: Any, value: Any, *, index: int, allow_urls: bool = True) -> Any:
    """Load the images an input of this modality holds: the input itself, a dict's ``"image"``, or a
    conversation's ``{"type": "image", "image": ...}`` parts; other inputs come back unchanged."""
    if kind == "image":
        return load_image(value, index=index, allow_urls=allow_urls)
    if isinstance(kind, tuple) and "image" in kind:
        return {**value, "image": load_image(value["image"], index=index, allow_urls=allow_urls)}
    if kind == "message":
        conversation = [value] if isinstance(value, dict) else list(value)
        return [_load_message_images(message, index, allow_urls) for message in conversation]
    return value


def _load_message_images(message: Any, index: int, allow_urls: bool) -> Any:
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return message
    parts = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "image":
            source = part.get("image", part.get("url", part.get("path")))
            part = {"type": "image", "image": load_image(source, index=index, allow_urls=allow_urls)}
        parts.append(part)
    return {**message, "content": parts}


def to_rgb(image: Any, source: str) -> Any:
    """Apply EXIF orientation, then convert to RGB with transparency composited onto white.

    White is what ``transformers``' image processors composite onto, so an RGBA input embeds the same
    whether it is converted here or there.
    """
    from PIL import Image, ImageOps

    try:
        image = ImageOps.exif_transpose(image)
        if image.mode == "RGB":
            return image
        if "A" in image.getbands() or image.info.get("transparency") is not None:
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(background, rgba).convert("RGB")
        return image.convert("RGB")
    except (OSError, ValueError, SyntaxError) as error:
        raise InvalidImageError(f"{source} cannot be decoded: {error}") from error


def decode_image(source: Path | bytes, description: str) -> Any:
    """Open and decode an image file or byte string as RGB, checking the current policy's formats and
    pixel limits before any pixel is decoded, and turning Pillow's failures into one error."""
    from PIL import Image, UnidentifiedImageError

    policy = input_policy.current()
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    formats = sorted(policy.image_formats) if policy.image_formats is not None else None
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice its limit; refuse from the limit on.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(handle, formats=formats) as image:
                policy.check_pixels(image.size, description)
                image.load()
                return to_rgb(image, description)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InvalidImageError(
            f"{description} is refused as a possible decompression bomb: {error}; raise "
            "PIL.Image.MAX_IMAGE_PIXELS if you trust the file"
        ) from error
    except InvalidInputError as error:
        raise InvalidImageError(str(error)) from None
    except UnidentifiedImageError:
        accepted = f" (accepted: {', '.join(formats)})" if formats else ""
        raise InvalidImageError(f"{description} is not an image format this reader takes{accepted}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise InvalidImageError(f"{description} is corrupt or truncated: {error}") from error


def _fetch(url: str, index: int, allow_urls: bool) -> bytes:
    policy = input_policy.current()
    if policy.remote and not policy.allows_url(url):
        raise InvalidImageError(f"input at index {index} is a URL ({input_policy.REMOTE_HINT})")
    if not (allow_urls and policy.allows_url(url)):
        raise InvalidImageError(
            f"input at index {index} is a URL ({url}), and fetching URLs is turned off for this model; "
            "download the image yourself and pass the file or a PIL image, or set allow_urls=True"
        )
    request = urllib.request.Request(url, headers={"User-Agent": "omniembed"})
    try:
        with urllib.request.urlopen(request, timeout=policy.url_timeout) as response:
            data: bytes = response.read(policy.max_url_bytes + 1)
    except (OSError, ValueError) as error:
        if policy.remote:  # what the host answered would map the network behind the server
            raise InvalidImageError(f"could not fetch the image URL at index {index}") from None
        raise InvalidImageError(f"could not fetch the image URL {url} (index {index}): {error}") from error
    if len(data) > policy.max_url_bytes:
        raise InvalidImageError(
            f"the image URL at index {index} returned more than {policy.max_url_bytes} bytes"
        )
    return data


def _data_url_bytes(uri: str, index: int) -> bytes:
    try:
        return data_urls.decode(uri, f"data URI at index {index}")
    except InvalidInputError as error:
        raise InvalidImageError(str(error)) from None


def _hwc_uint8(value: Any, index: int) -> np.ndarray:
    """Return an array or tensor as (H, W, 3 or 4) uint8; tensors are read as (C, H, W)."""
    is_tensor = not isinstance(value, np.ndarray)
    array = value.detach().cpu().numpy() if is_tensor else np.asarray(value)
    if array.ndim != 3:
        raise InvalidInputError(f"image array at index {index} has shape {array.shape}; expected 3 dims")
    channels_first = array.shape[0] in (1, 3, 4) and (is_tensor or array.shape[-1] not in (1, 3, 4))
    if channels_first:
        array = np.moveaxis(array, 0, -1)
    if array.shape[-1] not in (1, 3, 4):
        raise InvalidInputError(
            f"image array at index {index} has shape {array.shape}; expected (H, W, C) for numpy or "
            "(C, H, W) for tensors, with 1, 3 or 4 channels"
        )
    if array.dtype != np.uint8:
        array = _float_to_uint8(array, index)
    return array[..., 0] if array.shape[-1] == 1 else array


def _float_to_uint8(array: np.ndarray, index: int) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidInputError(
            f"image array at index {index} has dtype {array.dtype}; use uint8 (0-255) or float (0-1)"
        )
    if not np.isfinite(array).all() or array.min() < 0.0 or array.max() > 1.0:
        raise InvalidInputError(
            f"float image array at index {index} has values outside [0, 1]; scale it to [0, 1] "
            "or pass uint8 values"
        )
    return np.round(array.astype(np.float64) * 255.0).astype(np.uint8)
