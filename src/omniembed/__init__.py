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
    InvalidDocumentError,
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
    from omniembed.embedding.distill import distill_static
    from omniembed.embedding.encoder import SentenceTransformer
    from omniembed.embedding.interface import EmbeddingModel
    from omniembed.embedding.paired import PairedEncoder
    from omniembed.embedding.quantize import quantize_embeddings
    from omniembed.late_interaction.encoder import MultiVectorEncoder
    from omniembed.late_interaction.vision import VisionMultiVectorEncoder
    from omniembed.modules.static_embedding import StaticEmbedding
    from omniembed.rerank.cross_encoder import CrossEncoder
    from omniembed.retrieval.zero_shot import zero_shot_classify
    from omniembed.sparse.encoder import SparseEncoder
    from omniembed.store import (
        PAGE_PROPERTIES,
        BM25Config,
        DataObject,
        Filter,
        IndexConfig,
        Property,
        Rerank,
        SelfProvided,
        Vectorizer,
        connect,
        pdf_pages,
    )

_LAZY = {
    "CrossEncoder": "omniembed.rerank.cross_encoder",
    "MultiVectorEncoder": "omniembed.late_interaction.encoder",
    "SentenceTransformer": "omniembed.embedding.encoder",
    "SparseEncoder": "omniembed.sparse.encoder",
    "quantize_embeddings": "omniembed.embedding.quantize",
    "EmbeddingModel": "omniembed.embedding.interface",
    "PairedEncoder": "omniembed.embedding.paired",
    "zero_shot_classify": "omniembed.retrieval.zero_shot",
    "VisionMultiVectorEncoder": "omniembed.late_interaction.vision",
    "StaticEmbedding": "omniembed.modules.static_embedding",
    "distill_static": "omniembed.embedding.distill",
    **dict.fromkeys(
        [
            "BM25Config",
            "DataObject",
            "Filter",
            "IndexConfig",
            "Property",
            "Rerank",
            "SelfProvided",
            "Vectorizer",
            "connect",
            "PAGE_PROPERTIES",
            "pdf_pages",
        ],
        "omniembed.store",
    ),
}

# Plain string order (a test checks it), not ruff's constants-first order.
__all__ = [  # noqa: RUF022
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
    "InvalidDocumentError",
    "InvalidImageError",
    "InvalidInputError",
    "InvalidVideoError",
    "MissingExtraError",
    "ModelFormatError",
    "ModelNotFoundError",
    "MultiVectorEncoder",
    "ObjectNotFoundError",
    "OmniembedError",
    "PAGE_PROPERTIES",
    "PairedEncoder",
    "PoolWorkerError",
    "Property",
    "Rerank",
    "SelfProvided",
    "SentenceTransformer",
    "SparseEncoder",
    "StaticEmbedding",
    "UnsupportedModalityError",
    "Vectorizer",
    "VisionMultiVectorEncoder",
    "__version__",
    "connect",
    "distill_static",
    "pdf_pages",
    "quantize_embeddings",
    "zero_shot_classify",
]


_SUBPACKAGES = ("distributed",)
"""Subpackages reachable as attributes (``oe.distributed.embed``), imported on first use."""


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return import_module(f"omniembed.{name}")
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'omniembed' has no attribute {name!r}")
