"""Put a loaded model where it runs: inference mode, its device, and fast CPU linear layers."""

from __future__ import annotations

import torch
from torch import nn

from omniembed.runtime.fused_encoder import use_fused_encoder
from omniembed.runtime.onednn import OneDnnLinear, use_onednn_linear


def default_device() -> str:
    """Return ``"cuda"`` when a GPU is usable, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def prepare_for_inference(model: nn.Module, device: str | torch.device | None) -> None:
    """Switch ``model`` to eval mode, move it to ``device`` (default: ``default_device()``) and run
    its linear layers through oneDNN on the CPU (see ``runtime.onednn``), and BERT-family text
    networks in a flat loop (see ``runtime.fused_encoder``)."""
    model.eval()
    model.to(device or default_device())
    use_onednn_linear(model)
    use_fused_encoder(model)


def forget_packed_weights(model: nn.Module) -> int:
    """Drop the reordered weight copies the fast CPU paths keep beside the parameters (see
    ``runtime.onednn`` and ``runtime.fused_encoder``); the next inference call remakes them from the
    parameters. Return how many modules held some.

    Those copies are remade by themselves when a weight's storage or in-place version changes and
    after any ``torch.optim`` step (fused optimizers update weights without bumping the version);
    call this after changing weights some other way that keeps both, or to free the memory.
    """
    dropped = 0
    for module in model.modules():
        if isinstance(module, OneDnnLinear) and module._packed is not None:
            module._packed = None
            module._packed_from = None
            dropped += 1
        fast = getattr(module, "fast_forward", None)
        for holder in (fast, getattr(fast, "encoder", None)):  # a classifier's encoder holds its own
            packed = getattr(holder, "_packed", None)
            if isinstance(packed, dict) and packed:
                packed.clear()
                dropped += 1
    return dropped
