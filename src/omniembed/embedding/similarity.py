"""Similarity functions between embeddings: a full matrix, or one score per row pair.

Distances are returned negated (``-euclidean``, ``-manhattan``), so that for every function a
higher score means more similar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, TypeAlias

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional

SimilarityName = Literal["cosine", "dot", "euclidean", "manhattan"]
ArrayLike: TypeAlias = (
    Tensor | np.ndarray | Sequence[Tensor] | Sequence[np.ndarray] | Sequence[Sequence[float]]
)
SimilarityFn = Callable[[ArrayLike, ArrayLike], Tensor]


def as_matrix(embeddings: ArrayLike) -> Tensor:
    """Return ``embeddings`` as a 2-D floating-point tensor (one row per embedding)."""
    if isinstance(embeddings, Tensor):
        tensor = embeddings
    elif isinstance(embeddings, np.ndarray):
        tensor = torch.from_numpy(embeddings)
    elif len(embeddings) and isinstance(embeddings[0], Tensor):
        tensor = torch.stack(list(embeddings))  # type: ignore[arg-type]
    else:
        tensor = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float32)
    return tensor.unsqueeze(0) if tensor.dim() == 1 else tensor


def cos_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Cosine similarity of every row of ``a`` with every row of ``b``.

    >>> cos_sim([[1.0, 0.0]], [[1.0, 0.0], [0.0, 2.0]])
    tensor([[1., 0.]])
    """
    return functional.normalize(as_matrix(a), dim=1) @ functional.normalize(as_matrix(b), dim=1).T


def dot_score(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Dot product of every row of ``a`` with every row of ``b``."""
    return as_matrix(a) @ as_matrix(b).T


def euclidean_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Negative Euclidean distance of every row of ``a`` to every row of ``b``."""
    return -torch.cdist(as_matrix(a), as_matrix(b), p=2.0)


def manhattan_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Negative Manhattan distance of every row of ``a`` to every row of ``b``."""
    return -torch.cdist(as_matrix(a), as_matrix(b), p=1.0)


def pairwise_cos_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Cosine similarity of ``a[i]`` with ``b[i]`` for each row ``i``."""
    return functional.cosine_similarity(as_matrix(a), as_matrix(b), dim=1, eps=1e-12)


def pairwise_dot_score(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Dot product of ``a[i]`` with ``b[i]`` for each row ``i``."""
    return (as_matrix(a) * as_matrix(b)).sum(dim=-1)


def pairwise_euclidean_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Negative Euclidean distance between ``a[i]`` and ``b[i]`` for each row ``i``."""
    return -torch.sqrt(((as_matrix(a) - as_matrix(b)) ** 2).sum(dim=-1))


def pairwise_manhattan_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Negative Manhattan distance between ``a[i]`` and ``b[i]`` for each row ``i``."""
    return -(as_matrix(a) - as_matrix(b)).abs().sum(dim=-1)


SIMILARITY_FUNCTIONS: dict[str, tuple[SimilarityFn, SimilarityFn]] = {
    "cosine": (cos_sim, pairwise_cos_sim),
    "dot": (dot_score, pairwise_dot_score),
    "euclidean": (euclidean_sim, pairwise_euclidean_sim),
    "manhattan": (manhattan_sim, pairwise_manhattan_sim),
}


def similarity_functions(name: str) -> tuple[SimilarityFn, SimilarityFn]:
    """Return the (matrix, pairwise) functions for a similarity name."""
    try:
        return SIMILARITY_FUNCTIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown similarity function {name!r}; use one of {sorted(SIMILARITY_FUNCTIONS)}"
        ) from None
