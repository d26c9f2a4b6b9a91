"""Images from remote callers: base64 or data URLs only, never URLs or paths on the server."""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import Any

from omniembed.errors import InvalidInputError, MissingExtraError

_DATA_URL = re.compile(r"^data:(image/[A-Za-z0-9.+-]+)?(;[A-Za-z0-9=.+-]+)*;base64,", re.IGNORECASE)


def is_data_url(value: str) -> bool:
    """Whether a string is a ``data:image/...;base64,`` URL."""
    return bool(_DATA_URL.match(value))


def image_bytes(value: str, what: str = "image") -> bytes:
    """Decode a data URL or plain base64 into bytes, or raise ``InvalidInputError`` naming ``what``."""
    payload = _DATA_URL.sub("", value, count=1)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(
            f"{what} is not base64 or a data URL ('data:image/png;base64,...'); the server does not "
            "fetch URLs or read files for remote callers"
        ) from None


def decode_image(value: str, what: str = "image") -> Any:
    """Open a data URL or base64 image with Pillow."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise MissingExtraError("image inputs need Pillow: pip install 'omniembed[image]'") from None
    data = image_bytes(value, what)
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as error:
        raise InvalidInputError(f"{what} is not an image Pillow can read: {error}") from None
    return image
