"""Which adjacent parts (in-memory chunks, saved segments) to merge, by size tiers.

A part of ``size`` sits in tier ``floor(log_factor(size))``. Once a run of adjacent parts of tier ``t``
or below holds ``factor`` parts of tier ``t`` itself, the run merges into one part (lowest tiers
first). Each merge lifts what it copies by at least one tier, so each posting is copied at most about
``log_factor(total / first part)`` times over its life (merging costs in proportion to what was
added), and fewer than ``factor`` parts of each tier lie between larger ones, so parts stay few.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

FACTOR = 4


def tier(size: int, factor: int = FACTOR) -> int:
    """The tier of a part holding ``size`` items.

    >>> tier(1), tier(3), tier(4), tier(50_000)
    (0, 0, 1, 7)
    """
    return int(math.log(max(size, 1), factor) + 1e-9)


def plan(sizes: Sequence[int], factor: int = FACTOR) -> tuple[int, int] | None:
    """The ``[start, end)`` run of adjacent parts to merge next, or ``None``.

    >>> plan([100, 3, 2, 3, 1]), plan([100, 3, 2, 3]), plan([20, 20, 5, 20, 20])
    ((1, 5), None, (0, 5))
    """
    tiers = [tier(size, factor) for size in sizes]
    for limit in sorted(set(tiers)):
        start, at_limit = 0, 0
        for i, t in enumerate([*tiers, math.inf]):
            if t > limit:
                if at_limit >= factor:
                    return start, i
                start, at_limit = i + 1, 0
            elif t == limit:
                at_limit += 1
    return None
