"""The num_threads option: validation, and torch's pool restored after encode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from omniembed import SentenceTransformer
from omniembed.runtime.threads import torch_threads


def test_torch_threads_restores_the_setting() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_model_with_a_thread_limit(tiny_model: Callable[..., Path]) -> None:
    folder = tiny_model("bert")
    limited = SentenceTransformer(folder, device="cpu", num_threads=1)
    free = SentenceTransformer(folder, device="cpu")
    before = torch.get_num_threads()
    assert limited.num_threads == 1
    np.testing.assert_allclose(limited.encode(["a b c", "d"]), free.encode(["a b c", "d"]), atol=1e-6)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_bad_thread_counts_are_refused(tiny_model: Callable[..., Path], bad: object) -> None:
    with pytest.raises(ValueError, match="num_threads must be a positive integer"):
        SentenceTransformer(tiny_model("bert"), device="cpu", num_threads=bad)  # type: ignore[arg-type]
