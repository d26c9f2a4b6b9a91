"""Moved to :mod:`omniembed.late_interaction.index`; this path keeps working and warns."""

from omniembed._moved import warn_moved
from omniembed.late_interaction.index import FORMAT_VERSION, LateInteractionIndex

__all__ = ["FORMAT_VERSION", "LateInteractionIndex"]
warn_moved("omniembed.late_interaction_index", "omniembed.late_interaction.index")
