"""What ``SentenceTransformer`` and ``PairedEncoder`` implement alike: scoring and the query and
document prompts of ``EmbeddingModel``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from omniembed.embedding.similarity import ArrayLike, similarity_functions

DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")
"""Prompt names ``encode_document`` looks for, in this order."""


class ScoringAndPrompts:
    """The part of ``EmbeddingModel`` that ``SentenceTransformer`` and ``PairedEncoder`` implement alike:
    scoring with ``similarity_fn_name`` and ``encode`` with the query or document prompt."""

    _similarity: Callable[[ArrayLike, ArrayLike], Tensor]
    _similarity_pairwise: Callable[[ArrayLike, ArrayLike], Tensor]
    _similarity_fn_name: str

    @property
    def similarity_fn_name(self) -> str:
        """The name of the function ``similarity`` uses."""
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str) -> None:
        self._similarity, self._similarity_pairwise = similarity_functions(value)
        self._similarity_fn_name = value

    def similarity(self, a: ArrayLike, b: ArrayLike) -> Tensor:
        """Score every embedding in ``a`` against every one in ``b`` with ``similarity_fn_name``."""
        return self._similarity(a, b)

    def similarity_pairwise(self, a: ArrayLike, b: ArrayLike) -> Tensor:
        """Score ``a[i]`` against ``b[i]`` for each row ``i``."""
        return self._similarity_pairwise(a, b)

    def encode_query(self, inputs: Any, **kwargs: Any) -> Any:
        """``encode`` with the ``query`` prompt (unless a prompt is given); it applies to texts only."""
        model: Any = self  # the class this is mixed into has ``prompts`` and ``encode``
        if kwargs.get("prompt") is None and kwargs.get("prompt_name") is None and "query" in model.prompts:
            kwargs["prompt_name"] = "query"
        if _has_router(model):
            kwargs.setdefault("task", "query")
        return model.encode(inputs, **kwargs)

    def encode_document(self, inputs: Any, **kwargs: Any) -> Any:
        """``encode`` with the ``document``, ``passage`` or ``corpus`` prompt, the first there is (unless a
        prompt is given); it applies to texts only."""
        model: Any = self  # the class this is mixed into has ``prompts`` and ``encode``
        if kwargs.get("prompt") is None and kwargs.get("prompt_name") is None:
            name = next((name for name in DOCUMENT_PROMPT_NAMES if name in model.prompts), None)
            kwargs["prompt_name"] = name
        if _has_router(model):
            kwargs.setdefault("task", "document")
        return model.encode(inputs, **kwargs)


def _has_router(model: Any) -> bool:
    """Whether a model's pipeline starts with a Router (whose routes ``task=`` picks)."""
    from omniembed.modules.router import Router

    first = next(iter(model.children()), None) if hasattr(model, "children") else None
    return isinstance(first, Router)
