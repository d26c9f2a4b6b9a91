"""Where exported model artefacts live, keyed by the weights and the options that made them."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

CACHE_ENV = "OMNIEMBED_CACHE"


def cache_root(folder: str | os.PathLike[str] | None = None) -> Path:
    """The given folder, else ``$OMNIEMBED_CACHE``, else ``$XDG_CACHE_HOME/omniembed`` (``~/.cache``)."""
    if folder is not None:
        return Path(folder)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "omniembed"


def model_digest(model: Any, options: dict[str, Any]) -> str:
    """Hash every weight and buffer of ``model`` with ``options``: a changed weight is a new entry.

    The weights in memory are hashed rather than the files they came from, so a model built from
    modules, or changed after loading, never reuses a stale export.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(options, sort_keys=True, default=str).encode())
    digest.update(type(model).__name__.encode())
    state: dict[str, torch.Tensor] = model.state_dict()
    digest.update(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode())
    for name, tensor in state.items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        data = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]
