"""Tiny sparse model folders, saved by the reference library once per test run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import sparse as builders


@pytest.fixture(scope="session")
def sparse_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``sparse_model(kind, **options)``: kind is ``splade``, ``legacy`` or ``inference_free``."""
    built: dict[tuple[object, ...], Path] = {}
    makers = {
        "splade": builders.build_splade,
        "legacy": builders.build_legacy_splade,
        "inference_free": builders.build_inference_free,
    }

    def build(kind: str, **options: object) -> Path:
        key = (kind, *sorted((name, repr(value)) for name, value in options.items()))
        if key not in built:
            built[key] = makers[kind](tmp_path_factory.mktemp(kind) / "model", **options)  # type: ignore[operator]
        return built[key]

    return build
