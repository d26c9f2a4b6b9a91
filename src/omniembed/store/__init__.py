"""The embedded vectorizing database: collections of objects searched by vector, keyword or both."""

from __future__ import annotations

from omniembed.store.collection import Collection, Rerank
from omniembed.store.config import CollectionConfig, IndexConfig, VectorConfig
from omniembed.store.data import DataObject
from omniembed.store.database import Collections, Database, SelfProvided, connect
from omniembed.store.filters import Filter
from omniembed.store.pdf import PAGE_PROPERTIES, pdf_pages
from omniembed.store.results import BatchResult, Object, QueryResult
from omniembed.store.schema import BM25Config, Property
from omniembed.store.vectorizer import Vectorizer

__all__ = [
    "PAGE_PROPERTIES",
    "BM25Config",
    "BatchResult",
    "Collection",
    "CollectionConfig",
    "Collections",
    "DataObject",
    "Database",
    "Filter",
    "IndexConfig",
    "Object",
    "Property",
    "QueryResult",
    "Rerank",
    "SelfProvided",
    "VectorConfig",
    "Vectorizer",
    "connect",
    "pdf_pages",
]
