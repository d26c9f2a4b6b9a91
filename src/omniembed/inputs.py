"""Check what callers hand to ``encode`` and turn it into a batch the model can take."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from omniembed.errors import InvalidInputError


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


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    text = repr(value)
    shown = text if len(text) <= 60 else text[:57] + "..."
    return f"a {type(value).__name__} ({shown})"
