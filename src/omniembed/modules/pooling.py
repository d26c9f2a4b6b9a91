"""Pool token embeddings into one vector per input."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import Tensor

from omniembed.errors import ModelFormatError
from omniembed.modules.module import Features, LoadOptions, Module, read_json

PoolingMode = Literal["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]
POOLING_MODES: tuple[str, ...] = get_args(PoolingMode)

# Older configs switch modes on with one boolean each; several on means their outputs are concatenated
# in this order.
_LEGACY_MODE_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


class Pooling(Module):
    """Reduce ``token_embeddings`` to ``sentence_embedding`` with one or more pooling modes.

    Args:
        embedding_dimension: width of the token embeddings.
        pooling_mode: one mode, or several whose results are concatenated.
        include_prompt: if false, prompt tokens (``features["prompt_length"]``) are left out of the pool.
    """

    config_keys = ("embedding_dimension", "pooling_mode", "include_prompt")
    reference_type = "sentence_transformers.sentence_transformer.modules.pooling.Pooling"

    def __init__(
        self,
        embedding_dimension: int,
        pooling_mode: str | tuple[str, ...] | list[str] = "mean",
        include_prompt: bool = True,
    ) -> None:
        super().__init__()
        modes = (pooling_mode,) if isinstance(pooling_mode, str) else tuple(pooling_mode)
        unknown = [mode for mode in modes if mode not in POOLING_MODES]
        if unknown or not modes:
            raise ModelFormatError(f"unknown pooling mode {unknown or modes!r}; use one of {POOLING_MODES}")
        self.embedding_dimension = embedding_dimension
        self.modes = modes
        self.include_prompt = include_prompt

    @property
    def pooling_mode(self) -> str | list[str]:
        """The mode, or the list of modes, as saved in the config."""
        return self.modes[0] if len(self.modes) == 1 else list(self.modes)

    @property
    def output_dimension(self) -> int:
        """Width of the pooled vector."""
        return self.embedding_dimension * len(self.modes)

    def forward(self, features: Features) -> Features:
        """Add ``sentence_embedding`` computed from ``token_embeddings`` and ``attention_mask``."""
        tokens: Tensor = features["token_embeddings"]
        mask: Tensor = features["attention_mask"]
        first_real = mask.to(torch.int32).argmax(dim=1)
        pool_mask = mask
        prompt_length = features.get("prompt_length")
        if not self.include_prompt and prompt_length:
            positions = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
            pool_mask = mask * (positions >= (first_real + int(prompt_length)).unsqueeze(1))
        pooled = [_POOLERS[mode](tokens, pool_mask, first_real) for mode in self.modes]
        features["sentence_embedding"] = torch.cat(pooled, dim=-1)
        return features

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> Pooling:
        """Read the current config shape or the older one with a boolean per mode."""
        config = read_json(folder / cls.config_file_name)
        return cls(**normalize_pooling_config(config, folder))


def normalize_pooling_config(config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Map any saved pooling config onto this module's constructor arguments."""
    dimension = config.get("embedding_dimension", config.get("word_embedding_dimension"))
    if not isinstance(dimension, int):
        raise ModelFormatError(f"{folder / Pooling.config_file_name} has no embedding_dimension")
    mode = config.get("pooling_mode")
    if mode is None:
        mode = tuple(name for key, name in _LEGACY_MODE_KEYS.items() if config.get(key)) or "mean"
    return {
        "embedding_dimension": dimension,
        "pooling_mode": mode,
        "include_prompt": bool(config.get("include_prompt", True)),
    }


def _cls(tokens: Tensor, mask: Tensor, first_real: Tensor) -> Tensor:
    index = mask.to(torch.int32).argmax(dim=1)
    return tokens[torch.arange(tokens.shape[0], device=tokens.device), index]


def _max(tokens: Tensor, mask: Tensor, first_real: Tensor) -> Tensor:
    return tokens.masked_fill(mask.unsqueeze(-1) == 0, float("-inf")).max(dim=1).values


def _accumulation_dtype(tokens: Tensor) -> torch.dtype:
    """Sum half-precision embeddings in float32, so long inputs do not lose precision."""
    return torch.float32 if tokens.dtype in (torch.float16, torch.bfloat16) else tokens.dtype


def _masked_sum(tokens: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    weights = mask.unsqueeze(-1).to(tokens.dtype)
    accumulate = _accumulation_dtype(tokens)
    total = (tokens * weights).sum(dim=1, dtype=accumulate)
    count = torch.clamp(weights.sum(dim=1, dtype=accumulate), min=1e-9)
    return total, count


def _mean(tokens: Tensor, mask: Tensor, first_real: Tensor) -> Tensor:
    total, count = _masked_sum(tokens, mask)
    return (total / count).to(tokens.dtype)


def _mean_sqrt_len(tokens: Tensor, mask: Tensor, first_real: Tensor) -> Tensor:
    total, count = _masked_sum(tokens, mask)
    return (total / torch.sqrt(count)).to(tokens.dtype)


def _weighted_mean(tokens: Tensor, mask: Tensor, first_real: Tensor) -> Tensor:
    # Position weights count from the first real token, so left padding does not shift them.
    accumulate = _accumulation_dtype(tokens)
    positions = torch.arange(1, tokens.shape[1] + 1, device=tokens.device, dtype=accumulate)
    weights = mask.to(accumulate) * (positions.unsqueeze(0) - first_real.unsqueeze(1))
    total = (tokens.to(accumulate) * weights.unsqueeze(-1)).sum(dim=1)
    return (total / torch.clamp(weights.sum(dim=1, keepdim=True), min=1e-9)).to(tokens.dtype)


def _last_token(tokens: Tensor, mask: Tensor, first_real: Tensor) -> Tensor:
    length = mask.shape[1]
    seen, from_end = mask.flip(1).max(dim=1)
    last = torch.where(seen == 0, length - 1, length - 1 - from_end)
    picked = tokens[torch.arange(tokens.shape[0], device=tokens.device), last]
    return picked * seen.unsqueeze(-1).to(tokens.dtype)


_POOLERS = {
    "cls": _cls,
    "max": _max,
    "mean": _mean,
    "mean_sqrt_len_tokens": _mean_sqrt_len,
    "weightedmean": _weighted_mean,
    "lasttoken": _last_token,
}
