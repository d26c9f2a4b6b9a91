"""Moved to :mod:`omniembed.store.engines.keyword`; this path keeps working and warns."""

from omniembed._moved import warn_moved
from omniembed.store.engines.keyword import KeywordIndex, text_of, tokenize

__all__ = ["KeywordIndex", "text_of", "tokenize"]
warn_moved("omniembed.store.keyword", "omniembed.store.engines.keyword")
