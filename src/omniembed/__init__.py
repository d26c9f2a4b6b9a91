"""omniembed: embeddings, reranking and a vectorizing embedded database in one package.

Heavy submodules (torch, transformers) load on first use, so ``import omniembed`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from omniembed._version import __version__
from omniembed.errors import (
    InvalidInputError,
    MissingExtraError,
    ModelFormatError,
    ModelNotFoundError,
    OmniembedError,
)

if TYPE_CHECKING:
    from omniembed.cross_encoder import CrossEncoder
    from omniembed.encoder import SentenceTransformer
    from omniembed.multi_vector import MultiVectorEncoder
    from omniembed.quantize import quantize_embeddings

_LAZY = {
    "CrossEncoder": "omniembed.cross_encoder",
    "MultiVectorEncoder": "omniembed.multi_vector",
    "SentenceTransformer": "omniembed.encoder",
    "quantize_embeddings": "omniembed.quantize",
}

__all__ = [
    "CrossEncoder",
    "InvalidInputError",
    "MissingExtraError",
    "ModelFormatError",
    "ModelNotFoundError",
    "MultiVectorEncoder",
    "OmniembedError",
    "SentenceTransformer",
    "__version__",
    "quantize_embeddings",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'omniembed' has no attribute {name!r}")
