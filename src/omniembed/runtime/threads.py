"""Limit how many CPU threads a forward pass uses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def check_num_threads(num_threads: int | None) -> int | None:
    """Return ``num_threads`` if it is ``None`` or a positive integer, else raise ``ValueError``.

    >>> check_num_threads(2)
    2
    >>> check_num_threads(0)
    Traceback (most recent call last):
    ...
    ValueError: num_threads must be a positive integer or None (all cores), got 0
    """
    if num_threads is None:
        return None
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer or None (all cores), got {num_threads!r}")
    return num_threads


@contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run the block with torch's intra-op pool at ``num_threads`` (unchanged when ``None``).

    torch's setting is process-wide, so it is put back afterwards: a model with a limit does not
    slow down other models in the same process.
    """
    if num_threads is None or num_threads == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
