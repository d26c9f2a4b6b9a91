"""Scale each vector to unit length."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torch.nn import functional

from omniembed.modules.module import Features, LoadOptions, Module

REDUCED_PRECISION = (torch.float16, torch.bfloat16)


def unit_length(vectors: Tensor) -> Tensor:
    """``vectors`` scaled to unit length along their last dimension, in float32 where they are
    float16 or bfloat16: a norm rounded to bfloat16 is off by up to 0.4%, and so is every dot
    product of the scaled vectors."""
    if vectors.dtype in REDUCED_PRECISION:
        vectors = vectors.float()
    return functional.normalize(vectors, p=2, dim=-1)


class Normalize(Module):
    """L2-normalise ``sentence_embedding``, so dot product equals cosine similarity."""

    reference_type = "sentence_transformers.base.modules.normalize.Normalize"

    def forward(self, features: Features) -> Features:
        """Normalise the sentence embedding in place of the old one (float32 from a float16 or
        bfloat16 network, see ``unit_length``)."""
        features["sentence_embedding"] = unit_length(features["sentence_embedding"])
        return features

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> Normalize:
        """Normalize has nothing to read; older models do not even write its folder."""
        return cls()
