"""Model names resolve to folders: local paths, the Hugging Face cache, and clear errors otherwise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from omniembed import ModelNotFoundError, SentenceTransformer
from omniembed.formats.hub import resolve_model_folder

from helpers.models import build_hub_cache


def test_local_folder(tiny_model: Callable[..., Path]) -> None:
    folder = tiny_model("bert")
    assert resolve_model_folder(folder) == folder.resolve()
    assert resolve_model_folder(str(folder)) == folder.resolve()


def test_hub_id_found_in_cache_offline(
    tiny_model: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = build_hub_cache(tmp_path / "cache", "acme/tiny-bert", tiny_model("bert"))
    assert resolve_model_folder("acme/tiny-bert", cache_folder=tmp_path / "cache") == snapshot
    model = SentenceTransformer("acme/tiny-bert", cache_folder=tmp_path / "cache", device="cpu")
    direct = SentenceTransformer(tiny_model("bert"), device="cpu")
    np.testing.assert_allclose(model.encode("hello"), direct.encode("hello"), atol=1e-6)


def test_bare_name_tries_the_sentence_transformers_organisation(
    tiny_model: Callable[..., Path], tmp_path: Path
) -> None:
    snapshot = build_hub_cache(tmp_path / "cache", "sentence-transformers/tiny", tiny_model("bert"))
    found = resolve_model_folder("tiny", cache_folder=tmp_path / "cache", local_files_only=True)
    assert found == snapshot


def test_revision_picks_the_snapshot(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    snapshot = build_hub_cache(tmp_path / "cache", "acme/m", tiny_model("bert"), commit="b" * 40)
    assert resolve_model_folder("acme/m", cache_folder=tmp_path / "cache", revision="b" * 40) == snapshot
    with pytest.raises(ModelNotFoundError):
        resolve_model_folder("acme/m", cache_folder=tmp_path / "cache", revision="c" * 40)


def test_missing_model_names_every_place_tried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as caught:
        SentenceTransformer("acme/does-not-exist", cache_folder=tmp_path)
    message = str(caught.value)
    assert "acme/does-not-exist" in message
    assert str(tmp_path) in message
    assert "offline" in message
    assert isinstance(caught.value, FileNotFoundError)


def test_missing_local_path(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="check the path"):
        SentenceTransformer(tmp_path / "nope" / "model")


def test_file_instead_of_folder(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        resolve_model_folder(tmp_path / "model.safetensors")


def test_snapshot_with_skipped_runtime_folders_still_loads_offline(
    tiny_model: Callable[..., Path], tmp_path: Path
) -> None:
    snapshot = build_hub_cache(tmp_path / "cache", "acme/with-onnx", tiny_model("bert"))
    (snapshot / "onnx").mkdir()
    (snapshot / "onnx" / "model.onnx").write_bytes(b"not read")
    found = resolve_model_folder("acme/with-onnx", cache_folder=tmp_path / "cache", local_files_only=True)
    assert found == snapshot
