"""Encoding with a static token-embedding model (``embedding.distill`` makes one from a bi-encoder).

A static model is a table lookup: its texts are tokenized in large chunks with the fast tokenizer and
averaged with an ``EmbeddingBag``, with no padding, no attention masks and no sorting by length.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from omniembed.modules import StaticEmbedding
from omniembed.runtime.backends import RuntimeOptions

STATIC_CHUNK = 8192
"""Texts per tokenizer call: the fast tokenizer spreads a call over the cores, and a lookup has no
padding to gain from smaller batches."""


def check_static_runtime(runtime: RuntimeOptions) -> None:
    """Refuse runtime options that have no meaning for a lookup table."""
    if runtime.dtype != "float32" or runtime.resolved_backend() != "torch":
        raise ValueError(
            f"a static model is a table lookup with no network to speed up; load it with dtype='float32' "
            f"and backend='torch' or 'auto' (got dtype={runtime.dtype!r}, backend={runtime.backend!r})"
        )


def check_static_output(output_value: str | None) -> None:
    """Refuse outputs a static model does not have."""
    if output_value != "sentence_embedding":
        raise ValueError(
            f"output_value {output_value!r} is not available for a static model: it averages token vectors "
            "without a network, so it has only output_value='sentence_embedding'"
        )


def static_embeddings(model: nn.Sequential, texts: list[str], prompt: str | None, progress: bool) -> Tensor:
    """Run a pipeline that starts with a ``StaticEmbedding`` over ``texts``; rows in input order."""
    static = model[0]
    assert isinstance(static, StaticEmbedding)
    rest = list(model)[1:]
    parts = []
    with (
        torch.inference_mode(),
        tqdm(total=len(texts), desc="Texts", unit="input", disable=not progress) as bar,
    ):
        for start in range(0, len(texts), STATIC_CHUNK):
            chunk = texts[start : start + STATIC_CHUNK]
            features: dict[str, Any] = {
                "sentence_embedding": static.embed([prompt + t for t in chunk] if prompt else chunk)
            }
            for module in rest:
                features = module(features)
            parts.append(features["sentence_embedding"].cpu())
            bar.update(len(chunk))
    if not parts:
        return torch.zeros((0, static.dimension), dtype=torch.float32)
    return torch.cat(parts)
