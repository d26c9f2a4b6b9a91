"""omniembed: embeddings, reranking and a vectorizing embedded database in one package.

Heavy submodules (torch, transformers) load on first use, so ``import omniembed`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from omniembed._version import __version__
from omniembed.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    DatabaseLockedError,
    InvalidInputError,
    MissingExtraError,
    ModelFormatError,
    ModelNotFoundError,
    ObjectNotFoundError,
    OmniembedError,
)

if TYPE_CHECKING:
    from omniembed.encoder import SentenceTransformer
    from omniembed.quantize import quantize_embeddings
    from omniembed.store import BM25Config, DataObject, Filter, IndexConfig, SelfProvided, Vectorizer, connect

_LAZY = {
    "SentenceTransformer": "omniembed.encoder",
    "quantize_embeddings": "omniembed.quantize",
    **dict.fromkeys(
        ["BM25Config", "DataObject", "Filter", "IndexConfig", "SelfProvided", "Vectorizer", "connect"],
        "omniembed.store",
    ),
}

__all__ = [
    "BM25Config",
    "CollectionExistsError",
    "CollectionNotFoundError",
    "DataObject",
    "DatabaseLockedError",
    "Filter",
    "IndexConfig",
    "InvalidInputError",
    "MissingExtraError",
    "ModelFormatError",
    "ModelNotFoundError",
    "ObjectNotFoundError",
    "OmniembedError",
    "SelfProvided",
    "SentenceTransformer",
    "Vectorizer",
    "__version__",
    "connect",
    "quantize_embeddings",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'omniembed' has no attribute {name!r}")
