"""``distill_static``: make a static token-embedding model from any text bi-encoder."""

from __future__ import annotations

import os
from typing import Any

from omniembed.embedding.encoder import SentenceTransformer
from omniembed.modules import Normalize, StaticEmbedding


def distill_static(
    model: SentenceTransformer | str | os.PathLike[str],
    *,
    pca_dims: int | None = 256,
    sif_coefficient: float | None = 1e-4,
    normalize: bool | None = None,
    batch_size: int = 1024,
    show_progress_bar: bool = True,
) -> SentenceTransformer:
    """Make a static model from a bi-encoder: one vector per vocabulary token, averaged at encode time.

    Each token of the teacher's vocabulary is embedded alone (between the teacher's special tokens,
    pooled as the teacher pools), the table is reduced with PCA and scaled by an estimate of each
    token's frequency from its rank (see ``StaticEmbedding.from_distillation``).

    Args:
        model: the teacher: a ``SentenceTransformer`` or a folder or hub id to load one from.
        pca_dims: keep this many principal components (``None``: no PCA).
        sif_coefficient: the SIF weighting's ``a`` (``None``: no weighting).
        normalize: end the model with ``Normalize``; defaults to whether the teacher ends with one.
        batch_size: vocabulary tokens per forward pass of the teacher.
        show_progress_bar: show a bar for the vocabulary pass.

    Returns:
        A ``SentenceTransformer`` whose first module is a ``StaticEmbedding``; ``save`` writes it in
        the reference library's format.
    """
    teacher = model if isinstance(model, SentenceTransformer) else SentenceTransformer(model)
    static = StaticEmbedding.from_distillation(
        teacher,
        pca_dims=pca_dims,
        sif_coefficient=sif_coefficient,
        batch_size=batch_size,
        show_progress_bar=show_progress_bar,
    )
    if normalize is None:
        normalize = isinstance(list(teacher)[-1], Normalize)
    modules: list[Any] = [static, Normalize()] if normalize else [static]
    return SentenceTransformer(
        modules=modules,
        device="cpu",
        prompts=dict(teacher.prompts),
        default_prompt_name=teacher.default_prompt_name,
        similarity_fn_name=teacher.similarity_fn_name,
    )
