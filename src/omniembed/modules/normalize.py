"""Scale each vector to unit length."""

from __future__ import annotations

from pathlib import Path

from torch.nn import functional

from omniembed.modules.module import Features, LoadOptions, Module


class Normalize(Module):
    """L2-normalise ``sentence_embedding``, so dot product equals cosine similarity."""

    reference_type = "sentence_transformers.base.modules.normalize.Normalize"

    def forward(self, features: Features) -> Features:
        """Normalise the sentence embedding in place of the old one."""
        features["sentence_embedding"] = functional.normalize(features["sentence_embedding"], p=2, dim=-1)
        return features

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> Normalize:
        """Normalize has nothing to read; older models do not even write its folder."""
        return cls()
