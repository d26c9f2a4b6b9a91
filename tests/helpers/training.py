"""Helpers for the training tests: the same tiny model in both libraries, dropout off, and batches."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

PAIRS = [
    ("A man is playing a guitar.", "A man plays the guitar on stage.", 0.9),
    ("A woman is slicing an onion.", "Two dogs run through a field.", 0.1),
    ("The cat sleeps on the window sill.", "A cat is sleeping by the window.", 0.8),
    ("The stock market fell on Monday.", "Shares dropped sharply at the start of the week.", 0.7),
    ("A child rides a red bicycle.", "The weather is sunny today.", 0.0),
    ("He cooked pasta with tomato sauce.", "Pasta was made with a tomato sauce.", 0.85),
    ("Heavy rain flooded the villages.", "The museum opens at nine.", 0.05),
    ("Students study for their exams.", "A group of pupils prepares for tests.", 0.75),
]
NEGATIVES = [
    "The train leaves every fifteen minutes.",
    "Scientists found a new frog species.",
    "The library has thousands of books.",
    "A plane takes off from the runway.",
    "Fresh bread smells wonderful.",
    "The company announced record profits.",
    "Mountains are covered with snow.",
    "A horse gallops across the prairie.",
]


def no_dropout(model: nn.Module) -> nn.Module:
    """Set every dropout probability to zero (training then runs the same numbers as inference)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model


def both_models(folder: Path) -> tuple[Any, Any]:
    """Our model and the reference library's on the same folder, on the CPU, dropout off."""
    from sentence_transformers import SentenceTransformer as Reference

    from omniembed import SentenceTransformer

    ours = no_dropout(SentenceTransformer(folder, device="cpu"))
    reference = no_dropout(Reference(str(folder), device="cpu"))
    return ours, reference


def reference_features(model: Any, texts: list[str], prompt: str | None = None) -> dict[str, Any]:
    """The reference library's tokenized batch for one column."""
    features: dict[str, Any] = model.preprocess(texts, prompt=prompt)
    return features


def gradients(model: nn.Module) -> dict[str, torch.Tensor]:
    """Each parameter's gradient, keyed by the parameter's name inside the transformers network."""
    found = {}
    for name, parameter in model.named_parameters():
        if parameter.grad is not None:
            found[_key(name)] = parameter.grad.detach().clone()
    return found


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Each parameter, keyed as in ``gradients``."""
    return {_key(name): p.detach().clone() for name, p in model.named_parameters()}


def _key(name: str) -> str:
    """A parameter name without the first module's attribute (``auto_model`` here, ``model`` there)."""
    return re.sub(r"^(model\.)?0\.(auto_)?model\.", "", name)
