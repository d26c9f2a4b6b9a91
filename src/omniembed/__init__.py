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
    InvalidAudioError,
    InvalidImageError,
    InvalidInputError,
    InvalidVideoError,
    MissingExtraError,
    ModelFormatError,
    ModelNotFoundError,
    ObjectNotFoundError,
    OmniembedError,
    PoolWorkerError,
    UnsupportedModalityError,
)

if TYPE_CHECKING:
    from omniembed.cross_encoder import CrossEncoder
    from omniembed.embedder import EmbeddingModel
    from omniembed.encoder import SentenceTransformer
    from omniembed.multi_vector import MultiVectorEncoder
    from omniembed.multi_vector_vision import VisionMultiVectorEncoder
    from omniembed.paired import PairedEncoder
    from omniembed.quantize import quantize_embeddings
    from omniembed.store import (
        BM25Config,
        DataObject,
        Filter,
        IndexConfig,
        Rerank,
        SelfProvided,
        Vectorizer,
        connect,
    )
    from omniembed.zero_shot import zero_shot_classify

_LAZY = {
    "CrossEncoder": "omniembed.cross_encoder",
    "MultiVectorEncoder": "omniembed.multi_vector",
    "SentenceTransformer": "omniembed.encoder",
    "quantize_embeddings": "omniembed.quantize",
    "EmbeddingModel": "omniembed.embedder",
    "PairedEncoder": "omniembed.paired",
    "zero_shot_classify": "omniembed.zero_shot",
    "VisionMultiVectorEncoder": "omniembed.multi_vector_vision",
    **dict.fromkeys(
        [
            "BM25Config",
            "DataObject",
            "Filter",
            "IndexConfig",
            "Rerank",
            "SelfProvided",
            "Vectorizer",
            "connect",
        ],
        "omniembed.store",
    ),
}

__all__ = [
    "BM25Config",
    "CollectionExistsError",
    "CollectionNotFoundError",
    "CrossEncoder",
    "DataObject",
    "DatabaseLockedError",
    "EmbeddingModel",
    "Filter",
    "IndexConfig",
    "InvalidAudioError",
    "InvalidImageError",
    "InvalidInputError",
    "InvalidVideoError",
    "MissingExtraError",
    "ModelFormatError",
    "ModelNotFoundError",
    "MultiVectorEncoder",
    "ObjectNotFoundError",
    "OmniembedError",
    "PairedEncoder",
    "PoolWorkerError",
    "Rerank",
    "SelfProvided",
    "SentenceTransformer",
    "UnsupportedModalityError",
    "Vectorizer",
    "VisionMultiVectorEncoder",
    "__version__",
    "connect",
    "quantize_embeddings",
    "zero_shot_classify",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'omniembed' has no attribute {name!r}")
