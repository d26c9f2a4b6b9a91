"""Moved to :mod:`omniembed.retrieval.search`; this path keeps working and warns."""

from omniembed._moved import warn_moved
from omniembed.retrieval.search import Hit, QueryEncoder, Reranker, retrieve_and_rerank, semantic_search

__all__ = ["Hit", "QueryEncoder", "Reranker", "retrieve_and_rerank", "semantic_search"]
warn_moved("omniembed.search", "omniembed.retrieval.search")
