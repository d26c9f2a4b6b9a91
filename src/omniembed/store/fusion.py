"""Moved to :mod:`omniembed.retrieval.fusion`; this path keeps working and warns."""

from omniembed._moved import warn_moved
from omniembed.retrieval.fusion import FUSIONS, Fusion, fuse, normalise

__all__ = ["FUSIONS", "Fusion", "fuse", "normalise"]
warn_moved("omniembed.store.fusion", "omniembed.retrieval.fusion")
