"""Media sent as text: plain base64, or a data URL such as ``data:image/png;base64,...``.

>>> decode("data:image/png;base64,aGk=", "image")
b'hi'
>>> is_data_url("data:audio/wav;base64,aGk="), is_data_url("a photo of a cat")
(True, False)
"""

from __future__ import annotations

import base64
import binascii
import re

from omniembed.errors import InvalidInputError

_DATA_URL = re.compile(
    r"data:(?:[\w.+-]+/[\w.+-]+)?(?:;[\w.+-]+=[\w.+-]+)*;base64,", re.ASCII | re.IGNORECASE
)


def is_data_url(value: str) -> bool:
    """Whether a string starts as a base64 data URL (``data:<type>;base64,``)."""
    return _DATA_URL.match(value) is not None


def decode(value: str, what: str) -> bytes:
    """The bytes of a data URL or plain base64 string, or ``InvalidInputError`` naming ``what``."""
    match = _DATA_URL.match(value)
    payload = value[match.end() :] if match else value
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(
            f"{what} is not base64 or a base64 data URL ('data:image/png;base64,...')"
        ) from None


def encode(data: bytes) -> str:
    """Plain base64 of ``data``, the form media properties are stored in."""
    return base64.b64encode(data).decode("ascii")
