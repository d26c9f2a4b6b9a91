"""A segment: the postings and term counts of every field for a set of objects, immutable once saved.

The objects added between two saves become one segment; saved segments merge by size tiers
(:mod:`.tiers`), dropping the postings of deleted objects as they do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omniembed.store.engines.keyword.postings import Postings, merge_postings, smallest


@dataclass
class Segment:
    """Postings per field for objects whose slots lie in ``[lo, hi)``; ``lengths[field][slot - lo]``
    is an object's term count (0 for slots the segment does not hold)."""

    lo: int
    hi: int
    docs: int  # objects added into it (deleted ones included): its size for merging
    postings: dict[str, Postings]
    lengths: dict[str, np.ndarray]
    path: Path | None = None  # its file, once saved
    entry: dict[str, Any] | None = field(default=None, repr=False)  # its manifest entry, once saved
    buffer: Any = field(default=None, repr=False)  # the memory map its arrays view


def narrow_lengths(lengths: np.ndarray) -> np.ndarray:
    """Term counts in the smallest unsigned type that holds them."""
    return lengths.astype(smallest(lengths, np.uint8))


def merged(segments: Sequence[Segment], alive: np.ndarray) -> Segment:
    """One segment holding the live postings of ``segments`` (given in slot order)."""
    lo, hi = min(s.lo for s in segments), max(s.hi for s in segments)
    postings, lengths = {}, {}
    for name in segments[0].postings:
        postings[name] = merge_postings([s.postings[name] for s in segments], alive)
        combined = np.zeros(hi - lo, dtype=np.uint32)
        for s in segments:  # a slot has its count in one segment only: the others hold 0 there
            view = combined[s.lo - lo : s.hi - lo]
            np.maximum(view, s.lengths[name], out=view)
        lengths[name] = narrow_lengths(combined)
    return Segment(lo, hi, sum(s.docs for s in segments), postings, lengths)
