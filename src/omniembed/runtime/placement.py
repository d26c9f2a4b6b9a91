"""Put a loaded model where it runs: inference mode, its device, and fast CPU linear layers."""

from __future__ import annotations

import torch
from torch import nn

from omniembed.runtime.fused_encoder import use_fused_encoder
from omniembed.runtime.onednn import use_onednn_linear


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
