"""Short functions over sparse vectors: top-k pruning, dot and cosine scores, and token decoding."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def select_max_active_dims(embeddings: Tensor, limit: int | None) -> Tensor:
    """Keep the ``limit`` largest weights (by magnitude) of each dense row and zero the rest.

    >>> select_max_active_dims(torch.tensor([[0.1, 3.0, 0.0, 2.0]]), 2)
    tensor([[0., 3., 0., 2.]])
    """
    if limit is None or limit >= embeddings.shape[-1]:
        return embeddings
    _, top = torch.topk(embeddings.abs(), k=limit, dim=-1)
    kept = torch.zeros_like(embeddings)
    kept.scatter_(-1, top, embeddings.gather(-1, top))
    return kept


def _as_matrix(vectors: Tensor) -> Tensor:
    if not isinstance(vectors, Tensor):
        raise TypeError(
            f"expected a tensor of sparse vectors (from SparseEncoder.encode), got {type(vectors).__name__}"
        )
    if vectors.dim() == 1:
        vectors = vectors.unsqueeze(0)
    if vectors.dim() != 2:
        raise ValueError(
            f"expected one vector or a matrix of them, got a tensor of shape {tuple(vectors.shape)}"
        )
    return vectors.coalesce() if vectors.is_sparse else vectors


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Every row of ``a`` against every row of ``b``, with the sparse side driving the product."""
    product: Tensor
    if a.is_sparse:
        product = torch.sparse.mm(a, b.to_dense().T)
    elif b.is_sparse:
        product = torch.sparse.mm(b, a.T).T
    else:
        product = a @ b.T
    return product


def _norms(vectors: Tensor) -> Tensor:
    norms: Tensor = (
        torch.sparse.sum(vectors * vectors, dim=1).to_dense().sqrt()
        if vectors.is_sparse
        else vectors.norm(dim=1)
    )
    return norms


def sparse_similarity(a: Tensor, b: Tensor, name: str, *, pairwise: bool = False) -> Tensor:
    """Dot product (or cosine) of every row of ``a`` with every row of ``b``, or of ``a[i]`` with
    ``b[i]`` when ``pairwise``; either side may be sparse or dense.

    >>> a = torch.tensor([[1.0, 0.0, 2.0]]).to_sparse()
    >>> sparse_similarity(a, torch.tensor([[3.0, 5.0, 1.0]]), "dot")
    tensor([[5.]])
    """
    a, b = _as_matrix(a), _as_matrix(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"vectors of width {a.shape[1]} and {b.shape[1]} cannot be compared; encode both with one model"
        )
    if pairwise:
        if a.shape[0] != b.shape[0]:
            raise ValueError(
                f"pairwise scores need as many rows on both sides, got {a.shape[0]} and {b.shape[0]}"
            )
        product = a * b if a.is_sparse else b * a
        scores = torch.sparse.sum(product, dim=1).to_dense() if product.is_sparse else product.sum(dim=1)
        if name == "cosine":
            scores = scores / (_norms(a) * _norms(b)).clamp_min(1e-12)
        return scores.to(torch.float32)
    scores = _dot(a.float(), b.float())
    if name == "cosine":
        scores = scores / (_norms(a)[:, None] * _norms(b)[None, :]).clamp_min(1e-12)
    return scores


def decode_tokens(embeddings: Tensor, tokenizer: Any, top_k: int | None = None) -> list[Any]:
    """The ``(token, weight)`` pairs of each row, heaviest first; a 1-D input gives one list."""
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
    single = isinstance(embeddings, Tensor) and embeddings.dim() == 1
    matrix = _as_matrix(embeddings)
    dense = matrix.to_dense() if matrix.is_sparse else matrix
    results = []
    for row in dense:
        ids = torch.nonzero(row, as_tuple=True)[0]
        weights = row[ids]
        order = torch.argsort(weights, descending=True, stable=True)[:top_k]
        tokens = tokenizer.convert_ids_to_tokens(ids[order].tolist())
        results.append(list(zip(tokens, weights[order].tolist(), strict=True)))
    return results[0] if single else results
