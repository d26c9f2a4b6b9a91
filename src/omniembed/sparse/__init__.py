"""Sparse embeddings: ``SparseEncoder`` (SPLADE and inference-free models) and the checks sparse
vectors given by users pass."""

from omniembed.sparse.vectors import SparseVector, check_sparse

__all__ = ["SparseVector", "check_sparse"]
